"""Tables as projections of the record: one function per entry type, used live and in replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, case, insert, update
from sqlalchemy.orm import Session

from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.model import ConflictStatus
from deconflict.record import salt
from deconflict.record.chain import EntryType
from deconflict.store import direct
from deconflict.store.ledger import connection_of
from deconflict.store.schema import (
    ActivityRow,
    ActivityVersionRow,
    ConflictRow,
    KeyRow,
    MechanismRow,
    MemberRow,
    MessageRow,
    ZoneRow,
)

__all__ = ["Applier", "applies", "apply"]

Applier = Callable[[Session, str, dict[str, Any], datetime, int, str], None]
_APPLIERS: dict[str, Applier] = {}


def applies(entry_type: str) -> Callable[[Applier], Applier]:
    """Register the decorated function as the projection of entries of ``entry_type``."""

    def register(fn: Applier) -> Applier:
        _APPLIERS[entry_type] = fn
        return fn

    return register


def apply(
    session: Session, *, mechanism: str, type: str, payload: dict[str, Any], at: datetime, seq: int, actor: str
) -> None:
    """Apply one record entry to the tables."""
    try:
        fn = _APPLIERS[type]
    except KeyError:
        raise ValueError(f"unknown record entry type {type!r}") from None
    if salt.FIELD in payload:  # the record's, not the tables' (record/salt.py)
        payload = salt.without(payload)
    try:
        fn(session, mechanism, payload, at, seq, actor)
    except InvalidInput as e:  # an entry naming a row the record does not hold (_held): which entry
        raise InvalidInput(f"entry {seq} ({type}): {e.message}") from None


_INSERTS: dict[Any, Any] = {}
"""One insert statement per table, built on first use (building it for every row cost a cache-key walk)."""


R = TypeVar("R")


def _held(row: R | None, what: str) -> R:
    """The row an entry changes; an entry naming one the record before it does not hold (a record cut or
    rewritten by hand: the service never writes one) is refused in words, never taken on."""
    if row is None:
        raise InvalidInput(f"it names {what}, which the record before it does not hold")
    return row


def _insert(session: Session, model: Any, row: dict[str, Any]) -> None:
    """Insert one row through the Core table on the transaction's connection (no ORM unit of work, no ORM
    execution layer on the hot path: a single execute, not an executemany of one)."""
    stmt = _INSERTS.get(model)
    if stmt is None:
        stmt = _INSERTS[model] = insert(model.__table__)
    direct.run(connection_of(session), stmt, row)


@applies(EntryType.MECHANISM_DECLARED)
def _mechanism(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    _insert(session, MechanismRow, {"id": mid, "name": p["name"], "doc": p, "declared_at": at})
    for m in p["members"]:
        _member(session, mid, m, at, seq, actor)
    if "service_key" in p:
        key = {"owner": "service", "custody": "service", **p["service_key"]}
        _key(session, mid, key, at, seq, actor)


@applies(EntryType.KEY_REGISTERED)
def _key(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    row = {k: p[k] for k in ("key_id", "owner", "public_key", "custody")}
    _insert(session, KeyRow, {"mechanism_id": mid, **row, "registered_seq": seq, "registered_at": at})


@applies(EntryType.KEY_REVOKED)
def _key_revoked(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    session.execute(
        update(KeyRow).where(KeyRow.mechanism_id == mid, KeyRow.key_id == p["key_id"]).values(revoked_seq=seq)
    )


@applies(EntryType.MEMBER_ADDED)
def _member(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    row = {k: p[k] for k in ("id", "name", "role", "party", "language")}
    _insert(session, MemberRow, {"mechanism_id": mid, **row, "added_at": at})


def _activity_version(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    fields = {
        "party": p["party"],
        "kind": p["kind"],
        "state": p["state"],
        "version": p["version"],
        "start": parse_utc(p["start"], field="start"),
        "end": parse_utc(p["end"], field="end"),
        "notified_at": parse_utc(p["notified_at"], field="notified_at"),
        "doc": p,
    }
    if p["version"] == 1:
        _insert(session, ActivityRow, {"mechanism_id": mid, "id": p["id"], **fields})
    else:
        session.execute(
            update(ActivityRow).where(ActivityRow.mechanism_id == mid, ActivityRow.id == p["id"]).values(**fields),
            execution_options={"synchronize_session": False},
        )
    version = {"version": p["version"], "seq": seq, "at": at, "actor": actor, "doc": p}
    _insert(session, ActivityVersionRow, {"mechanism_id": mid, "activity_id": p["id"], **version})


for _type in (EntryType.ACTIVITY_NOTIFIED, EntryType.ACTIVITY_AMENDED, EntryType.ACTIVITY_CANCELLED):
    applies(_type)(_activity_version)


@applies(EntryType.ZONE_DECLARED)
def _zone(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    zone = {"id": p["id"], "owner": p["owner"], "kind": p["kind"], "declared_at": at, "withdrawn_at": None, "doc": p}
    _insert(session, ZoneRow, {"mechanism_id": mid, **zone})


@applies(EntryType.ZONE_WITHDRAWN)
def _zone_withdrawn(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    row = _held(session.get(ZoneRow, (mid, p["id"])), f"zone {p['id']!r}")
    row.withdrawn_at = at


@applies(EntryType.CONFLICT_DETECTED)
def _conflict(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    _insert(
        session,
        ConflictRow,
        {
            "mechanism_id": mid,
            "id": p["id"],
            "kind": p["kind"],
            "status": ConflictStatus.OPEN.value,
            "resolution": None,
            "activity": p["activity"],
            "other_activity": p.get("other_activity"),
            "zone": p.get("zone"),
            "parties": p["parties"],
            "distance_m": p.get("distance_m"),
            "detected_at": at,
            "deadline": parse_utc(p["deadline"], field="deadline"),
            "acknowledged": {},
            "resolved_at": None,
            "resolved_by": None,
            "doc": p,
        },
    )


@applies(EntryType.CONFLICT_ACKNOWLEDGED)
def _acknowledged(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    """A party acknowledges a conflict; the alerts about it addressed to that party are settled with it."""
    _acknowledge_conflict(session, mid, p["id"], p["party"], at, actor)
    for message_id in p.get("messages", ()):
        _acknowledge_message(session, mid, message_id, p["party"], at, actor)


def _acknowledge_conflict(session: Session, mid: str, conflict_id: str, party: str, at: datetime, actor: str) -> None:
    row = _held(session.get(ConflictRow, (mid, conflict_id)), f"conflict {conflict_id!r}")
    acks = dict(row.acknowledged)
    acks[party] = {"member": actor, "at": iso(at)}
    row.acknowledged = acks
    awaited = set(row.doc.get("awaiting", []))
    if row.status == ConflictStatus.OPEN.value and awaited <= set(acks):
        row.status = ConflictStatus.ACKNOWLEDGED.value


@applies(EntryType.CONFLICT_RESOLVED)
def _resolved(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    """A conflict closes; its alerts still awaiting an acknowledgement close with it and stop climbing."""
    row = _held(session.get(ConflictRow, (mid, p["id"])), f"conflict {p['id']!r}")
    row.status = ConflictStatus.RESOLVED.value
    row.resolution = p["resolution"]
    row.resolved_at = at
    row.resolved_by = actor
    for message_id in p.get("messages", ()):
        message = _held(session.get(MessageRow, (mid, message_id)), f"message {message_id!r}")
        if message.closed_at is None:
            message.closed_at = at
            message.closed_note = f"conflict {p['id']} resolved ({p['resolution']})"


@applies(EntryType.MESSAGE_SENT)
def _message(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    about = p.get("about") or {}
    _insert(
        session,
        MessageRow,
        {
            "mechanism_id": mid,
            "id": p["id"],
            "seq": seq,
            "type": p["type"],
            "sender": actor,
            "recipients": p["to"],
            "needs_ack": p["needs_ack"],
            "sent_at": at,
            "deadline": parse_utc(p["deadline"], field="deadline") if p.get("deadline") else None,
            "acknowledged": {},
            "acknowledged_at": None,
            "steps": 0,
            "about_kind": about.get("kind"),
            "about_id": about.get("id"),
            "closed_at": None,
            "closed_note": None,
            "doc": p,
        },
    )
    settles = p.get("settles") or {}
    for conflict_id in settles.get("conflicts", ()):
        _acknowledge_conflict(session, mid, conflict_id, p["from_party"], at, actor)
    for message_id in settles.get("messages", ()):
        _acknowledge_message(session, mid, message_id, p["from_party"], at, actor)


@applies(EntryType.MESSAGE_ACKNOWLEDGED)
def _message_acknowledged(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    _acknowledge_message(session, mid, p["id"], p["party"], at, actor)


def _acknowledge_message(session: Session, mid: str, message_id: str, party: str, at: datetime, actor: str) -> None:
    row = _held(session.get(MessageRow, (mid, message_id)), f"message {message_id!r}")
    acks = dict(row.acknowledged)
    acks[party] = {"member": actor, "at": iso(at)}
    row.acknowledged = acks
    if row.acknowledged_at is None and set(row.recipients) <= set(acks):
        row.acknowledged_at = at


_ESCALATE = (
    update(MessageRow)
    .where(MessageRow.mechanism_id == bindparam("mechanism"), MessageRow.id == bindparam("message"))
    .values(steps=case((MessageRow.steps < bindparam("rung"), bindparam("rung")), else_=MessageRow.steps))
)
"""A message's rung raised to an escalation's, unless it is higher already (built once)."""


@applies(EntryType.MESSAGE_ESCALATED)
def _message_escalated(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    key, rung = (mid, p["id"]), _rung(p)
    objects = getattr(session, "identity_map", None)  # (restore's stand-in for a session has none: the ORM way)
    if rung is not None and objects is not None and objects.get(Session.identity_key(MessageRow, key)) is None:
        # no object of the session holds the row (nothing to keep in step with it): one UPDATE, not a SELECT to
        # make an object and a flush to write it back (most of a replayed escalation's time)
        if connection_of(session).execute(_ESCALATE, {"mechanism": mid, "message": p["id"], "rung": rung}).rowcount:
            return
        _held(None, f"message {p['id']!r}")
    row = _held(session.get(MessageRow, key), f"message {p['id']!r}")
    row.steps = max(row.steps, int(p["rung"]))


def _rung(p: dict[str, Any]) -> int | None:
    """An escalation's rung as a number; None when it is not one (an entry edited by hand: the alert it names is
    looked up first, as ever, so that an unknown one is named before the rung is refused)."""
    try:
        return int(p["rung"])
    except (TypeError, ValueError):
        return None
