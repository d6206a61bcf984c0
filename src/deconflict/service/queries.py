"""Reads several use cases share: an activity, a conflict, a key; which messages still wait for an
answer; which alerts a conflict has open; whether a line check was reported down; the open tactical
conflicts. Each takes a session or the context, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session

from deconflict.clock import iso
from deconflict.disclosure import (
    FOLLOW_UPS,
    Audience,
    audience_of,
    conflict_public,
    followed,
    key_public,
    message_status_view,
    partial_activity,
    sees_conflict,
    sees_message,
    sees_whole_notices,
)
from deconflict.errors import NotFound
from deconflict.formats.docs import activity_from_doc, activity_to_doc
from deconflict.hotline import MessageType
from deconflict.model import Activity, ConflictKind, ConflictStatus, Disclosure, Member
from deconflict.record.chain import Head
from deconflict.service.context import Context
from deconflict.service.picture import Picture
from deconflict.store import ledger
from deconflict.store.schema import ActivityRow, ConflictRow, KeyRow, LedgerEntry, MessageRow

T = TypeVar("T")

__all__ = [
    "AUDIENCES_KEPT",
    "audiences",
    "ABOUT_CONFLICT",
    "ABOUT_MESSAGE",
    "TACTICAL_KINDS",
    "activity",
    "activity_not_found",
    "alerted_conflict",
    "awaits",
    "conflict",
    "conflict_doc",
    "conflict_not_found",
    "heard_since",
    "key",
    "key_doc",
    "last_line_check",
    "line_down_posted",
    "message_doc",
    "open_alerts",
    "open_tactical",
    "sees",
    "sees_activity",
    "unanswered",
    "visible_activity",
    "visible_conflict",
]

TACTICAL_KINDS = (ConflictKind.TRACKS, ConflictKind.CONFORMANCE, ConflictKind.INTRUSION)
"""Conflicts raised by tracks (they clear by themselves); the others are raised by notices and zones."""
ABOUT_CONFLICT = "conflict"
"""A message's ``about`` kind when it alerts to a conflict."""
ABOUT_MESSAGE = "message"
"""A message's ``about`` kind when it follows another message (escalation, line down or restored)."""


def activity_not_found(activity_id: str) -> NotFound:
    """The one answer for an activity that does not exist and for one the reader may not see: the same
    words, field and status, so that asking reveals nothing of another party's notices."""
    return NotFound(f"activity {activity_id!r}: no such activity that you may see", field="activity")


def no_notam_in_part(activity_id: str) -> NotFound:
    """An activity the reader sees only in part (another party's, under conflicts-only: the part in conflict with
    its own) has no NOTAM for it, which carries the whole notice. Said so, as the reader already sees the activity:
    "no such activity" contradicted what ``GET .../activities/{id}`` showed it."""
    return NotFound(
        f"activity {activity_id!r}: you see only its part in conflict with yours (the mechanism discloses no more), "
        "and a NOTAM carries the whole notice: none is drafted for you",
        field="activity",
    )


def conflict_not_found(conflict_id: str) -> NotFound:
    """The one answer for a conflict that does not exist and for one that does not concern the reader."""
    return NotFound(f"conflict {conflict_id!r}: no such conflict that concerns you", field="conflict")


def activity(ctx: Context, mechanism_id: str, activity_id: str) -> Activity:
    """The current version of an activity (whoever may see it: callers on a member's behalf use
    :func:`visible_activity`).

    Raises:
        NotFound: no such activity in the mechanism.
    """
    with ctx.store.read() as s:
        row = s.get(ActivityRow, (mechanism_id, activity_id))
        if row is None:
            raise activity_not_found(activity_id)
        return activity_from_doc(row.doc, mechanism=mechanism_id)


def sees_activity(ctx: Context, a: Activity, reader: Member, disclosure: Disclosure) -> bool:
    """Whether ``reader`` may see ``a`` at all: its whole notice, or (``conflicts-only``) the parts of its
    current version in a conflict that concerns the reader, as the routes show it."""
    if sees_whole_notices(reader, disclosure, a.party):
        return True
    with ctx.store.read() as s:
        rows = s.scalars(
            select(ConflictRow).where(
                ConflictRow.mechanism_id == a.mechanism,
                or_(ConflictRow.activity == a.id, ConflictRow.other_activity == a.id),
            )
        ).all()
        docs = [conflict_doc(r) for r in rows]
    return bool(partial_activity(activity_to_doc(a), docs, reader)["overlap"])


def visible_activity(ctx: Context, mechanism_id: str, activity_id: str, reader: Member) -> Activity:
    """The current version of an activity ``reader`` may see.

    Raises:
        NotFound: no such activity, or one hidden from ``reader`` (the same answer: :func:`activity_not_found`).
    """
    a = activity(ctx, mechanism_id, activity_id)
    if not sees_activity(ctx, a, reader, ctx.pictures.get(mechanism_id).mechanism.rules.disclosure):
        raise activity_not_found(activity_id)
    return a


def conflict_doc(row: ConflictRow) -> dict[str, Any]:
    """A stored conflict as members read it."""
    return conflict_public(
        row.doc,
        status=row.status,
        resolution=row.resolution,
        detected_at=iso(row.detected_at),
        acknowledged=row.acknowledged,
        resolved_at=iso(row.resolved_at) if row.resolved_at else None,
        resolved_by=row.resolved_by,
    )


def conflict(ctx: Context, mechanism_id: str, conflict_id: str) -> dict[str, Any]:
    """A conflict as members read it.

    Raises:
        NotFound: no such conflict in the mechanism.
    """
    with ctx.store.read() as s:
        row = s.get(ConflictRow, (mechanism_id, conflict_id))
        if row is None:
            raise conflict_not_found(conflict_id)
        return conflict_doc(row)


def visible_conflict(ctx: Context, mechanism_id: str, conflict_id: str, reader: Member) -> dict[str, Any]:
    """A conflict that concerns ``reader`` (facilitators and observers: every conflict).

    Raises:
        NotFound: no such conflict, or one that does not concern ``reader`` (the same answer).
    """
    c = conflict(ctx, mechanism_id, conflict_id)
    if not sees_conflict(reader, c):
        raise conflict_not_found(conflict_id)
    return c


def message_doc(row: MessageRow, reader: Member) -> dict[str, Any]:
    """A stored message worded for ``reader``, with where it stands."""
    return message_status_view(
        row.doc,
        seq=row.seq,
        sender=row.sender,
        sent_at=row.sent_at,
        acknowledged=row.acknowledged,
        acknowledged_at=iso(row.acknowledged_at) if row.acknowledged_at else None,
        steps=row.steps,
        reader=reader,
        closed_at=iso(row.closed_at) if row.closed_at else None,
        closed_note=row.closed_note,
    )


def sees(row: MessageRow, reader: Member) -> bool:
    """Whether ``reader`` may read a stored message."""
    return sees_message(reader, to=row.recipients, sender=row.sender, from_party=row.doc.get("from_party"))


AUDIENCES_KEPT = 200_000
"""How many conflicts' and messages' audiences a mechanism keeps in memory before it starts again (each is
read again from the tables when a follow-up entry names it)."""


def audiences(
    ctx: Context, mechanism_id: str, entries: list[dict[str, Any]], *, read: bool = True
) -> dict[tuple[str, str], Audience] | None:
    """Who may see each conflict and message that the follow-up entries among ``entries`` name
    (``disclosure.FOLLOW_UPS``), from the entries that recorded them: those among ``entries``, those read
    before in this process, else the tables. None: the tables would have to be read, and ``read`` is False
    (the caller is on the event loop)."""
    refs: set[tuple[str, str]] = set()
    known = ctx.audiences.setdefault(mechanism_id, {})
    for e in entries:
        if e["type"] in FOLLOW_UPS:
            if (ref := followed(e)) is not None:
                refs.add(ref)
        elif (found := audience_of(e)) is not None:
            known[found[0]] = found[1]
    if not refs:
        return {}
    missing = [ref for ref in refs if ref not in known]
    if missing:
        if not read:
            return None
        if len(known) > AUDIENCES_KEPT:
            known.clear()
        with ctx.store.read() as s:
            conflicts = [i for kind, i in missing if kind == "conflict"]
            messages = [i for kind, i in missing if kind == "message"]
            if conflicts:
                for cid, parties in s.execute(
                    select(ConflictRow.id, ConflictRow.parties).where(
                        ConflictRow.mechanism_id == mechanism_id, ConflictRow.id.in_(conflicts)
                    )
                ):
                    known[("conflict", cid)] = ("conflict", tuple(parties))
            if messages:
                for mid, to, sender, doc in s.execute(
                    select(MessageRow.id, MessageRow.recipients, MessageRow.sender, MessageRow.doc).where(
                        MessageRow.mechanism_id == mechanism_id, MessageRow.id.in_(messages)
                    )
                ):
                    known[("message", mid)] = ("message", tuple(to), sender, doc.get("from_party"))
    return {ref: known[ref] for ref in refs if ref in known}


def readable_message(s: Session, mechanism_id: str, message_id: str, reader: Member) -> MessageRow | None:
    """The stored message ``reader`` may read (None: no such message, or one hidden from the reader, which every
    caller answers alike)."""
    row = s.get(MessageRow, (mechanism_id, message_id))
    return row if row is not None and sees(row, reader) else None


def key_doc(row: KeyRow) -> dict[str, Any]:
    """A stored key as the record registered it."""
    return key_public(
        key_id=row.key_id,
        owner=row.owner,
        public_key=row.public_key,
        custody=row.custody,
        registered_seq=row.registered_seq,
        registered_at=row.registered_at,
        revoked_seq=row.revoked_seq,
    )


def key(ctx: Context, mechanism_id: str, key_id: str) -> dict[str, Any]:
    """A registered key.

    Raises:
        NotFound: the key is not registered in the mechanism.
    """
    with ctx.store.read() as s:
        row = s.get(KeyRow, (mechanism_id, key_id))
        if row is None:
            raise NotFound(f"key {key_id!r} is not registered in mechanism {mechanism_id!r}", field="key_id")
        return key_doc(row)


def unanswered(mechanism_id: str) -> tuple[Any, ...]:
    """Where-clauses of the messages still waiting for an answer: they need one, have it not from every
    recipient, and were not closed with their conflict (what climbs, what waits, what an answer settles).

    The few rows they find are put in the record's order here (:func:`by_seq`), not by the database: asked
    for that order, SQLite walks every message of the mechanism through ``ix_messages_seq`` to avoid a sort,
    instead of the open ones alone through ``ix_messages_open``."""
    return (
        MessageRow.mechanism_id == mechanism_id,
        MessageRow.needs_ack.is_(True),
        MessageRow.acknowledged_at.is_(None),
        MessageRow.closed_at.is_(None),
    )


def awaits(c: ConflictRow | None, party: str) -> bool:
    """Whether an unresolved conflict still waits for ``party``'s acknowledgement."""
    return (
        c is not None
        and c.status != ConflictStatus.RESOLVED.value
        and party in c.doc.get("awaiting", ())
        and party not in c.acknowledged
    )


def by_seq(rows: Iterable[T]) -> list[T]:
    """Rows that have a ``seq`` in the record's order (see :func:`unanswered`)."""
    return sorted(rows, key=lambda row: row.seq)  # type: ignore[attr-defined]


def waiting_on(s: Session, mechanism_id: str, party: str, *, after_seq: int = 0) -> list[MessageRow]:
    """The messages after ``after_seq`` that wait on ``party`` for its acknowledgement (:func:`unanswered`, sent to
    it, not acknowledged by it), in the record's order. The few open ones are read through ``ix_messages_open``
    and ``after_seq`` applied here: given to the database as ``seq > ?``, it made SQLite walk every message of
    the mechanism after it through ``ix_messages_seq`` (52 ms a read at 250,000 messages, for 2 open ones)."""
    rows = s.scalars(select(MessageRow).where(*unanswered(mechanism_id)))
    return [r for r in by_seq(rows) if r.seq > after_seq and party in r.recipients and party not in r.acknowledged]


def open_alerts(s: Session, mechanism_id: str, conflict_id: str, party: str | None = None) -> list[str]:
    """Ids of the alerts about a conflict still awaiting an acknowledgement (from ``party``, when given)."""
    rows = s.execute(
        select(MessageRow.id, MessageRow.seq, MessageRow.recipients, MessageRow.acknowledged).where(
            *unanswered(mechanism_id), MessageRow.about_kind == ABOUT_CONFLICT, MessageRow.about_id == conflict_id
        )
    ).all()
    return [r.id for r in by_seq(rows) if party is None or (party in r.recipients and party not in r.acknowledged)]


def alerted_conflict(s: Session, mechanism_id: str, row: MessageRow, party: str) -> str | None:
    """The conflict an alert is about, when acknowledging the alert acknowledges that conflict for ``party``."""
    if row.about_kind != ABOUT_CONFLICT or row.about_id is None:
        return None
    c = s.get(ConflictRow, (mechanism_id, row.about_id))
    return c.id if c is not None and awaits(c, party) else None


def line_down_posted(s: Session, mechanism_id: str, check_id: str) -> bool:
    """Whether the service announced the line down after the line check ``check_id`` went unanswered."""
    stmt = select(MessageRow.id).where(
        MessageRow.mechanism_id == mechanism_id,
        MessageRow.about_kind == ABOUT_MESSAGE,
        MessageRow.about_id == check_id,
        MessageRow.type == MessageType.ALERT.value,
    )
    return s.execute(stmt.limit(1)).first() is not None


def last_line_check(s: Session, mechanism_id: str, party: str) -> MessageRow | None:
    """The latest line check sent to ``party`` (None: none yet)."""
    return s.scalars(
        select(MessageRow)
        .where(
            MessageRow.mechanism_id == mechanism_id,
            MessageRow.type == MessageType.LINE_CHECK.value,
            MessageRow.about_id == party,
        )
        .order_by(MessageRow.seq.desc())
        .limit(1)
    ).first()


@dataclass(frozen=True)
class Heard:
    """What :func:`heard_since` found for a party's line check: the record read up to entry ``upto`` (its
    sequence number and hash) for the entries of ``members`` (the party's, as the caller's picture knew
    them), and the time of the first of them after the check (None: none yet)."""

    check_seq: int
    members: tuple[str, ...]
    upto: Head
    at: datetime | None


HeardKept = dict[tuple[str, str], Heard]
"""(mechanism, party) → what :func:`heard_since` found last (``Context.heard``)."""

_FIRST_HEARD = (
    select(LedgerEntry.seq, LedgerEntry.at)
    .where(
        LedgerEntry.mechanism_id == bindparam("mechanism"),
        LedgerEntry.seq > bindparam("after"),
        LedgerEntry.seq <= bindparam("upto"),
        LedgerEntry.actor.in_(bindparam("members", expanding=True)),
    )
    .order_by(LedgerEntry.seq)
    .limit(1)
)


def heard_since(
    s: Session, picture: Picture, party: str, check: MessageRow | None, kept: HeardKept | None = None
) -> datetime | None:
    """The time of the party's first entry on the record after a line check was sent (None: silence): a
    sign of life, which makes an unanswered check late rather than down (any entry after the check will do,
    and entries never go back in time).

    With ``kept`` (the live duty tick's, kept between ticks), the record is read only after where the last
    call read it: a silent party's check was otherwise looked for in every entry since it was sent, on every
    tick (126,000 entries, 7% of the server's time, after 70 s of a busy hotline). What was read stands only
    while the record still holds that entry with that hash (a record restored from a backup is read again)
    and the party's members are the same (one added, and seen only now, may have spoken since the check)."""
    if check is None:
        return None
    mid = picture.mechanism.id
    members = tuple(sorted(m.id for m in picture.mechanism.members if m.party == party))
    head = ledger.read_head(s, mid)
    after = check.seq
    last = kept.get((mid, party)) if kept is not None else None
    if (
        last is not None
        and last.check_seq == check.seq
        and last.members == members  # a member added since (a picture behind another process's) read anew
        and last.upto.seq <= head.seq
        and ledger.hash_at(s, mid, last.upto.seq) == last.upto.hash
    ):
        if last.at is not None:
            return last.at
        after = last.upto.seq
    found = s.execute(
        _FIRST_HEARD, {"mechanism": mid, "after": after, "upto": head.seq, "members": list(members)}
    ).first()
    at: datetime | None = found[1] if found is not None else None
    if kept is not None:
        kept[(mid, party)] = Heard(check.seq, members, head, at)
    return at


def open_tactical(mechanism_id: str) -> Select[ConflictRow]:
    """The query of the mechanism's unresolved tactical conflicts."""
    return select(ConflictRow).where(
        ConflictRow.mechanism_id == mechanism_id,
        ConflictRow.kind.in_([k.value for k in TACTICAL_KINDS]),
        ConflictRow.status != ConflictStatus.RESOLVED.value,
    )
