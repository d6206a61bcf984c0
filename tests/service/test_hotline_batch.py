"""Messages sent together (``Service.send_messages``, what the API does with the plain requests that arrive
while the one before is being written): the same record, the same answers and the same errors as sending
each in turn, on real SQLite files (and PostgreSQL when the suite runs on it) with a pinned clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.batches import in_place, one_by_one, same_answer, transactions
from support.builders import HAMA, T4, M, declared_db, vol

from deconflict.clock import FixedClock
from deconflict.errors import Forbidden, InvalidInput, NotFound
from deconflict.record import signing
from deconflict.service import Service
from deconflict.service.hotline import Outgoing
from deconflict.store import open_store
from deconflict.store.schema import LedgerEntry, MessageRow

BATCH = [
    Outgoing("TR", template="holding", params={"ref": "C9"}, to=["IL"]),
    Outgoing("IL", text="Please call on the secure line.", to=["TR"], lang="en"),
    Outgoing("IL", template="no-such-phrase"),  # refused: InvalidInput, nothing recorded
    Outgoing(
        "AZ", template="query_activity", params={"ref": "TR-0001", "t1": "06:00Z", "t2": "07:00Z"}, to=["TR", "IL"]
    ),
    Outgoing("TR", template="incident_at", params={"place": "35.1N 36.2E", "t1": "05:40Z", "party": "TR"}, to=["IL"]),
    Outgoing("TR", text="x", to=[]),  # refused: nobody addressed
    Outgoing("IL", template="holding", params={"ref": "C2"}, about={"kind": "conflict", "id": "C77"}),  # NotFound
    Outgoing(
        "TR", template="query_activity", params={"ref": "IL-0001", "t1": "06:00Z", "t2": "09:00Z"}
    ),  # to every other party
]


def _record(db: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The mechanism's entries after its declaration (each database's keys are its own, so are the hashes
    and signatures that follow from them) and its messages' rows."""
    store = open_store(db)
    try:
        with store.read() as s:
            entries = [
                (e.seq, e.type, e.actor, e.at, e.payload)
                for e in s.scalars(select(LedgerEntry).where(LedgerEntry.mechanism_id == M).order_by(LedgerEntry.seq))
                if e.type not in ("mechanism.declared", "key.registered")
            ]
            messages = [
                (m.id, m.type, m.sender, m.recipients, m.needs_ack, m.deadline, m.doc)
                for m in s.scalars(select(MessageRow).where(MessageRow.mechanism_id == M).order_by(MessageRow.id))
            ]
        return entries, messages
    finally:
        store.close()


def _sent(svc: Service, messages: list[Outgoing]) -> list[Any]:
    """``send_messages``' answers, each at its message's place."""
    return in_place(svc.send_messages(mechanism_id=M, messages=messages), len(messages))


def _one_by_one(svc: Service, messages: list[Outgoing]) -> list[Any]:
    return one_by_one(messages, lambda out: svc.send_message(mechanism_id=M, **vars(out)))


def test_messages_sent_together_record_and_answer_what_sending_each_in_turn_does(
    db: str, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if "://" in db:  # a second database on the same server
        other = declared_db(request.getfixturevalue("pg_databases").create(), clock)
    else:
        other = declared_db(tmp_path / "one-by-one.db", clock)
    svc = Service(open_store(db), clock=clock)
    alone = Service(open_store(other), clock=clock)
    for service in (svc, alone):  # the activities the queries ask about (far apart: no conflict, no alert)
        service.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3)])
        service.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, start_h=3)])
    writes = transactions(svc)
    together = _sent(svc, BATCH)
    assert writes() == 1  # the five messages in one transaction
    in_turn = _one_by_one(alone, BATCH)
    assert [type(a).__name__ for a in together] == [
        "dict",
        "dict",
        "InvalidInput",
        "dict",
        "dict",
        "InvalidInput",
        "NotFound",
        "dict",
    ]
    assert all(same_answer(a, b) for a, b in zip(together, in_turn, strict=True)), (together, in_turn)
    assert [a["id"] for a in together if isinstance(a, dict)] == ["M1", "M2", "M3", "M4", "M5"]
    assert together[1]["text"] == "Please call on the secure line." and together[0]["lang"] == "tr"
    assert isinstance(together[2], InvalidInput) and isinstance(together[6], NotFound)
    assert _record(db) == _record(other)  # entry for entry (times, actors, payloads) and row for row
    assert len(_record(db)[1]) == 5


def test_a_phrase_that_settles_goes_after_the_batch_and_settles(svc: Service, clock: FixedClock) -> None:
    """An acknowledgement is checked against the record as the batch left it: it settles the conflict that
    awaits its party, and a message sent earlier in the same batch that it names."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])
    (conflict,) = svc.conflicts(M)
    before = len(svc.messages(M, reader=svc.member(M, "AZ")))
    query = f"M{before + 1}"
    answers = _sent(
        svc,
        [
            Outgoing(
                "IL", template="query_activity", params={"ref": "TR-0001", "t1": "09:00Z", "t2": "10:00Z"}, to=["TR"]
            ),  # needs TR's answer
            Outgoing("TR", template="acknowledged", params={"ref": conflict["id"]}),
            Outgoing("TR", template="acknowledged", params={"ref": query}, to=["IL"]),  # names the query above
            Outgoing("IL", text="Noted.", to=["TR"], lang="en"),
        ],
    )
    assert all(isinstance(a, dict) for a in answers), answers
    # the two independent messages recorded together, the acknowledgements after them, in order
    assert [a["id"] for a in answers] == [query, f"M{before + 3}", f"M{before + 4}", f"M{before + 2}"]
    tr = svc.member(M, "TR")
    assert svc.message(M, query, reader=tr)["acknowledged"].keys() == {"TR"}
    assert "TR" in next(c for c in svc.conflicts(M) if c["id"] == conflict["id"])["acknowledged"]
    settling = [e for e in svc.entries_after(M, 0) if e["type"] == "message.sent" and "settles" in e["payload"]]
    assert [e["payload"]["settles"]["conflicts"] for e in settling] == [[conflict["id"]], []]
    assert settling[1]["payload"]["settles"]["messages"] == [query]


class TestAPartyThatSignsForItself:
    @pytest.fixture
    def party_keys(self) -> dict[str, signing.KeyPair]:
        return {"IL": signing.KeyPair.generate()}

    def test_its_unsigned_message_is_refused_and_the_others_are_recorded(self, svc: Service, db: str) -> None:
        """The service holds no key of Israel's: Israel's plain messages are refused as sending one alone is,
        before anything is written (a refusal after other entries were appended would roll them back and
        rebuild the record's rules' state from entry 1: seconds on a large record), and Türkiye's are recorded
        together."""
        svc.send_message(mechanism_id=M, actor="TR", text="zero", to=["IL"], lang="en")
        rules_state = svc.context.authority[M][1]  # the record's rules' state, kept from write to write
        head = svc.entries_after(M, 0)[-1]["seq"]
        writes = transactions(svc)
        answers = _sent(
            svc,
            [
                Outgoing("TR", text="one", to=["IL"], lang="en"),
                Outgoing("IL", text="two", to=["TR"], lang="en"),
                Outgoing("TR", text="three", to=["IL"], lang="en"),
                Outgoing("IL", text="four", to=["TR"], lang="en"),
                Outgoing("IL", text="five", to=["TR"], lang="en"),
            ],
        )
        assert writes() == 1  # Türkiye's two together, Israel's answered before anything was written
        assert svc.context.authority[M][1] is rules_state  # no entry rolled back: no rebuild from entry 1
        assert isinstance(answers[1], Forbidden) and "signs its own entries" in str(answers[1])
        alone = Service(open_store(db), clock=svc.clock)
        with pytest.raises(Forbidden) as refused:
            alone.send_message(mechanism_id=M, actor="IL", text="two", to=["TR"], lang="en")
        assert str(refused.value) == str(answers[1])
        assert [a["text"] for a in (answers[0], answers[2])] == ["one", "three"]
        assert all(isinstance(a, Forbidden) for a in answers[3:])
        written = svc.entries_after(M, head)
        assert [(e["actor"], e["payload"]["text"]) for e in written] == [("TR", "one"), ("TR", "three")]
        assert svc.verify(M).ok


def test_answers_of_the_batch_come_before_the_messages_sent_on_their_own(svc: Service) -> None:
    """The batch's answers are handed out once it is on the disk, before the messages that go on their own
    are written; a ``ref`` that cannot name a message of the batch (beyond it) keeps its message in it."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])
    (conflict,) = svc.conflicts(M)
    head = svc.entries_after(M, 0)[-1]["seq"]
    groups = svc.send_messages(
        mechanism_id=M,
        messages=[
            Outgoing("TR", template="acknowledged", params={"ref": conflict["id"]}),  # settles: on its own
            Outgoing("IL", template="holding", params={"ref": "M99999"}, to=["TR"]),  # names nothing: batched
            Outgoing("IL", template="holding", params={"ref": "M1e3"}, to=["TR"]),  # not a number: batched
            Outgoing("IL", template="holding", params={"ref": "C" + "1" * 60}, to=["TR"]),  # no conflict's id
            Outgoing("TR", text="x" * 5000),  # refused: answered with the batch
        ],
    )
    first = next(groups)
    assert [i for i, _ in first] == [1, 2, 3, 4]
    assert isinstance(first[3][1], InvalidInput) and first[3][1].field == "text"
    recorded = [e["payload"].get("params", {}).get("ref") for e in svc.entries_after(M, head)]
    assert recorded == ["M99999", "M1e3", "C" + "1" * 60]  # the acknowledgement not written yet
    ((i, ack),) = next(groups)
    assert i == 0 and isinstance(ack, dict) and ack["params"] == {"ref": conflict["id"]}
    assert next(groups, None) is None
    assert "TR" in next(c for c in svc.conflicts(M) if c["id"] == conflict["id"])["acknowledged"]
