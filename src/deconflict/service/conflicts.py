"""Conflicts after detection: listing them, a party acknowledging one, closing one by hand, and the
service closing those an amendment, a cancellation or a withdrawn zone settles (telling the other parties
on the hotline how it closed and by whom).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true

from deconflict.clock import iso
from deconflict.errors import Forbidden, InvalidInput, InvalidState
from deconflict.formats.docs import choice
from deconflict.model import MANUAL_RESOLUTIONS, ConflictStatus, Member, Resolution, Role, ZoneKind, counts_after
from deconflict.record import chain
from deconflict.record.chain import EntryType
from deconflict.service import queries
from deconflict.service.context import IMMEDIATE, SYSTEM, Context, SignatureMode, retrying
from deconflict.service.picture import Picture, any_member, party_member
from deconflict.service.posting import post_standard
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ConflictRow

__all__ = [
    "acknowledge_conflict",
    "check_acceptance",
    "check_awaited",
    "ends_after",
    "live",
    "close_conflicts",
    "conflicts",
    "record_acknowledgement",
    "record_resolution",
    "resolve_conflict",
    "title",
]


def title(value: str | None) -> str:
    """A title or note as given, stripped.

    Raises:
        InvalidInput: not text, or longer than 500 characters.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("title: expected text", field="title")
    if len(value) > 500:
        raise InvalidInput("title: longer than 500 characters", field="title")
    return value.strip()


def conflicts(
    ctx: Context,
    mechanism_id: str,
    *,
    status: str | None = None,
    party: str | None = None,
    ending_after: datetime | None = None,
    activities: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Conflicts with their status, newest last; ``status`` 'unresolved' means open or acknowledged;
    ``ending_after``: only those that still count after it (:func:`ends_after`); ``activities``: only those
    of these activities (the one whose notice raised it, or the other one)."""
    ctx.pictures.get(mechanism_id)
    stmt = select(ConflictRow).where(ConflictRow.mechanism_id == mechanism_id)
    if status == "unresolved":
        stmt = stmt.where(ConflictRow.status != ConflictStatus.RESOLVED.value)
    elif status is not None:
        stmt = stmt.where(ConflictRow.status == choice(status, ConflictStatus, "status").value)
    if ending_after is not None:
        stmt = stmt.where(_may_end_after(ending_after))
    if activities is not None:
        stmt = stmt.where(_of_activities(activities))
    out = _read(ctx, stmt)
    if ending_after is not None:
        out = [c for c in out if ends_after(c, ending_after)]
    if party is not None:
        out = [c for c in out if party in c["parties"]]
    return out


def live(ctx: Context, mechanism_id: str, *, since: datetime, activities: Collection[str]) -> list[dict[str, Any]]:
    """What the live picture chooses its conflicts from, newest last: every open conflict, every acknowledged
    one whose window may end after ``since`` (more than :func:`ends_after` keeps: the caller decides), and every
    conflict of ``activities``, whatever its status. Read from the database by these conditions, not every
    conflict the mechanism ever had (a year of operation holds thousands, read on each of the page's
    reloads)."""
    ctx.pictures.get(mechanism_id)
    stmt = select(ConflictRow).where(
        ConflictRow.mechanism_id == mechanism_id,
        or_(
            ConflictRow.status == ConflictStatus.OPEN.value,
            and_(ConflictRow.status == ConflictStatus.ACKNOWLEDGED.value, _may_end_after(since)),
            _of_activities(activities),
        ),
    )
    return _read(ctx, stmt)


def _read(ctx: Context, stmt: Any) -> list[dict[str, Any]]:
    with ctx.store.read() as s:
        rows = list(s.scalars(stmt.order_by(ConflictRow.detected_at, ConflictRow.id)))
    return [queries.conflict_doc(r) for r in rows]


MOST_NAMED = 2_000
"""The most activities :func:`conflicts` and :func:`live` name in their query; for more, every conflict is
read and chosen in Python (a database's limit on a statement's values is 32,766 in SQLite)."""


def _of_activities(ids: Collection[str]) -> ColumnElement[bool]:
    """SQL: the conflict concerns one of ``ids`` (true for every conflict beyond :data:`MOST_NAMED` ids)."""
    if len(ids) > MOST_NAMED:
        return true()
    named = sorted(ids)
    return or_(ConflictRow.activity.in_(named), ConflictRow.other_activity.in_(named))


def _may_end_after(at: datetime) -> ColumnElement[bool]:
    """SQL: the conflict's stored window may end after ``at``: its end to the second is not before ``at``'s,
    or it has no window (:func:`ends_after` then judges by its acknowledgements). Ends are stored as
    :func:`~deconflict.clock.iso` writes them (``YYYY-MM-DDTHH:MM:SS``, then a fraction or ``Z``), so their
    first 19 characters order as their times to the second, on SQLite and PostgreSQL alike."""
    end = ConflictRow.doc["end"].as_string()
    return or_(end.is_(None), func.substr(end, 1, 19) >= iso(at)[:19])


def ends_after(conflict: dict[str, Any], at: datetime) -> bool:
    """Whether a conflict (as members read it) still counts after ``at``: its window ends after it; one whose
    window its readers are not shown (a short-notice conflict under ``conflicts-only``, a tactical one) by the
    last time they were shown, its last acknowledgement or else its detection (:func:`model.counts_after`)."""
    return counts_after(conflict.get("end"), conflict.get("detected_at"), conflict.get("acknowledged"), at)


@retrying
def acknowledge_conflict(
    ctx: Context, *, mechanism_id: str, actor: str, conflict_id: str, mode: SignatureMode = IMMEDIATE
) -> dict[str, Any]:
    """A party acknowledges a conflict it was alerted to; returns the conflict.

    Raises:
        Forbidden: the conflict does not await the actor's party.
        InvalidState: it is resolved, or the party already acknowledged it.
    """
    with ctx.exclusive(mechanism_id) as picture:
        member = party_member(picture, actor)
        c = queries.visible_conflict(ctx, mechanism_id, conflict_id, member)  # hidden: answered as absent
        check_awaited(c, member.party)
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            record_acknowledgement(w, actor, conflict_id, member.party, mode.now(ctx.clock))
        return queries.conflict(ctx, mechanism_id, conflict_id)


def check_awaited(c: dict[str, Any], party: str) -> None:
    """Raise unless ``party`` is one the conflict awaits and it is still open for it."""
    cid = c["id"]
    if c["status"] == ConflictStatus.RESOLVED.value:
        raise InvalidState(f"conflict {cid!r} is already resolved ({c['resolution']}); nothing to acknowledge")
    if party not in c.get("awaiting", ()):
        awaiting = list(c.get("awaiting", ()))
        pending = [p for p in awaiting if p not in c["acknowledged"]]
        if awaiting and not pending:  # no longer "awaits": say who it awaited, and that they answered
            said = f"awaited the acknowledgement of {', '.join(awaiting)}, not of {party}, and has it"
        else:
            said = f"awaits the acknowledgement of {', '.join(pending) or 'nobody'}, not of {party}"
        raise Forbidden(
            f"conflict {cid!r} {said}" + (" (you were sent an information copy)" if party in c["parties"] else "")
        )
    if party in c["acknowledged"]:
        raise InvalidState(f"conflict {cid!r} was already acknowledged by {party}")


def record_acknowledgement(w: RecordWriter, actor: str, conflict_id: str, party: str, now: datetime) -> int:
    """One entry: ``party`` acknowledges the conflict, and with it its alerts still awaiting that party."""
    alerts = queries.open_alerts(w.session, w.mechanism_id, conflict_id, party)
    payload = {"id": conflict_id, "party": party, "messages": alerts}
    return w.append(actor, EntryType.CONFLICT_ACKNOWLEDGED, payload, now)


def record_resolution(
    w: RecordWriter,
    picture: Picture | None,
    actor: str,
    conflict_id: str,
    resolution: Resolution,
    note: str,
    now: datetime,
    *,
    by: str | None = None,
) -> int:
    """One entry: the conflict is resolved, and its alerts still awaiting an acknowledgement close with it.

    With ``by`` (the party whose action closed it), the conflict's other parties, and the facilitator for
    a red line, are told on the hotline in their own language, with the note of a member who resolved it.
    Returns the sequence number of the last entry written.
    """
    s, mechanism_id = w.session, w.mechanism_id
    payload = {
        "id": conflict_id,
        "resolution": resolution.value,
        "note": note,
        "messages": queries.open_alerts(s, mechanism_id, conflict_id),
    }
    seq = w.append(actor, EntryType.CONFLICT_RESOLVED, payload, now)
    row = s.get(ConflictRow, (mechanism_id, conflict_id))
    if by is None or picture is None or row is None:
        return seq
    tell = set(row.doc["parties"])
    if row.doc.get("zone_kind") == ZoneKind.RED_LINE.value:
        tell |= {m.party for m in picture.mechanism.members if m.role is Role.FACILITATOR}
    tell.discard(by)
    if tell:
        params: dict[str, Any] = {"conflict": conflict_id, "ref": row.doc["activity"], "how": resolution.value}
        params["party"] = by
        template = "conflict_closed"
        if note and actor not in chain.SERVICE_ACTORS:
            template, params["note"] = "conflict_closed_note", note
        post_standard(w, picture, template, params, sorted(tell), (queries.ABOUT_CONFLICT, conflict_id), now)
        seq = w.last_seq
    return seq


def close_conflicts(
    w: RecordWriter,
    picture: Picture | None,
    about_id: str,
    now: datetime,
    how: Resolution,
    note: str,
    *,
    by: str,
    zone: bool = False,
) -> list[str]:
    """Resolve every open strategic conflict of an activity (or, with ``zone``, about a zone) as ``how``.

    Returns the conflicts closed, oldest first.
    """
    about = (
        ConflictRow.zone == about_id
        if zone
        else (ConflictRow.activity == about_id) | (ConflictRow.other_activity == about_id)
    )
    rows = w.session.scalars(
        select(ConflictRow).where(
            ConflictRow.mechanism_id == w.mechanism_id,
            ConflictRow.status != ConflictStatus.RESOLVED.value,
            ConflictRow.kind.not_in([k.value for k in queries.TACTICAL_KINDS]),
            about,
        )
    ).all()
    closed = []
    for row in sorted(rows, key=lambda r: (r.detected_at, int(r.id[1:]) if r.id[1:].isdigit() else 0)):
        record_resolution(w, picture, SYSTEM, row.id, how, note, now, by=by)
        closed.append(row.id)
    return closed


def check_acceptance(c: dict[str, Any], member: Member) -> None:
    """Raise unless ``member`` may resolve the conflict as accepted: accepting is the awaited parties'
    decision, so every party the conflict awaits must have acknowledged it, the resolver excepted when
    it is one of them (a facilitator accepts only once they all have).

    Raises:
        Forbidden: an awaited party has not acknowledged the conflict yet.
    """
    me = member.party if member.role is Role.PARTY else None
    pending = [p for p in c.get("awaiting", ()) if p != me and p not in c["acknowledged"]]
    if pending:
        raise Forbidden(
            f"conflict {c['id']!r} is accepted only by the party it awaits: {', '.join(pending)} has not "
            "acknowledged it yet (resolve it as escalated, or wait for the acknowledgement)"
        )


@retrying
def resolve_conflict(
    ctx: Context,
    *,
    mechanism_id: str,
    actor: str,
    conflict_id: str,
    resolution: str,
    note: str = "",
    mode: SignatureMode = IMMEDIATE,
) -> dict[str, Any]:
    """Close a conflict by hand as accepted or escalated (a party it awaits, or the facilitator).
    Accepted needs the awaited parties: see :func:`check_acceptance`. The party whose activity caused the
    conflict (awaited by it) never resolves it by hand: it amends or cancels, and the conflict closes.

    Raises:
        InvalidInput: a resolution the service records itself.
        Forbidden: the actor is neither a party the conflict awaits nor the facilitator, or it accepts a
            conflict an awaited party has not acknowledged.
        InvalidState: the conflict is already resolved.
    """
    with ctx.exclusive(mechanism_id) as picture:
        member = any_member(picture, actor)
        how = choice(resolution, Resolution, "resolution")
        if how not in MANUAL_RESOLUTIONS:
            amend = (
                ": amend or cancel the activity in it, and the conflict closes as amended by itself"
                if how is Resolution.AMENDED
                else ""
            )
            raise InvalidInput(
                f"resolution: {how.value!r} is recorded by the service when it happens{amend}; by hand a conflict "
                f"is resolved as {' or '.join(r.value for r in MANUAL_RESOLUTIONS)}",
                field="resolution",
            )
        c = queries.visible_conflict(ctx, mechanism_id, conflict_id, member)  # hidden: answered as absent
        awaited = c.get("awaiting", ())
        if member.role is Role.OBSERVER:
            raise Forbidden(f"member {actor!r} is an observer: it reads the conflicts and never resolves them")
        if not (member.role is Role.FACILITATOR or member.party in awaited):  # a party, the observer refused above
            causer = member.party in c["parties"]
            raise Forbidden(
                f"conflict {conflict_id!r} is resolved by hand by {', '.join(awaited) or 'nobody'} (the party it "
                f"awaits) or the facilitator"
                + ("; your activity caused it: amend or cancel it, and the conflict closes by itself" if causer else "")
            )
        if how is Resolution.ACCEPTED:
            check_acceptance(c, member)
        if c["status"] == ConflictStatus.RESOLVED.value:
            raise InvalidState(f"conflict {conflict_id!r} is already resolved ({c['resolution']})")
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            record_resolution(w, picture, actor, conflict_id, how, title(note), mode.now(ctx.clock), by=member.party)
        return queries.conflict(ctx, mechanism_id, conflict_id)
