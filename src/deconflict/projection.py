"""Tables as projections of the record: one function per entry type, used live and in replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from deconflict.clock import parse_utc
from deconflict.model import ConflictStatus
from deconflict.store.schema import (
    ActivityRow,
    ActivityVersionRow,
    ConflictRow,
    MechanismRow,
    MemberRow,
    ZoneRow,
)

Applier = Callable[[Session, str, dict[str, Any], datetime, int, str], None]
_APPLIERS: dict[str, Applier] = {}


def applies(entry_type: str) -> Callable[[Applier], Applier]:
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
    fn(session, mechanism, payload, at, seq, actor)


@applies("mechanism.declared")
def _mechanism(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    session.add(MechanismRow(id=mid, name=p["name"], doc=p, declared_at=at))
    session.flush()
    for m in p["members"]:
        _member(session, mid, m, at, seq, actor)


@applies("member.added")
def _member(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    session.add(
        MemberRow(
            mechanism_id=mid,
            id=p["id"],
            name=p["name"],
            role=p["role"],
            party=p["party"],
            language=p["language"],
            added_at=at,
        )
    )


def _activity_version(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    row = session.get(ActivityRow, (mid, p["id"]))
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
    if row is None:
        session.add(ActivityRow(mechanism_id=mid, id=p["id"], **fields))
        session.flush()
    else:
        for k, v in fields.items():
            setattr(row, k, v)
    session.add(
        ActivityVersionRow(
            mechanism_id=mid, activity_id=p["id"], version=p["version"], seq=seq, at=at, actor=actor, doc=p
        )
    )


for _type in ("activity.notified", "activity.amended", "activity.cancelled"):
    applies(_type)(_activity_version)


@applies("zone.declared")
def _zone(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    session.add(
        ZoneRow(
            mechanism_id=mid, id=p["id"], owner=p["owner"], kind=p["kind"], declared_at=at, withdrawn_at=None, doc=p
        )
    )


@applies("zone.withdrawn")
def _zone_withdrawn(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    row = session.get(ZoneRow, (mid, p["id"]))
    assert row is not None
    row.withdrawn_at = at


@applies("conflict.detected")
def _conflict(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    session.add(
        ConflictRow(
            mechanism_id=mid,
            id=p["id"],
            kind=p["kind"],
            status=ConflictStatus.OPEN.value,
            resolution=None,
            activity=p["activity"],
            other_activity=p.get("other_activity"),
            zone=p.get("zone"),
            parties=p["parties"],
            distance_m=p.get("distance_m"),
            detected_at=at,
            deadline=parse_utc(p["deadline"], field="deadline"),
            acknowledged={},
            resolved_at=None,
            resolved_by=None,
            doc=p,
        )
    )


@applies("conflict.acknowledged")
def _acknowledged(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    from deconflict.clock import iso

    row = session.get(ConflictRow, (mid, p["id"]))
    assert row is not None
    acks = dict(row.acknowledged)
    acks[p["party"]] = {"member": actor, "at": iso(at)}
    row.acknowledged = acks
    awaited = set(row.doc.get("awaiting", []))
    if row.status == ConflictStatus.OPEN.value and awaited <= set(acks):
        row.status = ConflictStatus.ACKNOWLEDGED.value


@applies("conflict.resolved")
def _resolved(session: Session, mid: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    row = session.get(ConflictRow, (mid, p["id"]))
    assert row is not None
    row.status = ConflictStatus.RESOLVED.value
    row.resolution = p["resolution"]
    row.resolved_at = at
    row.resolved_by = actor
