"""The authority rules held when writing: before the RecordWriter appends an entry it checks it against
:mod:`deconflict.record.authority`, the same rules ``ledger verify`` holds entry by entry, so the service
can never write an entry a verifier would refuse. A refusal here is a programming error in a use case
(:class:`RecordRefused`), not a user's: user errors are caught, and worded, before the writer.

The rules read a small state built from the earlier entries (members, keys, open conflicts, ...). It is
kept per mechanism in the context with the sequence number it reflects, caught up from the ledger
when another process appended, and rebuilt from the first entry when a transaction that had moved it
on was rolled back. A server builds it when it starts (:func:`warm`), off the mechanism's lock, so that the
first write after a restart does not wait under that lock for the whole record to be read (1.8 s at 250k
entries, linear).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from deconflict.record import authority, chain
from deconflict.service.context import Context
from deconflict.store import ledger

__all__ = ["RecordRefused", "admit", "forget", "state_after", "warm"]


class RecordRefused(RuntimeError):
    """The service was about to write an entry the authority rules refuse (a bug: nothing is written)."""


def state_after(ctx: Context, s: Session, mechanism_id: str, head: chain.Head) -> authority.AuthorityState:
    """The authority state after entry ``head.seq`` of the record, caught up from the ledger as needed."""
    kept = ctx.authority.get(mechanism_id)
    if kept is None or kept[0] > head.seq:
        upto, state = 0, authority.AuthorityState()
    else:
        upto, state = kept
    _apply(s, mechanism_id, state, upto, head.seq)
    ctx.authority[mechanism_id] = (head.seq, state)
    return state


def _apply(s: Session, mechanism_id: str, state: authority.AuthorityState, after: int, upto: int) -> None:
    if upto <= after:  # caught up already (every append but a catch-up's): no read of the ledger
        return
    for seq, type_, payload in ledger.payloads_between(s, mechanism_id, after, upto):
        authority.apply({"mechanism": mechanism_id, "seq": seq, "type": type_, "payload": payload}, state)


def warm(ctx: Context, mechanism_id: str) -> int | None:
    """Build the state after the record's head as it stands (in a read transaction, without the mechanism's
    lock: writes go on meanwhile) and keep it, unless a write has kept one since; the next write catches it
    up with the entries appended meanwhile. Returns the entry it reflects, None when one was kept already."""
    if mechanism_id in ctx.authority:
        return None
    state = authority.AuthorityState()
    with ctx.store.read() as s:
        head = ledger.read_head(s, mechanism_id)
        _apply(s, mechanism_id, state, 0, head.seq)
    with ctx.lock:
        if mechanism_id in ctx.authority:
            return None
        ctx.authority[mechanism_id] = (head.seq, state)
    return head.seq


def admit(
    state: authority.AuthorityState, *, mechanism: str, seq: int, at: datetime, actor: str, type: str, payload: Any
) -> dict[str, Any]:
    """The entry's document as the rules read it, once they allow it. ``payload``: as a verifier reads it
    (what ``json.loads`` reads from its canonical JSON: :func:`~deconflict.record.chain.canonical_read`).

    Raises:
        RecordRefused: the rules refuse it (the problem named).
    """
    doc = {
        "mechanism": mechanism,
        "seq": seq,
        "at": at,
        "actor": actor,
        "type": type,
        "payload": payload,
    }
    problem = authority.check(doc, state)
    if problem is not None:
        raise RecordRefused(
            f"internal error: the service was about to write entry {seq} ({type} by {actor}), which the record's "
            f"authority rules refuse: {problem}. Nothing was written."
        )
    return doc


def forget(ctx: Context, mechanism_id: str) -> None:
    """Drop the kept state (a transaction that moved it on was rolled back)."""
    ctx.authority.pop(mechanism_id, None)
