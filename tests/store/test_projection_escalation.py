"""An escalation raises its alert's rung and never lowers it, whether the projection's session already holds
the alert as an object (changed there, written at the flush) or not (one UPDATE, the object's way skipped);
an escalation of an alert the record does not hold is refused in words, on both ways."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from support.builders import T0, M

from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.record import chain
from deconflict.record.chain import EntryType
from deconflict.store import open_store, projection, replay
from deconflict.store.schema import MessageRow


def record(*steps: tuple[str, EntryType, dict[str, Any]]) -> list[dict[str, Any]]:
    """Entry documents: the mechanism declared, then ``steps``, a minute apart."""
    members = [{"id": p, "party": p, "role": "party", "name": p, "language": "en"} for p in ("IL", "TR")]
    head, at, out = chain.Head(0, chain.GENESIS_HASH), T0, []
    for actor, kind, payload in [("operator", EntryType.MECHANISM_DECLARED, {"id": M, "name": "m", "members": members}),
                                 *steps]:  # fmt: skip
        at += timedelta(minutes=1)
        row = chain.draft(mechanism=M, actor=actor, type=kind.value, payload=payload, at=at, after=head)
        head = chain.Head(head.seq + 1, row["hash"])
        out.append({**row, "at": iso(at), "payload": payload})
    return out


def alert(message_id: str) -> tuple[str, EntryType, dict[str, Any]]:
    doc = {"id": message_id, "type": "alert", "to": ["IL"], "from_party": "service", "needs_ack": True,
           "deadline": iso(T0 + timedelta(hours=1)), "text": "acknowledge"}  # fmt: skip
    return "system", EntryType.MESSAGE_SENT, doc


def escalated(message_id: str, rung: int) -> tuple[str, EntryType, dict[str, Any]]:
    return "system", EntryType.MESSAGE_ESCALATED, {"id": message_id, "rung": rung, "name": "watch"}


def steps(state: dict[str, Any]) -> dict[str, int]:
    return {m["id"]: m["steps"] for m in state["messages"]}


def test_an_escalation_raises_the_rung_and_a_lower_one_leaves_it() -> None:
    entries = record(alert("M1"), alert("M2"), escalated("M1", 1), escalated("M1", 3), escalated("M1", 2),
                     escalated("M2", 1), ("IL", EntryType.MESSAGE_ACKNOWLEDGED, {"id": "M2", "party": "IL"}),
                     escalated("M2", 2), escalated("M2", 1))  # fmt: skip
    assert steps(replay.replay(entries, mechanism=M, at=None)) == {"M1": 3, "M2": 2}
    # and at each instant, as the time bar asks
    at_fourth = replay.replay(entries, mechanism=M, at=T0 + timedelta(minutes=5))
    assert steps(at_fourth) == {"M1": 3, "M2": 0}


def test_an_escalation_of_an_alert_held_as_an_object_changes_that_object() -> None:
    """The live path may have read the alert as an object earlier in the transaction: the escalation is made
    on it, so that what the session reads next (and writes at the flush) is the raised rung."""
    entries = record(alert("M1"), escalated("M1", 2))
    with replay._ENGINE.connect() as conn:  # noqa: SLF001 - the rebuild's own empty database
        for ddl in replay._schema():  # noqa: SLF001
            conn.exec_driver_sql(ddl)
        with Session(bind=conn, autoflush=False) as s, s.begin():
            for e in entries[:2]:
                projection.apply(s, mechanism=M, type=e["type"], payload=e["payload"],
                                 at=T0, seq=e["seq"], actor=e["actor"])  # fmt: skip
            held = s.get(MessageRow, (M, "M1"))
            assert held is not None and held.steps == 0
            e = entries[2]
            projection.apply(
                s, mechanism=M, type=e["type"], payload=e["payload"], at=T0, seq=e["seq"], actor=e["actor"]
            )
            assert held.steps == 2  # the object itself
            s.flush()
            assert s.execute(select(MessageRow.steps).where(MessageRow.id == "M1")).scalar_one() == 2


@pytest.mark.parametrize("first", [False, True], ids=["no object", "an object held"])
def test_an_escalation_of_an_alert_the_record_does_not_hold_is_refused_in_words(first: bool) -> None:
    entries = record(alert("M1"), escalated("M1", 1), escalated("M7", 1))
    if first:  # an acknowledgement reads M1 as an object first; M7 is looked up all the same
        entries = record(alert("M1"), ("IL", EntryType.MESSAGE_ACKNOWLEDGED, {"id": "M1", "party": "IL"}),
                         escalated("M7", 1))  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        replay.replay(entries, mechanism=M, at=None)
    assert (
        refused.value.message
        == "entry 4 (message.escalated): it names message 'M7', which the record before it does not hold"
    )


def test_an_edited_escalation_names_the_unknown_alert_before_its_rung() -> None:
    """A rung that is not a number, on an alert the record does not hold: the alert is named, as it always was."""
    entries = record(alert("M1"), ("system", EntryType.MESSAGE_ESCALATED, {"id": "M7", "rung": "high", "name": "x"}))
    with pytest.raises(InvalidInput, match="it names message 'M7', which the record before it does not hold"):
        replay.replay(entries, mechanism=M, at=None)


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_the_statement_raises_the_rung_and_counts_the_alert_on_both_stores(store_url: str) -> None:
    """The statement's way on the stores the service runs on (replay's is SQLite in memory): the rung raised and
    never lowered, and an alert found even when its rung does not change (PostgreSQL types the CASE's parameter
    from the column; both drivers count a row matched, not only a row changed)."""
    store = open_store(store_url)
    try:
        entries = record(alert("M1"), escalated("M1", 2), escalated("M1", 1), escalated("M1", 3), escalated("M9", 1))
        highest = 0
        for e in entries[:-1]:
            with store.transaction() as s:  # a session of its own each time: no object holds the alert
                projection.apply(s, mechanism=M, type=e["type"], payload=e["payload"], at=T0, seq=e["seq"],
                                 actor=e["actor"])  # fmt: skip
                if e["type"] != EntryType.MESSAGE_ESCALATED.value:
                    continue
                highest = max(highest, e["payload"]["rung"])
                assert s.execute(select(MessageRow.steps).where(MessageRow.id == "M1")).scalar_one() == highest
        with pytest.raises(InvalidInput, match="it names message 'M9'"), store.transaction() as s:
            e = entries[-1]
            projection.apply(
                s, mechanism=M, type=e["type"], payload=e["payload"], at=T0, seq=e["seq"], actor=e["actor"]
            )
        with store.transaction() as s:
            assert s.execute(select(MessageRow.steps).where(MessageRow.id == "M1")).scalar_one() == 3
    finally:
        store.close()
