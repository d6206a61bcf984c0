"""Holding a verified chain against the service's signed checkpoints (its JSON checkpoints, not note.py's).

A checkpoint is the service's signature of a head the chain had: one beyond the chain's end
means its tail was cut, one with a different hash that it was rewritten, one dated too early
that it was not made when it says.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from deconflict.clock import iso, parse_utc
from deconflict.record import signing
from deconflict.record.chain import SERVICE, ChainReport
from deconflict.record.verify import KeyRing

__all__ = ["check_checkpoints"]


def check_checkpoints(
    mechanism: str,
    checkpoints: Iterable[dict[str, Any]],
    hashes: dict[int, str],
    report: ChainReport,
    ring: KeyRing,
    times: dict[int, datetime] | None = None,
) -> ChainReport:
    """Hold a verified chain against signed checkpoints: each must be the service's signature of a head
    the chain really had. ``hashes`` maps the checkpoints' sequence numbers to the chain's hashes there,
    and ``times`` to the entries' times. A checkpoint beyond the chain's end means its tail was cut; a
    different hash means it was rewritten; a checkpoint dated before the last entry it covers, or before
    an earlier checkpoint, was not made when it says; an entry after a checkpoint dated before it was
    backdated (the checkpoint shows the record did not hold it then).
    """
    if not report.ok:
        return report
    good = 0
    last: tuple[int, datetime] | None = None
    for cp in sorted(checkpoints, key=_checkpoint_seq):
        seq, at = _checkpoint_seq(cp), str(cp.get("at"))
        key = ring.keys.get(str(cp.get("key_id")))
        message = signing.checkpoint_message(mechanism=mechanism, seq=seq, hash=str(cp.get("hash")), at=at)
        problem, first = None, min(seq, report.head_seq + 1)
        try:
            when: datetime | None = parse_utc(at, field="at")
        except Exception:  # noqa: BLE001 - an unreadable time is named below
            when = None
        if key is None or key["owner"] != SERVICE:
            problem = (
                f"the checkpoint of entry {seq} made at {at} is not signed by the service's key; it cannot be used"
            )
        elif not signing.verify(key["public_key"], message, cp.get("signature")):
            problem = (
                f"the checkpoint of entry {seq} made at {at}: the service's signature does not verify for the hash "
                "and time it states (the checkpoint was changed after it was signed); it cannot be used"
            )
        elif when is None:
            problem = f"the checkpoint of entry {seq} has no readable time ({at!r})"
        elif seq > report.head_seq:
            problem = (
                f"the record ends at entry {report.head_seq}, but the service signed a checkpoint of entry {seq} "
                f"at {at}: entries after {report.head_seq} were cut"
            )
        elif hashes.get(seq) != cp.get("hash"):
            problem = f"entry {seq} differs from the checkpoint the service signed at {at}: the record was rewritten"
        elif times is not None and seq in times and when < times[seq]:
            problem = (
                f"the checkpoint of entry {seq} is dated {at}, before that entry ({iso(times[seq])}): a checkpoint "
                "covers only entries made at or before its time"
            )
        elif times is not None and seq + 1 in times and times[seq + 1] < when:
            problem = (
                f"entry {seq + 1} is dated {iso(times[seq + 1])}, before the checkpoint of entry {seq} ({at}) that "
                "did not hold it yet: an entry after a checkpoint is made after it"
            )
            first = seq + 1
        elif last is not None and when < last[1]:
            problem = (
                f"the checkpoint of entry {seq} is dated {at}, before the checkpoint of entry {last[0]} "
                f"({iso(last[1])}): checkpoint times never go backwards"
            )
            first = seq
        if problem is not None:
            return ChainReport(
                mechanism,
                report.entries,
                False,
                report.head_seq,
                report.head_hash,
                first,
                problem,
                report.keys,
                good,
                withheld=report.withheld,
            )
        assert when is not None
        last = (seq, when)
        good += 1
    return ChainReport(
        mechanism,
        report.entries,
        True,
        report.head_seq,
        report.head_hash,
        keys=report.keys,
        checkpoints=good,
        withheld=report.withheld,
    )


def _checkpoint_seq(cp: dict[str, Any]) -> int:
    seq = cp.get("seq")
    return seq if type(seq) is int else 0
