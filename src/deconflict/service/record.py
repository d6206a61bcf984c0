"""Reading a mechanism's record back (entries, head, verification, replay) and signing its checkpoints:
the service's signature over the chain's head, made at a tick when the chain has grown.

A checkpoint is dated by the service's clock, never before the last entry it covers nor before the
previous checkpoint (a clock that stepped back is clamped, with a warning, as entries are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from deconflict.clock import iso
from deconflict.record import chain, signing
from deconflict.service import checkpoints as notes
from deconflict.service.context import Context
from deconflict.service.writer import last_entry_at, not_before
from deconflict.store import follow, ledger
from deconflict.store import replay as replaying
from deconflict.store import snapshots as stored_snapshots
from deconflict.store.schema import CheckpointRow, LedgerEntry

__all__ = [
    "check_snapshots",
    "checkpoint",
    "checkpoints",
    "entries_after",
    "head",
    "latest_checkpoint_seq",
    "record",
    "record_ids",
    "replay",
    "replay_around",
    "replay_around_entries",
    "replay_entries",
    "replay_stored",
    "verify",
    "write_snapshots",
]


def replay_entries(entries: Iterable[dict[str, Any]], *, mechanism: str, at: datetime | None) -> dict[str, Any]:
    """A mechanism's state as it stood at ``at``, rebuilt from entry documents alone (a bundle's, say).

    Raises:
        ValueError: the entries are not one mechanism's record in order.
    """
    return replaying.replay(entries, mechanism=mechanism, at=at)


def replay_around_entries(
    entries: Iterable[dict[str, Any]], *, mechanism: str, at: datetime, window: timedelta = replaying.WINDOW
) -> dict[str, Any]:
    """:func:`replay_entries` cut to what mattered around ``at`` (:func:`replay_around`'s document), from
    entry 1: a bundle keeps no snapshots.

    Raises:
        ValueError: the entries are not one mechanism's record in order.
    """
    return replaying.around(entries, mechanism=mechanism, at=at, window=window)


def replay(ctx: Context, mechanism_id: str, at: datetime | None) -> dict[str, Any]:
    """The mechanism's state as it stood at ``at`` (now when None), rebuilt from its record alone: from the
    newest replay snapshot at or before ``at`` that holds against the record, then the entries after it."""
    ctx.pictures.get(mechanism_id)
    return replay_stored(ctx, mechanism_id, at)


def replay_stored(ctx: Context, mechanism_id: str, at: datetime | None, *, snapshots: bool = True) -> dict[str, Any]:
    """:func:`replay` without looking the mechanism up first (an empty state when it has no record); with
    ``snapshots`` False, from entry 1 (the reference a snapshot is checked against)."""
    if not snapshots:
        with ctx.store.read() as s:
            return replaying.replay(stored_snapshots.entries(s, mechanism_id, after=0), mechanism=mechanism_id, at=at)
    # the collector held off while a snapshot's rows are alive: each of its passes would walk them all
    with ctx.store.read() as s, replaying.no_collection():
        start = stored_snapshots.usable(s, mechanism_id, at=at)
        if start is not None:
            tail = stored_snapshots.entries(s, mechanism_id, after=start.seq)
            return replaying.replay(tail, mechanism=mechanism_id, at=at, start=start)
    return replay_stored(ctx, mechanism_id, at, snapshots=False)  # none yet: from entry 1


def replay_around(
    ctx: Context, mechanism_id: str, at: datetime, *, window: timedelta = replaying.WINDOW, snapshots: bool = True
) -> dict[str, Any]:
    """What was in force, open or awaited at ``at``, and what ended, closed or was sent in the ``window``
    before it (:func:`deconflict.store.replay.live`): from the live piece of the newest replay snapshot at or
    before ``at`` and the entries after it, so its cost does not grow with the record. Without a piece
    (snapshots written before 0012, or none yet), the whole state at ``at`` cut the same way; with
    ``snapshots`` False, from entry 1 (the reference). The mechanism is not looked up (an empty state when
    it has no record), as in :func:`replay_stored`."""
    if not snapshots:
        with ctx.store.read() as s:
            entries = stored_snapshots.entries(s, mechanism_id, after=0)
            return replaying.around(entries, mechanism=mechanism_id, at=at, window=window)
    with ctx.store.read() as s, replaying.no_collection():
        found = stored_snapshots.usable_piece(s, mechanism_id, at=at, window=window)
        if found is not None:
            piece, history = found
            tail = stored_snapshots.entries(s, mechanism_id, after=piece.seq)
            return replaying.around(tail, mechanism=mechanism_id, at=at, window=window, piece=piece, history=history)
    return replaying.cut(replay_stored(ctx, mechanism_id, at), window=window)


def write_snapshots(
    ctx: Context, mechanism_id: str, *, every: int | None = None, budget: int = 1
) -> list[stored_snapshots.Written]:
    """Write the replay snapshots due on the mechanism's record (at most ``budget``), off its lock."""
    return stored_snapshots.write_due(ctx.store, mechanism_id, ctx.clock(), every=every, budget=budget)


def check_snapshots(
    ctx: Context, mechanism_id: str, *, progress: Callable[[int, int, int], None] | None = None
) -> tuple[int, list[stored_snapshots.Problem]]:
    """Rebuild the record from entry 1 and compare every replay snapshot with it: (checked, problems)."""
    with ctx.store.read() as s:
        return stored_snapshots.check(s, mechanism_id, progress=progress)


def verify(ctx: Context, mechanism_id: str) -> chain.ChainReport:
    """Recompute the mechanism's record chain."""
    with ctx.store.read() as s:
        return ledger.verify_store(s, mechanism_id)


def entries_after(ctx: Context, mechanism_id: str, after: int, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Record entries with a sequence number above ``after``, in order (at most ``limit``)."""
    with ctx.store.read() as s:
        return ledger.docs_after(s, mechanism_id, after, limit)


def record_ids(ctx: Context) -> list[str]:
    """The mechanisms that have a record in this database, in order."""
    with ctx.store.read() as s:
        return sorted(s.scalars(select(LedgerEntry.mechanism_id).distinct()))


def record(ctx: Context, mechanism_id: str, *, upto: int | None = None) -> Iterator[dict[str, Any]]:
    """Every entry of a mechanism's record in order (up to sequence number ``upto``), read in pages."""
    after = 0
    while page := entries_after(ctx, mechanism_id, after, limit=5000):
        for entry in page:
            if upto is not None and entry["seq"] > upto:
                return
            yield entry
        after = page[-1]["seq"]


def head(ctx: Context, mechanism_id: str) -> chain.Head:
    """The record's head: the last entry's sequence number and hash (0 and the genesis hash when empty)."""
    with ctx.store.read() as s:
        return ledger.read_head(s, mechanism_id)


def checkpoint(ctx: Context, mechanism_id: str, *, as_of: datetime | None = None) -> dict[str, Any] | None:
    """Sign the chain's head now (unless the last checkpoint already covers it); returns it or None.

    ``as_of``: vouch for the head as it stood at that earlier instant instead (or at its last entry's time,
    if later): what a command that is not the running service can vouch for, since nothing checked the
    deadlines after the duty loop last ran (:func:`deconflict.service.recheck.recheck` holds a checkpoint's
    time to every escalation due before it). The checkpoint listeners hear of it once it is stored.
    """
    key = ctx.signers.service_key
    with ctx.exclusive(mechanism_id) as picture:
        now = ctx.clock()
        with ctx.store.read() as s:
            current = ledger.read_head(s, mechanism_id)
            previous = s.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.mechanism_id == mechanism_id)
                .order_by(CheckpointRow.seq.desc())
                .limit(1)
            ).first()
            last = previous.seq if previous is not None else None
            ctx.checkpoint_seq[mechanism_id] = last or 0
            if current.seq == 0 or (last is not None and last >= current.seq):
                return None
            floor = last_entry_at(s, mechanism_id, current.seq)
        if previous is not None and (floor is None or previous.at > floor):
            floor = previous.at
        if as_of is not None and as_of < now:
            at = as_of if floor is None or as_of >= floor else floor
        else:
            at = not_before(now, floor, what=f"{mechanism_id} checkpoint of entry {current.seq}")
        message = signing.checkpoint_message(mechanism=mechanism_id, seq=current.seq, hash=current.hash, at=iso(at))
        signature = key.sign(message)
        with ctx.store.transaction() as s:
            text = notes.sign_note(ctx, s, mechanism_id, current)
            s.add(
                CheckpointRow(
                    mechanism_id=mechanism_id,
                    seq=current.seq,
                    hash=current.hash,
                    at=at,
                    key_id=key.key_id,
                    signature=signature,
                    note=text,
                )
            )
            follow.announce(s, mechanism_id, current.seq)  # other processes' streams carry it too
        picture.checkpointed_at = now
        picture.last_at = at if picture.last_at is None or at > picture.last_at else picture.last_at
        ctx.checkpoint_seq[mechanism_id] = current.seq
        doc = chain.checkpoint_doc(
            mechanism=mechanism_id, seq=current.seq, hash=current.hash, at=at, key_id=key.key_id, signature=signature
        )
        doc["note"] = text
    for listener in ctx.checkpoint_listeners:
        listener(mechanism_id, doc)
    return doc


def latest_checkpoint_seq(ctx: Context, mechanism_id: str) -> int:
    """The newest checkpoint's sequence number (0: none) without a query once known; the event
    stream asks at every wake-up and reads the checkpoint table only when this moves."""
    seq = ctx.checkpoint_seq.get(mechanism_id)
    if seq is None:
        with ctx.store.read() as s:
            found = s.scalar(select(func.max(CheckpointRow.seq)).where(CheckpointRow.mechanism_id == mechanism_id))
        seq = ctx.checkpoint_seq[mechanism_id] = found or 0
    return seq


def checkpoints(
    ctx: Context,
    mechanism_id: str,
    *,
    after: int = 0,
    limit: int = 1000,
    latest: bool = False,
    with_cosignatures: bool = False,
) -> list[dict[str, Any]]:
    """Signed checkpoints of entries after ``after``, oldest first (only the newest with ``latest``).

    Each carries ``note``: the same head as a C2SP checkpoint note over the Merkle root of its entries,
    signed by the service (None for checkpoints older than notes); ``with_cosignatures`` adds every
    party's cosignature received so far under it, and ``cosigned_by`` (the parties, in order).
    """
    ctx.pictures.get(mechanism_id)
    stmt = select(CheckpointRow).where(CheckpointRow.mechanism_id == mechanism_id, CheckpointRow.seq > after)
    if latest:
        stmt = stmt.order_by(CheckpointRow.seq.desc()).limit(1)
    else:
        stmt = stmt.order_by(CheckpointRow.seq).limit(limit)
    with ctx.store.read() as s:
        out = []
        for r in s.scalars(stmt).all():
            doc = chain.checkpoint_doc(
                mechanism=r.mechanism_id, seq=r.seq, hash=r.hash, at=r.at, key_id=r.key_id, signature=r.signature
            )
            doc["note"] = r.note
            if with_cosignatures:
                doc["note"], doc["cosigned_by"] = notes.cosigned(s, r)
            out.append(doc)
        return out
