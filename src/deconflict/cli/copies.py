"""Saving a copy of the record as a bundle that ``deconflict ledger verify`` checks offline: a member's own
copy read from the service (``ledger export --url``) or what a party's mirror holds (``ledger export
--from-mirror``). Entries are as their holder sees them (withheld ones with hashes only), checkpoints
with their notes; each entry is checked as it is read (:class:`deconflict.record.verify.Stream`).
"""

from __future__ import annotations

from collections.abc import Iterable
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
        mid, docs, whose = client.mechanism, list(client.record_all()), f"{client.member}'s copy"
    n, checked = save_copy(mid, docs, cps, out, exported_at=iso(system_clock()))
    typer.echo(f"{mid}: {n} entries of {whose} written to {out}; head {checked.head_seq} {checked.head_hash}")
    if not checked.ok:
        typer.echo(f"{mid}: BROKEN: {checked.problem} (written all the same, as evidence)", err=True)
        raise typer.Exit(1)


CHECKPOINT_FIELDS = ("mechanism", "seq", "hash", "at", "key_id", "signature", "note")
"""What a saved copy keeps of each checkpoint (the service's signed head, and its note with cosignatures)."""


def save_copy(
    mechanism: str, docs: Iterable[dict[str, Any]], checkpoints: list[dict[str, Any]], out: Path, *, exported_at: str
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
    held: list[dict[str, Any]] = []
    for doc in docs:
        held.append(doc)
        stream.feed(doc)
    if not held:
        raise DeconflictError(f"the copy of {mechanism} holds no entries: nothing to save")
    seq = held[-1].get("seq")
    head = Head(seq if type(seq) is int else 0, str(held[-1].get("hash")))
    kept = [{k: c.get(k) for k in CHECKPOINT_FIELDS if k in c} for c in checkpoints]
    keys = [dict(k) for k in stream.ring.summary()]
    n = bundle.export(
        iter(held), mechanism=mechanism, head=head, count=len(held), out=out, keys=keys, checkpoints=kept,
        exported_at=exported_at,
    )  # fmt: skip
    return n, stream.report()


def mirror_copy(folder: Path) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """(mechanism, entries, checkpoints) a mirror's folder holds: its copy and the checkpoints it cosigned,
    each with the note it kept (the service's signature and this party's cosignature).

    Raises:
        DeconflictError: not a mirror's folder, or a line of it unreadable.
    """
    path = folder / ENTRIES
    if not path.is_file():
        raise DeconflictError(f"{folder}: not a mirror's folder (no {ENTRIES}; 'deconflict mirror --dir' makes one)")
    docs, cps = [], []
    try:
        n = 0
        data = path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]  # a line the mirror was cut off writing is not yet held
        for n, line in enumerate(whole.splitlines(), 1):  # noqa: B007 - n names the bad line
            if line.strip():
                docs.append(load_json(line))
        kept = folder / KEPT
        for n, line in enumerate(kept.read_bytes().splitlines() if kept.exists() else [], 1):  # noqa: B007
            if line.strip():
                cps.append(load_json(line))
    except ValueError as e:
        raise DeconflictError(f"{folder}: line {n} of {ENTRIES} or {KEPT} is unreadable ({e})") from None
    for cp in cps:
        seq = cp.get("seq") if isinstance(cp, dict) else None
        text = folder / COSIGNED / f"{seq:012d}.note" if type(seq) is int else None
        if text is not None and text.exists():
            cp["note"] = text.read_text(encoding="utf-8")
    first = docs[0] if docs and isinstance(docs[0], dict) else {}
    mechanism = first.get("mechanism")
    if not isinstance(mechanism, str) or not mechanism:
        raise DeconflictError(f"{path}: its first entry names no mechanism")
    return mechanism, docs, cps
