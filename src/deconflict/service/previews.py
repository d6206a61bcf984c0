"""Previews counted and limited: how many each member asked for, whose notices they reached, and when.

A preview writes nothing to the record (it is a question, not a commitment), so without a count it
would be a free oracle: small probes repeated map another party's footprints. Here each member may
ask for at most ``previews_per_hour`` previews in any hour (the mechanism's rules; over it, 429 with
how long to wait), and every preview is counted: by whom, how many reached another party's notices
and whose. A party reads how often each other party's previews reached its own notices; the
facilitator and observers read every count (``GET .../previews``, docs/disclosure.md).

The counts live in this process, per mechanism: a restart starts them again (the rate limit too).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from deconflict.clock import iso
from deconflict.errors import DeconflictError
from deconflict.model import Member, Role
from deconflict.service.context import Context
from deconflict.service.picture import Picture, Pictures

__all__ = ["HOUR", "PreviewBook", "PreviewsExhausted", "admit", "counts", "reached"]

HOUR = timedelta(hours=1)
"""The window the rate limit counts in."""


class PreviewsExhausted(DeconflictError):
    """A member asked for more previews in an hour than the mechanism's rules allow."""

    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, field="previews_per_hour")
        self.retry_after_s = retry_after_s


@dataclass
class Tally:
    """One member's previews: all of them, and those that reached each other party's notices."""

    party: str
    total: int = 0
    reached: dict[str, int] = field(default_factory=dict)
    last_at: dict[str, datetime] = field(default_factory=dict)
    recent: deque[datetime] = field(default_factory=deque)


@dataclass
class PreviewBook:
    """One mechanism's preview counts in this process: member id → tally."""

    tallies: dict[str, Tally] = field(default_factory=dict)


_BOOKS: WeakKeyDictionary[Pictures, dict[str, PreviewBook]] = WeakKeyDictionary()


def _book(ctx: Context, mechanism_id: str) -> PreviewBook:
    return _BOOKS.setdefault(ctx.pictures, {}).setdefault(mechanism_id, PreviewBook())


def admit(ctx: Context, picture: Picture, member: Member, now: datetime) -> None:
    """Count one preview by ``member`` at ``now``, or refuse it when the member has had its hour's worth.

    Raises:
        PreviewsExhausted: ``previews_per_hour`` already asked for in the last hour (says when to ask again).
    """
    limit = picture.mechanism.rules.previews_per_hour
    tally = _book(ctx, picture.mechanism.id).tallies.setdefault(member.id, Tally(party=member.party))
    while tally.recent and tally.recent[0] <= now - HOUR:
        tally.recent.popleft()
    if len(tally.recent) >= limit:
        wait = max(1, int((tally.recent[0] + HOUR - now).total_seconds()) + 1) if tally.recent else 3600
        raise PreviewsExhausted(
            f"previews: {member.id} has asked for {len(tally.recent)} previews in the last hour, the most the "
            f"mechanism's rules allow (previews_per_hour {limit}); ask again in {wait} s or notify the activity",
            retry_after_s=wait,
        )
    tally.recent.append(now)
    tally.total += 1


def reached(ctx: Context, mechanism_id: str, member: Member, parties: set[str], now: datetime) -> None:
    """Note that ``member``'s preview at ``now`` reached these parties' notices (within the separation minima)."""
    tally = _book(ctx, mechanism_id).tallies.setdefault(member.id, Tally(party=member.party))
    for party in parties:
        tally.reached[party] = tally.reached.get(party, 0) + 1
        tally.last_at[party] = now


def counts(ctx: Context, mechanism_id: str, reader: Member) -> list[dict[str, Any]]:
    """The preview counts ``reader`` may read, by member: a party its own members' and, of the others, only
    how often they reached its own notices; the facilitator and observers every count."""
    ctx.pictures.get(mechanism_id)
    out = []
    for member_id, t in sorted(_book(ctx, mechanism_id).tallies.items()):
        own = reader.role is not Role.PARTY or t.party == reader.party
        reached_ = t.reached if own else {p: n for p, n in t.reached.items() if p == reader.party}
        if not own and not reached_:
            continue
        row: dict[str, Any] = {
            "member": member_id,
            "party": t.party,
            "reached": dict(sorted(reached_.items())),
            "last_reached_at": {p: iso(t.last_at[p]) for p in sorted(reached_)},
        }
        if own:
            row["previews"] = t.total
        out.append(row)
    return out
