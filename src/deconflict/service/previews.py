"""Previews counted and limited: how many each member asked for, whose notices they reached, and when.

A preview writes nothing to the record (it is a question, not a commitment), so without a count it
would be a free oracle: small probes repeated map another party's footprints. Here each member may
ask for at most ``previews_per_hour`` previews in any hour (the mechanism's rules; over it, 429 with
how long to wait), and every preview is counted: by whom, how many reached another party's notices
and whose. A party reads how often each other party's previews reached its own notices; the
facilitator and observers read every count (``GET .../previews``, docs/disclosure.md).

The counts live in the database, not in a server process: every process on one database shares one
allowance per member, and a restart forgets nothing. Two tables (migration 0010):
:class:`~deconflict.store.schema.PreviewTally` holds each member's total and, per other party, how many
of its previews reached that party's notices and when last; :class:`~deconflict.store.schema.PreviewAdmission`
holds the previews admitted in the last hour (what the limit counts; older rows are pruned at the
member's next preview).

Admission is atomic across processes: one transaction takes a lock on the member, prunes, counts the
last hour's admissions and, when under the limit, inserts this one and raises the total, so two
processes can never both admit a member's last preview. The lock is, on PostgreSQL, a transaction-level
advisory lock (``pg_advisory_xact_lock``) keyed by mechanism and member (:func:`lock_key`: other
members are not held up); on SQLite, the database's write lock, taken by the transaction's first
statement (a write that changes nothing, as the record's own lock does), so another process waits
(``busy_timeout``) until this transaction ends and then counts what it left. Noting whose notices a
preview reached takes the same lock in a second, short transaction: a preview is counted (and limited)
before it is checked, so that one the checks refuse still counts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from deconflict.clock import iso
from deconflict.errors import DeconflictError
from deconflict.model import Member, Role
from deconflict.service.context import Context
from deconflict.service.picture import Picture
from deconflict.store.schema import PreviewAdmission, PreviewTally

__all__ = ["HOUR", "PreviewsExhausted", "admit", "counts", "lock_key", "reached"]

HOUR = timedelta(hours=1)
"""The window the rate limit counts in."""

TOTAL = ""
"""``reached_party`` of a member's own row: all its previews (and the row its lock stands for)."""


class PreviewsExhausted(DeconflictError):
    """A member asked for more previews in an hour than the mechanism's rules allow."""

    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, field="previews_per_hour")
        self.retry_after_s = retry_after_s


def lock_key(mechanism_id: str, member_id: str) -> int:
    """The PostgreSQL advisory lock key of a member's preview counts: a signed 64-bit number.

    >>> lock_key("m", "IL") == lock_key("m", "IL") != lock_key("m", "TR")
    True
    """
    digest = hashlib.blake2b(f"deconflict.previews:{mechanism_id}\x00{member_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock(session: Session, mechanism_id: str, member_id: str) -> None:
    """Hold the member's preview counts until this transaction ends (see the module's docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(mechanism_id, member_id)})
    else:  # SQLite: the deferred BEGIN becomes the write lock at this first write statement
        session.execute(text("UPDATE preview_tallies SET count = count WHERE 0 = 1"))


def _add(session: Session, mechanism_id: str, member: Member, reached_party: str, now: datetime) -> int:
    """Raise one of the member's counts by one (the row is made at its first); the new count."""
    row = session.get(PreviewTally, (mechanism_id, member.id, reached_party))
    if row is None:
        row = PreviewTally(
            mechanism_id=mechanism_id, member_id=member.id, reached_party=reached_party, party=member.party, count=0
        )
        session.add(row)
    row.count += 1
    row.last_at = now
    return row.count


def admit(ctx: Context, picture: Picture, member: Member, now: datetime) -> None:
    """Count one preview by ``member`` at ``now``, or refuse it when the member has had its hour's worth
    (in any process on this database).

    Raises:
        PreviewsExhausted: ``previews_per_hour`` already asked for in the last hour (says when to ask again).
    """
    limit = picture.mechanism.rules.previews_per_hour
    mid = picture.mechanism.id
    mine = (PreviewAdmission.mechanism_id == mid, PreviewAdmission.member_id == member.id)
    with ctx.store.transaction() as s:
        _lock(s, mid, member.id)
        s.execute(delete(PreviewAdmission).where(*mine, PreviewAdmission.at <= now - HOUR))
        found = s.execute(select(func.count(), func.min(PreviewAdmission.at)).where(*mine)).one()
        recent: int = found[0]
        oldest: datetime | None = found[1]  # None when the rules allow no preview at all
        if recent >= limit:
            wait = max(1, int((oldest + HOUR - now).total_seconds()) + 1) if oldest is not None else 3600
            raise PreviewsExhausted(
                f"previews: {member.id} has asked for {recent} previews in the last hour, the most the "
                f"mechanism's rules allow (previews_per_hour {limit}); ask again in {wait} s or notify the activity",
                retry_after_s=wait,
            )
        n = _add(s, mid, member, TOTAL, now)
        s.add(PreviewAdmission(mechanism_id=mid, member_id=member.id, n=n, at=now))


def reached(ctx: Context, mechanism_id: str, member: Member, parties: set[str], now: datetime) -> None:
    """Note that ``member``'s preview at ``now`` reached these parties' notices (within the separation minima)."""
    if not parties:
        return
    with ctx.store.transaction() as s:
        _lock(s, mechanism_id, member.id)
        for party in sorted(parties):
            _add(s, mechanism_id, member, party, now)


def counts(ctx: Context, mechanism_id: str, reader: Member) -> list[dict[str, Any]]:
    """The preview counts ``reader`` may read, by member: a party its own members' and, of the others, only
    how often they reached its own notices; the facilitator and observers every count."""
    ctx.pictures.get(mechanism_id)
    with ctx.store.read() as s:
        rows = s.scalars(select(PreviewTally).where(PreviewTally.mechanism_id == mechanism_id)).all()
    by_member: dict[str, list[PreviewTally]] = {}
    for r in rows:
        by_member.setdefault(r.member_id, []).append(r)
    out = []
    for member_id, tallies in sorted(by_member.items()):
        party = tallies[0].party
        total = sum(t.count for t in tallies if t.reached_party == TOTAL)
        own = reader.role is not Role.PARTY or party == reader.party
        reached_ = {
            t.reached_party: t for t in tallies if t.reached_party != TOTAL and (own or t.reached_party == reader.party)
        }
        if not own and not reached_:
            continue
        row: dict[str, Any] = {
            "member": member_id,
            "party": party,
            "reached": {p: reached_[p].count for p in sorted(reached_)},
            "last_reached_at": {p: iso(t.last_at) for p, t in sorted(reached_.items()) if t.last_at is not None},
        }
        if own:
            row["previews"] = total
        out.append(row)
    return out
