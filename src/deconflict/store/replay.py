"""Replay: the state of a mechanism as it stood at an instant, rebuilt from its record alone.

The record's entries up to the instant are applied, in order, to empty tables in an in-memory
SQLite database by the same projection functions the service uses live (:mod:`deconflict.store.projection`),
so what replay shows is by construction what the service showed then. Entry times never go
backwards along a chain (a signed entry is appended at its prepared time only if the chain
has not moved since), so "up to the instant" is a prefix of the chain.

:func:`state` reads the tables into one plain document; the tests take it from the live
database at several instants of a scripted day and compare it with replays of each instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from deconflict.clock import iso, parse_utc
from deconflict.record.chain import GENESIS_HASH, Head
from deconflict.store import projection
from deconflict.store.schema import (
    ActivityRow,
    ActivityVersionRow,
    Base,
    ConflictRow,
    KeyRow,
    MemberRow,
    MessageRow,
    ZoneRow,
)

__all__ = ["TABLES", "replay", "state"]

TABLES = {
    "members": MemberRow,
    "keys": KeyRow,
    "zones": ZoneRow,
    "activities": ActivityRow,
    "activity_versions": ActivityVersionRow,
    "conflicts": ConflictRow,
    "messages": MessageRow,
}
"""The projected tables a state document holds, by name."""


def _plain(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def state(session: Session, mechanism: str) -> dict[str, Any]:
    """Every projected row of a mechanism, table by table, ordered by primary key, times as ISO text."""
    doc: dict[str, Any] = {}
    for name, model in TABLES.items():
        table = model.__table__
        keys = list(inspect(model).primary_key)
        rows = session.execute(select(table).where(table.c.mechanism_id == mechanism).order_by(*keys))
        doc[name] = [{k: _plain(v) for k, v in row._mapping.items() if k != "mechanism_id"} for row in rows]
    return doc


def replay(entries: Iterable[dict[str, Any]], *, mechanism: str, at: datetime | None) -> dict[str, Any]:
    """The state after every entry whose time is at or before ``at`` (all entries when None).

    ``entries`` are entry documents in sequence order (as :func:`deconflict.store.ledger.entry_doc` or a bundle gives
    them), each with its payload. Returns ``{"mechanism", "at", "head": {"seq", "hash"}, "entries",
    **state}``.
    """
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    head = Head(0, GENESIS_HASH)
    try:
        with sessionmaker(engine).begin() as s:
            for e in entries:
                when = e["at"] if isinstance(e["at"], datetime) else parse_utc(e["at"], field="at")
                if at is not None and when > at:
                    break
                if "payload" not in e:
                    raise ValueError(f"entry {e['seq']} has no payload (withheld); replay needs the whole record")
                projection.apply(
                    s,
                    mechanism=mechanism,
                    type=e["type"],
                    payload=e["payload"],
                    at=when,
                    seq=e["seq"],
                    actor=e["actor"],
                )
                head = Head(int(e["seq"]), str(e["hash"]))
            s.flush()
            body = state(s, mechanism)
    finally:
        engine.dispose()
    return {
        "mechanism": mechanism,
        "at": iso(at) if at is not None else None,
        "head": {"seq": head.seq, "hash": head.hash},
        **body,
    }
