"""Saving a copy of the record as a bundle that ``deconflict ledger verify`` checks offline: a member's own
copy read from the service (``ledger export --url``) or what a party's mirror holds (``ledger export
--from-mirror``). Entries are as their holder sees them (withheld ones with hashes only), checkpoints
with their notes; each entry is checked as it is read (:class:`deconflict.record.verify.Stream`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from deconflict.cli.mirror import COSIGNED, ENTRIES, KEPT
from deconflict.errors import DeconflictError
from deconflict.record import verify
from deconflict.record.strict_json import load_json

if TYPE_CHECKING:
    from deconflict.record.chain import ChainReport

__all__ = ["CHECKPOINT_FIELDS", "export_copy", "mirror_copy", "save_copy"]


def export_copy(*, url: str | None, token: str | None, from_mirror: Path | None, out: Path) -> None:
    """Save the member's copy from the service at ``url`` (with ``token``), or what the mirror folder
    ``from_mirror`` holds, to ``out``; says what was written, and exits 1 when the copy does not verify
    (the file is written all the same: it is evidence)."""
    from deconflict.clock import iso, system_clock

    if url is not None and from_mirror is not None:
        raise DeconflictError("give either --url or --from-mirror, not both")
    if from_mirror is not None:
        mid, docs, cps = mirror_copy(from_mirror)
        whose = f"the copy held in {from_mirror}"
    else:
        from deconflict.cli.remote import client_for

        client = client_for(url or "", token or "")
        cps = client.all_checkpoints(with_cosignatures=True)  # first: each covers only entries read after it
        mid, docs, whose = client.mechanism, client.record_all(), f"{client.member}'s copy"
    n, checked = save_copy(mid, docs, cps, out, exported_at=iso(system_clock()))
    typer.echo(f"{mid}: {n} entries of {whose} written to {out}; head {checked.head_seq} {checked.head_hash}")
    if not checked.ok:
        typer.echo(f"{mid}: BROKEN: {checked.problem} (written all the same, as evidence)", err=True)
        raise typer.Exit(1)


CHECKPOINT_FIELDS = ("mechanism", "seq", "hash", "at", "key_id", "signature", "note")
"""What a saved copy keeps of each checkpoint (the service's signed head, and its note with cosignatures)."""


def save_copy(
    mechanism: str, docs: Iterable[Any], checkpoints: list[dict[str, Any]], out: Path, *, exported_at: str
) -> tuple[int, ChainReport]:
    """Write a copy of the record (entries as its holder sees them, withheld ones with hashes only, and the
    signed checkpoints with their notes) as a bundle ``deconflict ledger verify`` checks offline.

    Each entry is checked as it is read (:class:`verify.Stream`); the header's key list is the keys the
    record itself registered. A copy that does not verify is written all the same (it is evidence);
    returns (entries written, the report of that check).

    Raises:
        DeconflictError: the copy holds no entries.
    """
    from deconflict.record import bundle
    from deconflict.record.chain import Head

    stream = verify.Stream(mechanism)
    count, last = 0, None
    with tempfile.TemporaryFile() as spool:  # the header needs the count first: entries wait on disk, not in memory
        for doc in docs:
            stream.feed(doc)
            spool.write(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
            count, last = count + 1, doc
        if last is None:
            raise DeconflictError(f"the copy of {mechanism} holds no entries: nothing to save")
        seq = last.get("seq") if isinstance(last, dict) else None
        head = Head(seq if type(seq) is int else 0, str(last.get("hash") if isinstance(last, dict) else None))
        kept = [{k: c[k] for k in CHECKPOINT_FIELDS if k in c} for c in checkpoints]
        keys = [dict(k) for k in stream.ring.summary()]
        spool.seek(0)
        n = bundle.export(
            (load_json(line) for line in spool), mechanism=mechanism, head=head, count=count, out=out, keys=keys,
            checkpoints=kept, exported_at=exported_at,
        )  # fmt: skip
    return n, stream.report()


def mirror_copy(folder: Path) -> tuple[str, Iterator[dict[str, Any]], list[dict[str, Any]]]:
    """(mechanism, entries, checkpoints) a mirror's folder holds: its copy (read as it is iterated) and the
    checkpoints it cosigned, each with the note it kept (the service's signature and this party's
    cosignature). A last line the mirror was cut off writing is not held yet, so it is left out.

    Raises:
        DeconflictError: not a mirror's folder, or a line of it unreadable.
    """
    path = folder / ENTRIES
    if not path.is_file():
        raise DeconflictError(f"{folder}: not a mirror's folder (no {ENTRIES}; 'deconflict mirror --dir' makes one)")
    kept = folder / KEPT
    lines = kept.read_bytes().splitlines() if kept.exists() else []
    cps = [_line(kept, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    for cp in cps:
        seq = cp.get("seq")
        text = folder / COSIGNED / f"{seq:012d}.note" if type(seq) is int else None
        if text is not None and text.exists():
            cp["note"] = text.read_text(encoding="utf-8")
    with path.open("rb") as f:
        first = _line(path, 1, f.readline())
    mechanism = first.get("mechanism")
    if not isinstance(mechanism, str) or not mechanism:
        raise DeconflictError(f"{path}: its first entry names no mechanism")

    def entries() -> Iterator[dict[str, Any]]:
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    return  # cut off while being written: not held yet
                if line.strip():
                    yield _line(path, n, line)

    return mechanism, entries(), cps


def _line(path: Path, n: int, line: bytes) -> dict[str, Any]:
    """Line ``n`` of a file the mirror keeps, read strictly: a JSON object, else a named error."""
    try:
        doc = load_json(line)
    except ValueError as e:
        raise DeconflictError(f"{path}: line {n} is unreadable ({e})") from None
    if not isinstance(doc, dict):
        raise DeconflictError(f"{path}: line {n} is not a JSON object")
    return doc
