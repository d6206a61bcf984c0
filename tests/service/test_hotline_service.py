"""The hotline in the service, on a real SQLite file with a pinned clock: alerts, escalation, line checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from support.builders import HAMA, T4, M, vol

from deconflict.clock import FixedClock, iso
from deconflict.errors import Forbidden, InvalidInput, InvalidState, NotFound
from deconflict.service import Service
from deconflict.store import open_store


def member(svc: Service, mid: str) -> Any:
    return svc.member(M, mid)


def test_israeli_notice_puts_a_turkish_alert_on_turkiyes_channel(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])
    (alert,) = [m for m in svc.messages(M, reader=member(svc, "TR")) if m["type"] == "alert"]
    assert alert["to"] == ["TR"] and alert["template"] == "separation_alert" and alert["needs_ack"]
    assert alert["lang"] == "tr" and "TR-0001" in alert["text"] and "IL-0001" in alert["text"]
    assert alert["text"] != svc.message(M, alert["id"], reader=member(svc, "AZ"))["text"]  # AZ reads English
    assert alert["deadline"] == "2025-04-09T06:10:00Z" and alert["about"] == {"kind": "conflict", "id": "C1"}
    hebrew = svc.message(M, alert["id"], reader=member(svc, "IL"))
    assert hebrew["rtl"] is True and hebrew["lang"] == "he"


def test_unanswered_alert_climbs_the_whole_ladder_in_a_simulated_day(svc: Service, clock: FixedClock) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=30)])
    last = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=30)]).seq
    alert = next(m for m in svc.messages(M, reader=member(svc, "TR")) if m["type"] == "alert")
    steps: list[tuple[int, str]] = []
    # a tick a minute through the ladder's hour, then one every 15 minutes for the rest of the day: any step
    # recorded after the last rung is an entry all the same, and shows in ``steps``
    start = clock()
    while clock() < start + timedelta(hours=24):
        clock.advance(seconds=60 if clock() < start + timedelta(hours=1) else 15 * 60)
        svc.tick()
        for e in svc.entries_after(M, last):
            last = e["seq"]
            if e["type"] == "message.escalated" and e["payload"]["id"] == alert["id"]:
                steps.append((e["payload"]["rung"], e["at"]))
    # operations chief at +10 min, national security adviser at +25, facilitator at +55 (issue 4's ladder)
    assert steps == [
        (1, "2025-04-09T06:10:00Z"),
        (2, "2025-04-09T06:25:00Z"),
        (3, "2025-04-09T06:55:00Z"),
    ]
    escalations = [m for m in svc.messages(M, reader=member(svc, "AZ")) if m["template"] == "escalated_to"]
    assert [m["params"]["rung"] for m in escalations if m["about"]["id"] == alert["id"]] == [
        "operations chief",
        "national security adviser",
        "facilitator",
    ]
    assert "AZ" in escalations[-1]["to"]  # the last rung is the facilitator
    assert svc.verify(M).ok


def test_acknowledgement_stops_the_climb_and_a_restart_records_only_missing_steps(
    db: str, svc: Service, clock: FixedClock
) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=30)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=30)])
    alert = next(m for m in svc.messages(M, reader=member(svc, "TR")) if m["type"] == "alert")
    clock.advance(seconds=26 * 60)  # the service was down: two steps fell due meanwhile
    restarted = Service(open_store(db), clock=clock)
    restarted.tick()
    restarted.tick()

    def rungs() -> list[int]:
        entries = restarted.entries_after(M, 0, limit=100_000)
        return [
            e["payload"]["rung"]
            for e in entries
            if e["type"] == "message.escalated" and e["payload"]["id"] == alert["id"]
        ]

    assert rungs() == [1, 2]
    with pytest.raises(NotFound):  # IL may not read TR's alert: answered as a message that does not exist
        restarted.acknowledge_message(mechanism_id=M, actor="IL", message_id=alert["id"])
    done = restarted.acknowledge_message(mechanism_id=M, actor="TR", message_id=alert["id"])
    assert done["acknowledged_at"] == iso(clock())
    with pytest.raises(InvalidState):
        restarted.acknowledge_message(mechanism_id=M, actor="TR", message_id=alert["id"])
    clock.advance(seconds=6 * 3600)
    restarted.tick()
    assert rungs() == [1, 2]


def test_line_goes_down_and_comes_back(svc: Service, clock: FixedClock) -> None:
    svc.tick()
    checks = {m["to"][0]: m for m in svc.messages(M, reader=member(svc, "AZ")) if m["type"] == "line_check"}
    assert set(checks) == {"IL", "TR"}
    svc.acknowledge_message(mechanism_id=M, actor="TR", message_id=checks["TR"]["id"])
    clock.advance(seconds=5 * 60)
    svc.tick()
    assert svc.line_status(M) == {"IL": "pending", "TR": "up"}
    clock.advance(seconds=5 * 60)
    svc.tick()
    assert svc.line_status(M) == {"IL": "down", "TR": "up"}
    downs = [m for m in svc.messages(M, reader=member(svc, "TR")) if m["template"] == "line_down"]
    assert len(downs) == 1 and downs[0]["to"] == ["AZ", "TR"] and downs[0]["params"]["party"] == "IL"
    clock.advance(seconds=60)
    svc.tick()  # no second line-down for the same check
    assert len([m for m in svc.messages(M, reader=member(svc, "TR")) if m["template"] == "line_down"]) == 1
    svc.acknowledge_message(mechanism_id=M, actor="IL", message_id=checks["IL"]["id"])
    assert svc.line_status(M) == {"IL": "up", "TR": "up"}
    restored = [m for m in svc.messages(M, reader=member(svc, "AZ")) if m["template"] == "line_restored"]
    assert len(restored) == 1 and restored[0]["params"]["party"] == "IL"
    clock.advance(seconds=3600)
    svc.tick()  # the next hourly check
    assert len([m for m in svc.messages(M, reader=member(svc, "AZ")) if m["type"] == "line_check"]) == 4


def test_standard_phrases_and_free_text(svc: Service) -> None:
    sent = svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "C1"})
    assert sent["to"] == ["AZ", "IL"]
    seen_by_il = svc.message(M, sent["id"], reader=member(svc, "IL"))
    assert seen_by_il["lang"] == "he" and "C1" in seen_by_il["text"] and not seen_by_il["free_text"]
    free = svc.send_message(mechanism_id=M, actor="IL", text="Call us on the secure line.", to=["TR"])
    seen_by_tr = svc.message(M, free["id"], reader=member(svc, "TR"))
    assert seen_by_tr["free_text"] and seen_by_tr["original"] == {"text": "Call us on the secure line.", "lang": "he"}
    with pytest.raises(InvalidInput, match="ref"):
        svc.send_message(mechanism_id=M, actor="TR", template="holding", params={})
    with pytest.raises(Forbidden):
        svc.send_message(mechanism_id=M, actor="US", text="hello")
    with pytest.raises(InvalidInput, match="to"):
        svc.send_message(mechanism_id=M, actor="TR", text="hello", to=["RU"])


@pytest.mark.parametrize("read_at_once", [500, 2])
def test_a_page_of_messages_counts_only_what_the_reader_may_see(
    svc: Service, monkeypatch: pytest.MonkeyPatch, read_at_once: int
) -> None:
    """``limit`` counts the messages the reader may see: a party whose first messages on the channel are others'
    (Türkiye to the facilitator) still gets a full page, and paging one at a time reaches every message it may
    read, each once (also when the messages it may not see run over several reads of the store)."""
    from deconflict.service import hotline

    monkeypatch.setattr(hotline, "MESSAGES_READ_AT_ONCE", read_at_once)
    for n in range(5):
        svc.send_message(mechanism_id=M, actor="TR", text=f"for the facilitator only, {n}", to=["AZ"])
    svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "C1"}, to=["IL"])
    for n in range(3):
        svc.send_message(mechanism_id=M, actor="TR", text=f"for the facilitator only, {n + 5}", to=["AZ"])
    svc.send_message(mechanism_id=M, actor="AZ", template="acknowledged", params={"ref": "C2"}, to=["IL"])
    il = member(svc, "IL")
    whole = svc.messages(M, reader=il, limit=5000)
    assert [m["params"]["ref"] for m in whole] == ["C1", "C2"]
    assert svc.messages(M, reader=il, limit=1) == whole[:1]
    assert svc.messages(M, reader=il, after_seq=whole[0]["seq"], limit=1) == whole[1:]
    paged: list[dict[str, Any]] = []
    while page := svc.messages(M, reader=il, after_seq=paged[-1]["seq"] if paged else 0, limit=1):
        paged += page
    assert paged == whole
    assert len(svc.messages(M, reader=member(svc, "AZ"), limit=5000)) == 10
    assert len(svc.messages(M, reader=member(svc, "AZ"), limit=3)) == 3


@pytest.mark.parametrize("read_at_once", [500, 2])
def test_the_newest_messages_are_the_last_the_reader_may_see_in_order(
    svc: Service, monkeypatch: pytest.MonkeyPatch, read_at_once: int
) -> None:
    """``newest`` (the page's channel, ``GET .../messages?newest=true``): the last ``limit`` messages the reader
    may see, oldest of them first, counted as ``limit`` counts them, read from the channel's end (also when
    the messages it may not see run over several reads), and never one at or before ``after_seq``."""
    from deconflict.service import hotline

    monkeypatch.setattr(hotline, "MESSAGES_READ_AT_ONCE", read_at_once)
    for ref in ("C1", "C2", "C3"):
        svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": ref}, to=["IL"])
    for n in range(5):
        svc.send_message(mechanism_id=M, actor="TR", text=f"for the facilitator only, {n}", to=["AZ"])
    svc.send_message(mechanism_id=M, actor="AZ", template="acknowledged", params={"ref": "C4"}, to=["IL"])
    for n in range(3):
        svc.send_message(mechanism_id=M, actor="TR", text=f"for the facilitator only, {n + 5}", to=["AZ"])
    il = member(svc, "IL")
    whole = svc.messages(M, reader=il, limit=5000)
    assert [m["params"]["ref"] for m in whole] == ["C1", "C2", "C3", "C4"]
    assert svc.messages(M, reader=il, limit=1, newest=True) == whole[-1:]
    assert svc.messages(M, reader=il, limit=2, newest=True) == whole[-2:]
    assert svc.messages(M, reader=il, limit=500, newest=True) == whole
    assert svc.messages(M, reader=il, after_seq=whole[1]["seq"], limit=5, newest=True) == whole[2:]
    assert svc.messages(M, reader=il, after_seq=whole[-1]["seq"], limit=5, newest=True) == []
    az = svc.messages(M, reader=member(svc, "AZ"), limit=5000)
    assert svc.messages(M, reader=member(svc, "AZ"), limit=3, newest=True) == az[-3:]


def test_the_messages_awaiting_a_party_are_those_it_must_still_answer(svc: Service) -> None:
    """``awaiting`` (the page reads these beside the channel's newest, however old): the messages that wait on
    the reader's party for its acknowledgement, in order; not one it has acknowledged, not one for another
    party, not information, and not its own questions to others. ``newest`` and ``limit`` as for any page."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3)])  # TR-0001
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, start_h=3)])  # IL-0001, far off
    query = {"template": "query_activity", "params": {"ref": "IL-0001", "t1": "2025-04-09T08:00", "t2": "09:00"}}
    asked = [svc.send_message(mechanism_id=M, actor="TR", to=["IL"], **query) for _ in range(3)]
    incident = {"place": "T4", "t1": "2025-04-09T08:00", "party": "TR"}
    svc.send_message(mechanism_id=M, actor="TR", to=["AZ"], template="incident_at", params=incident)  # waits on AZ
    svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "C1"}, to=["IL"])  # no answer due
    own = svc.send_message(
        mechanism_id=M, actor="IL", to=["TR"], **{**query, "params": {**query["params"], "ref": "TR-0001"}}
    )
    svc.acknowledge_message(mechanism_id=M, actor="IL", message_id=asked[1]["id"])
    il = member(svc, "IL")
    waits = [m["id"] for m in svc.messages(M, reader=il, awaiting=True)]
    assert waits == [asked[0]["id"], asked[2]["id"]]
    assert [m["id"] for m in svc.messages(M, reader=il, awaiting=True, limit=1, newest=True)] == [asked[2]["id"]]
    assert [m["id"] for m in svc.messages(M, reader=il, awaiting=True, after_seq=asked[0]["seq"])] == [asked[2]["id"]]
    assert [m["id"] for m in svc.messages(M, reader=member(svc, "TR"), awaiting=True)] == [own["id"]]


def test_a_query_about_an_activity_goes_to_the_party_whose_activity_it_is(svc: Service) -> None:
    """The facilitator asks about Türkiye's activity: addressed to Israel alone it is refused, naming who it
    asks (Israel would owe an answer for another's notice, and Türkiye would never hear it); to Türkiye, or to
    every party, it goes. An id nobody notified is refused as absent, as one the sender may not see would be
    (it asked a party to answer by a deadline about nothing): the same words, so nothing is learnt by asking."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    query = {"template": "query_activity", "params": {"ref": "TR-0001", "t1": "2025-04-09T09:00", "t2": "10:00"}}
    before = svc.messages(M, reader=member(svc, "AZ"))
    with pytest.raises(InvalidInput) as refused:
        svc.send_message(mechanism_id=M, actor="AZ", to=["IL"], **query)
    assert refused.value.field == "to" and "asks TR, whose activity it is" in refused.value.message
    assert svc.messages(M, reader=member(svc, "AZ")) == before  # nothing written
    assert svc.send_message(mechanism_id=M, actor="AZ", to=["TR"], **query)["to"] == ["TR"]
    assert svc.send_message(mechanism_id=M, actor="AZ", **query)["to"] == ["TR"]  # to its owner by default
    ghost = {**query, "params": {**query["params"], "ref": "TR-0099"}}
    with pytest.raises(NotFound) as absent:
        svc.send_message(mechanism_id=M, actor="AZ", to=["IL"], **ghost)
    assert absent.value.field == "ref" and absent.value.message == "params.ref: no activity 'TR-0099' that you may see"
    with pytest.raises(InvalidInput) as own:  # a party does not query itself about its own activity
        svc.send_message(mechanism_id=M, actor="TR", **query)
    assert own.value.field == "ref" and "your own activity" in own.value.message


def test_a_message_may_be_about_a_message_its_sender_reads_and_no_other(svc: Service) -> None:
    """A free text about a line check or an alert keeps what it is about; a message the sender may not read is
    answered as one that does not exist."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])  # C1: an alert to TR
    alert = next(m for m in svc.messages(M, reader=member(svc, "TR")) if m["type"] == "alert")
    about = {"kind": "message", "id": alert["id"]}
    sent = svc.send_message(mechanism_id=M, actor="TR", text="Checking with the crew", about=about)
    assert sent["about"] == about
    hidden = next(m for m in svc.messages(M, reader=member(svc, "AZ")) if "TR" not in m["to"] and m["from"] != "TR")
    for ref in (hidden["id"], "M999"):
        with pytest.raises(NotFound) as absent:
            svc.send_message(mechanism_id=M, actor="TR", text="?", about={"kind": "message", "id": ref})
        assert absent.value.field == "about" and "no such message that you may read" in absent.value.message


def test_a_phrases_parameters_say_only_what_they_are_for(svc: Service) -> None:
    """A phrase is read as the agreed wording, not as free text: a parameter of 15,000 characters carried
    another party's words inside "holding"; a time read "tomorrow"; an incident was reported "by TR" from
    Israel; a reference was any text. Each is refused naming the parameter, and nothing is written."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3)])
    before = svc.entries_after(M, 0)[-1]["seq"]
    cases = [
        ("holding", {"ref": "C1 " + "TR CONFIRMS ALL SORTIES CANCELLED " * 450}, "ref", "200"),
        ("holding", {"ref": "hello world"}, "ref", "ASCII letters"),
        ("query_activity", {"ref": "TR-0001", "t1": "tomorrow", "t2": "10:00"}, "t1", "not a time"),
        ("query_activity", {"ref": "TR-0001", "t1": "2025-02-30T08:00Z", "t2": "10:00"}, "t1", ""),
        ("query_activity", {"ref": "TR-0001", "t1": 1, "t2": "10:00"}, "t1", "not a time"),
        ("query_activity", {"ref": "TR-0001", "t1": "08:00", "t2": "99:99"}, "t2", "not a time"),
        ("incident_at", {"place": "T4", "t1": "24:00", "party": "IL"}, "t1", "not a time"),
        ("query_activity", {"ref": "TR-0001", "t1": "2025-04-09T18:00", "t2": "2025-04-09T17:00Z"}, "t2", "before t1"),
        ("holding", {"ref": "C" + "1" * 70}, "ref", "params.ref: longer than 64"),
        ("incident_at", {"place": "T4", "t1": "08:00:99", "party": "IL"}, "t1", "not a time"),
        ("incident_at", {"place": "T4", "t1": "2025-04-09T08:00Z", "party": "TR"}, "party", "its own party (IL)"),
    ]
    for template, params, field, words in cases:
        with pytest.raises(InvalidInput) as e:
            svc.send_message(mechanism_id=M, actor="IL", template=template, params=params, to=["TR"])
        assert e.value.field == field and words in e.value.message, (template, params, e.value)
    assert svc.entries_after(M, before) == []
    ok = {"ref": "TR-0001", "t1": "2025-04-09T08:00", "t2": "10:00"}
    # with no addressee given, a query goes to the party whose activity it is: the facilitator is not held to answer
    assert svc.send_message(mechanism_id=M, actor="IL", template="query_activity", params=ok)["to"] == ["TR"]


def test_an_addressee_that_is_no_member_is_named_in_words(svc: Service) -> None:
    """``to: ["TR", ""]`` was refused as "nobody is not a member"."""
    with pytest.raises(InvalidInput) as e:
        svc.send_message(mechanism_id=M, actor="IL", text="x", to=["TR", ""])
    assert e.value.field == "to" and e.value.message.startswith("to: an empty name is not a member of this mechanism")
    with pytest.raises(InvalidInput) as e:
        svc.send_message(mechanism_id=M, actor="IL", text="x", to=["XX"])
    assert "'XX' is not a member of this mechanism (AZ, IL, TR, US are)" in e.value.message


def test_an_observer_resolving_is_told_it_observes(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])  # C1
    with pytest.raises(Forbidden) as e:
        svc.resolve_conflict(mechanism_id=M, actor="US", conflict_id="C1", resolution="escalated")
    assert "is an observer: it reads the conflicts and never resolves them" in e.value.message
