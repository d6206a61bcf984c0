"""Notices recorded together (``Service.notify_many``, what the API does with the plain notices that arrive
while the one before is being written): the same record, the same answers and the same errors as notifying
each in turn, on real SQLite files (and PostgreSQL when the suite runs on it) with a pinned clock. A notice
is checked against those before it in the same batch: its id follows theirs, its conflicts with them are
raised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import literal, select
from support.batches import in_place, one_by_one, same_answer, transactions
from support.builders import M, declared_db, offset, vol

from deconflict.clock import FixedClock
from deconflict.errors import DeconflictError, Forbidden, InvalidInput, InvalidState
from deconflict.record import signing
from deconflict.service import Service, derive, notices
from deconflict.service.keys import registration_message
from deconflict.service.notices import NewNotice
from deconflict.service.rules import RecordRefused
from deconflict.service.writer import RecordWriter
from deconflict.store import open_store
from deconflict.store.schema import ActivityRow, ActivityVersionRow, ConflictRow, LedgerEntry

FAR = offset((37.6298, 34.5227), 90, 150_000)
"""A centre 150 km east of T4: nothing notified there meets what is notified at T4."""

BATCH = [
    NewNotice("TR", "uav_patrol", [vol(start_h=3)], title="first"),  # TR-0001
    NewNotice("IL", "air_sortie", [vol(start_h=3)]),  # IL-0001, in conflict with TR-0001 (earlier in the batch)
    NewNotice("TR", "uav_patrol", [vol(radius_m=-5)]),  # refused: InvalidInput, nothing recorded
    NewNotice("IL", "exercise", [vol(FAR, start_h=5)], activity_id="IL-0007"),  # its own id
    NewNotice("IL", "exercise", [vol(FAR, start_h=6)], activity_id="IL-0007"),  # taken, in this batch: InvalidState
    NewNotice("AZ", "uav_patrol", [vol(FAR)]),  # the facilitator notifies nothing: Forbidden
    NewNotice("TR", "uav_patrol", [vol(start_h=-5, hours=1)]),  # every window ended: InvalidInput
    NewNotice("IL", "air_sortie", [vol(start_h=3, floor_m=2000)]),  # IL-0003 (after IL-0007), conflicts with TR-0001
    NewNotice("TR", "uav_patrol", [vol(FAR)], activity_id="TR-0001"),  # taken earlier in the batch: InvalidState
    NewNotice("TR", "no_such_kind", [vol(FAR)]),  # InvalidInput on the kind
    NewNotice("TR", "uav_patrol", [vol(FAR, start_h=1)]),  # TR-0002, meets nothing
    NewNotice("IL", "air_sortie", [vol((37.6, 10**400))]),  # a latitude of 401 digits: InvalidInput, by name
]


@pytest.fixture(autouse=True)
def one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's transaction takes every notice, however slow the machine (the budget's own test sets it)."""
    monkeypatch.setattr(notices, "BATCH_BUDGET_S", 60.0)


def _record(db: str) -> tuple[list[tuple[Any, ...]], ...]:
    """The mechanism's entries after its declaration (each database's keys are its own, so are the hashes and
    signatures that follow from them) and its activities', versions' and conflicts' rows."""
    store = open_store(db)
    try:
        with store.read() as s:
            entries = [
                (e.seq, e.type, e.actor, e.at, e.payload)
                for e in s.scalars(select(LedgerEntry).where(LedgerEntry.mechanism_id == M).order_by(LedgerEntry.seq))
                if e.type not in ("mechanism.declared", "key.registered")
            ]
            activities = [
                (a.id, a.party, a.kind, a.state, a.version, a.start, a.end, a.doc)
                for a in s.scalars(select(ActivityRow).where(ActivityRow.mechanism_id == M).order_by(ActivityRow.id))
            ]
            versions = [
                (v.activity_id, v.version, v.seq, v.at, v.actor, v.doc)
                for v in s.scalars(
                    select(ActivityVersionRow)
                    .where(ActivityVersionRow.mechanism_id == M)
                    .order_by(ActivityVersionRow.seq)
                )
            ]
            conflicts = [
                (c.id, c.status, c.doc)
                for c in s.scalars(select(ConflictRow).where(ConflictRow.mechanism_id == M).order_by(ConflictRow.id))
            ]
        return entries, activities, versions, conflicts
    finally:
        store.close()


def _together(svc: Service, batch: list[NewNotice]) -> list[Any]:
    """``notify_many``'s answers, each at its notice's place."""
    return in_place(svc.notify_many(mechanism_id=M, batch=batch), len(batch))


def _one_by_one(svc: Service, batch: list[NewNotice]) -> list[Any]:
    return one_by_one(batch, lambda notice: svc.notify(mechanism_id=M, **vars(notice)))


def _other_db(db: str, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if "://" in db:  # a second database on the same server
        return declared_db(request.getfixturevalue("pg_databases").create(), clock)
    return declared_db(tmp_path / "one-by-one.db", clock)


def test_notices_sent_together_record_and_answer_what_notifying_each_in_turn_does(
    db: str, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    other = _other_db(db, clock, tmp_path, request)
    svc = Service(open_store(db), clock=clock)
    writes = transactions(svc)
    together = _together(svc, BATCH)
    assert writes() == 1  # five notices, their conflicts and alerts in one transaction
    in_turn = _one_by_one(Service(open_store(other), clock=clock), BATCH)
    kinds = [type(a).__name__ for a in together]
    assert kinds == [
        "Outcome",
        "Outcome",
        "InvalidInput",
        "Outcome",
        "InvalidState",
        "Forbidden",
        "InvalidInput",
        "Outcome",
        "InvalidState",
        "InvalidInput",
        "Outcome",
        "InvalidInput",
    ], kinds
    assert all(same_answer(a, b) for a, b in zip(together, in_turn, strict=True)), (together, in_turn)
    assert [a.activity.id for a in together if not isinstance(a, Exception)] == [
        "TR-0001",
        "IL-0001",
        "IL-0007",
        "IL-0003",
        "TR-0002",
    ]
    # a notice meets those before it in the batch: IL-0001 and IL-0003 each raise a conflict with TR-0001
    assert [c["id"] for c in together[1].raised] == ["C1"] and [c["id"] for c in together[7].raised] == ["C2"]
    assert {c["activity"] for c in together[1].raised + together[7].raised} == {"IL-0001", "IL-0003"}
    assert not together[0].raised and not together[3].raised and not together[10].raised
    assert isinstance(together[4], InvalidState) and "'IL-0007' already exists" in str(together[4])
    assert isinstance(together[5], Forbidden) and isinstance(together[2], InvalidInput)
    assert _record(db) == _record(other)  # entry for entry (times, actors, payloads) and row for row
    assert svc.verify(M).ok
    # the process's picture holds what the record holds: the next notice meets IL-0003 as it would anyway
    later = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3, floor_m=2500)])
    assert later.activity is not None and later.activity.id == "TR-0003"
    assert {c["other_activity"] for c in later.raised} == {"IL-0001", "IL-0003"}


def test_a_batch_that_fails_while_writing_keeps_nothing_and_each_notice_is_sent_on_its_own(
    db: str, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry refused once the batch's entries are being written (here the record refuses the third
    notice's version, once): nothing of the batch is kept, not even in the process's picture (the notices
    indexed before the failure are taken out), and each notice is then sent on its own, with the answer
    notifying it alone gives."""
    other = _other_db(db, clock, tmp_path, request)
    batch = [BATCH[0], BATCH[1], BATCH[7], BATCH[10]]
    record_version = derive.record_version
    refused: list[str] = []

    def once(w: Any, picture: Any, activity: Any, *args: Any, **kwargs: Any) -> Any:
        if activity.id == "IL-0002" and not refused:
            refused.append(activity.id)
            raise RecordRefused("refused once, to fail the batch while it writes")
        return record_version(w, picture, activity, *args, **kwargs)

    svc = Service(open_store(db), clock=clock)
    monkeypatch.setattr(derive, "record_version", once)
    writes = transactions(svc)
    together = _together(svc, batch)
    monkeypatch.undo()
    assert refused == ["IL-0002"]
    assert writes() == len(batch)  # the batch rolled back; then one transaction a notice
    in_turn = _one_by_one(Service(open_store(other), clock=clock), batch)
    assert all(same_answer(a, b) for a, b in zip(together, in_turn, strict=True)), (together, in_turn)
    assert [a.activity.id for a in together] == ["TR-0001", "IL-0001", "IL-0002", "TR-0002"]
    assert _record(db) == _record(other)
    later = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3, floor_m=2500)])
    assert {c["other_activity"] for c in later.raised} == {"IL-0001", "IL-0002"}  # no phantom from the failed batch


def test_a_row_the_database_refuses_fails_that_notice_alone(db: str, svc: Service) -> None:
    """The tables hold a row the record does not (a database edited by hand): the database refuses the
    notice whose row clashes with it, and the batch's other notices are written, as each alone would be.
    A batch inserts its rows together (gathered, on SQLite) before its commit; a refusal there was taken
    for the commit's failure and answered every notice of the batch with it."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(FAR, start_h=1)])  # TR-0001
    with svc.store.engine.begin() as conn:  # IL-0001 in the tables, not in the record
        conn.execute(
            ActivityRow.__table__.insert().from_select(
                [c.name for c in ActivityRow.__table__.columns],
                select(
                    *(
                        literal("IL-0001").label("id")
                        if c.name == "id"
                        else literal("IL").label("party")
                        if c.name == "party"
                        else c
                        for c in ActivityRow.__table__.columns
                    )
                ).where(ActivityRow.mechanism_id == M, ActivityRow.id == "TR-0001"),
            )
        )
    batch = [NewNotice("TR", "uav_patrol", [vol(start_h=3)]), NewNotice("IL", "air_sortie", [vol(FAR, start_h=3)])]
    together = _together(svc, batch)
    assert together[0].activity.id == "TR-0002", together
    assert isinstance(together[1], Exception) and not isinstance(together[1], DeconflictError), together
    notified = [e["payload"]["id"] for e in svc.record(M) if e["type"] == "activity.notified"]
    assert notified == ["TR-0001", "TR-0002"]  # nothing of IL's notice
    assert svc.verify(M).ok


def test_a_party_that_signs_its_own_entries_is_refused_as_alone_and_fails_no_other(svc: Service) -> None:
    key = signing.KeyPair.generate()
    message = registration_message(mechanism=M, party="IL", public_key=key.public_key)
    svc.register_key(mechanism_id=M, party="IL", public_key=key.public_key, possession=key.sign(message))
    batch = [BATCH[0], BATCH[1], BATCH[10]]
    together = _together(svc, batch)
    assert isinstance(together[1], Forbidden) and "party IL signs its own entries" in str(together[1])
    assert [a.activity.id for a in (together[0], together[2])] == ["TR-0001", "TR-0002"]
    assert sorted(a.id for a in svc.activities(M)) == ["TR-0001", "TR-0002"]  # nothing of IL's written
    assert svc.verify(M).ok


def test_a_failure_at_the_commit_is_every_notices_answer_and_nothing_is_written_twice(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once every notice was worked out, a failure is the commit's (or what follows it): sending the notices
    again one by one could write them twice, so the error answers them all, and the process reads its
    picture again from the store."""
    committed = RecordWriter._committed

    def failing(self: RecordWriter) -> None:
        committed(self)
        raise RuntimeError("after the commit")

    monkeypatch.setattr(RecordWriter, "_committed", failing)
    with pytest.raises(RuntimeError, match="after the commit"):
        _together(svc, [BATCH[0], BATCH[1]])
    monkeypatch.undo()
    assert sorted(a.id for a in svc.activities(M)) == ["IL-0001", "TR-0001"]  # written once
    later = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3, floor_m=2500)])
    assert later.activity is not None and later.activity.id == "TR-0002"
    assert [c["other_activity"] for c in later.raised] == ["IL-0001"]
    assert svc.verify(M).ok


def test_a_batch_past_its_budget_goes_on_in_the_next_transaction_answered_as_each_is_on_disk(
    db: str, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a crowded area a notice may take tens of milliseconds: a transaction stops taking notices once it
    has worked for its budget (here none: one notice each), and those already written are answered before
    the next are worked out. The record and the answers stay those of notifying each in turn."""
    other = _other_db(db, clock, tmp_path, request)
    monkeypatch.setattr(notices, "BATCH_BUDGET_S", 0.0)
    svc = Service(open_store(db), clock=clock)
    groups = [sorted(i for i, _ in group) for group in svc.notify_many(mechanism_id=M, batch=BATCH)]
    assert groups == [[i] for i in range(len(BATCH))]  # each answered on its own, in order
    svc.store.close()
    _one_by_one(Service(open_store(other), clock=clock), BATCH)
    assert _record(db) == _record(other)
