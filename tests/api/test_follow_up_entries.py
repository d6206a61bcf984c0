"""What follows a conflict or a message in the record reaches only those who may see what it follows.

A party's copy of the record (``GET .../record``, the event stream) withholds a conflict it is not party
to and a message neither to nor from it (docs/disclosure.md §2). The entries that follow them — the
acknowledgement of that conflict, its resolution with the resolver's note, the acknowledgement of that
message, its escalation steps — name them by id and say what happened to them: they are withheld with
them. Here, on a live server, Türkiye's conformance alert climbs a rung and Türkiye then resolves the
conflict with a note of its own, and Türkiye reports an incident to the facilitator, which acknowledges
it; Israel sees none of those conflicts and messages, so none of what follows them either, in either
disclosure mode. Türkiye and the facilitator receive all of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import HAMA, T0, T4, A, M, declared_db, declared_service, offset, position, syria, vol
from support.leaks import read_all
from support.live import LiveServer, auth, start_server

from deconflict.clock import FixedClock
from deconflict.model import Disclosure

NOTE = "drifted off the corridor: jammed GNSS near the river"
FOLLOW_UPS = {
    "conflict.acknowledged": "conflicts",
    "conflict.resolved": "conflicts",
    "message.acknowledged": "messages",
    "message.escalated": "messages",
}


@pytest.fixture(scope="module", params=[Disclosure.CONFLICTS_ONLY, Disclosure.FULL], ids=lambda d: d.value)
def scene(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    clock = FixedClock(T0)
    db = declared_db(tmp_path_factory.mktemp("follow") / "f.db", clock, mechanism=syria(disclosure=request.param))
    server: LiveServer = start_server(db, clock)
    svc, tok = server.service, server.tokens()
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, start_h=3)])
    clock.advance(seconds=3 * 3600 + 60)  # its window is open; a Turkish UAV reports far from it
    (c,) = [x for x in svc.report_tracks(mechanism_id=M, actor="TR", reports=[_uav(clock)])["raised"]]
    assert c["kind"] == "conformance" and c["awaiting"] == ["TR"], c
    for _ in range(11):  # the UAV keeps reporting; Türkiye's alert, unanswered, climbs a rung
        clock.advance(seconds=60)
        svc.report_tracks(mechanism_id=M, actor="TR", reports=[_uav(clock)])
        svc.tick()
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=c["id"])
    svc.resolve_conflict(mechanism_id=M, actor="TR", conflict_id=c["id"], resolution="accepted", note=NOTE)
    incident = {"place": "T4", "t1": "09:00", "party": "TR"}
    sent = svc.send_message(mechanism_id=M, actor="TR", template="incident_at", params=incident, to=["AZ"])
    svc.acknowledge_message(mechanism_id=M, actor="AZ", message_id=sent["id"])
    got: dict[str, Any] = {}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for who in ("IL", "TR", "AZ"):
            got[who] = read_all(client, tok[who], at=clock())
            got[who]["messages"] = client.get(f"{A}/messages", headers=auth(tok[who])).json()
    yield {"got": got, "conflict": c["id"], "incident": sent["id"]}
    server.stop()


def _uav(clock: FixedClock) -> dict[str, Any]:
    return position("UAV-1", clock(), offset(T4, 270, 30_000), 90)


def _follow_ups(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["type"] in FOLLOW_UPS and "payload" in e]


@pytest.mark.parametrize("route", ["record", "events"])
def test_a_party_receives_what_follows_only_what_it_sees(scene: dict[str, Any], route: str) -> None:
    got = scene["got"]["IL"]
    entries = got["record"]["entries"] if route == "record" else got["events"]
    sees = {"conflicts": {x["id"] for x in got["conflicts"]}, "messages": {m["id"] for m in got["messages"]}}
    unseen = [e for e in _follow_ups(entries) if e["payload"]["id"] not in sees[FOLLOW_UPS[e["type"]]]]
    assert unseen == [], f"Israel receives what follows what it does not see: {unseen}"
    assert NOTE not in json.dumps(entries)
    # they keep their place, without their payload, as what they follow does
    kinds = {e["type"] for e in entries if e.get("withheld")}
    assert set(FOLLOW_UPS) <= kinds, kinds


def test_those_it_concerns_receive_all_of_it(scene: dict[str, Any]) -> None:
    for who in ("TR", "AZ"):
        entries = scene["got"][who]["record"]["entries"]
        said = {(e["type"], e["payload"]["id"]) for e in _follow_ups(entries)}
        assert ("conflict.acknowledged", scene["conflict"]) in said, who
        assert ("conflict.resolved", scene["conflict"]) in said and ("message.escalated", "M1") in said, who
        assert ("message.acknowledged", scene["incident"]) in said, who
        assert NOTE in json.dumps(entries)


def test_a_phrase_that_settles_what_only_its_sender_sees_goes_by_default_to_whom_may_see_it(tmp_path: Path) -> None:
    """A phrase "holding C1" acknowledges C1, and its entry names C1 and its alert (``settles``): sent with no
    addressee (every party that answers, by default), it told Israel of Türkiye's own conflict and alert."""
    clock = FixedClock(T0)
    svc = declared_service(tmp_path / "s.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, start_h=3)])
    clock.advance(seconds=3 * 3600 + 60)
    (c,) = svc.report_tracks(mechanism_id=M, actor="TR", reports=[_uav(clock)])["raised"]
    assert c["awaiting"] == ["TR"]
    sent = svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": c["id"]})
    assert sent["to"] == ["AZ"]
    (entry,) = svc.entries_after(M, sent["seq"] - 1, limit=1)
    assert entry["payload"]["settles"]["conflicts"] == [c["id"]]
    # the alert is settled all the same; naming Israel is Türkiye's own choice
    assert svc.conflict(M, c["id"])["acknowledged"].keys() == {"TR"}
    told = svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "TR-0001"}, to=["IL"])
    assert told["to"] == ["IL"]


def test_who_sees_what_is_learned_again_when_the_record_is_written_over(tmp_path: Path) -> None:
    """A restore or a failover to a copy that lacked the last entries numbers the conflicts after its head
    again, perhaps for other parties: what this process learned of who may see C1 is let go with its picture,
    so a follow-up of the new C1 is judged by the new C1."""
    import shutil
    import sqlite3

    from deconflict.service import Service
    from deconflict.store import open_store

    clock = FixedClock(T0)
    db = declared_db(tmp_path / "live.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    backup = shutil.copy(db, tmp_path / "backup.db")
    svc = Service(open_store(db), clock=clock)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=3)])
    svc.audiences(M, svc.entries_after(M, 0, limit=1000))
    assert svc.context.audiences[M][("conflict", "C1")] == ("conflict", ("IL", "TR"))
    with sqlite3.connect(backup) as source, sqlite3.connect(db) as target:
        source.backup(target)  # the backup restored under the running process
    svc.context.pictures.expire(M)
    svc.context.pictures.fresh(M)
    assert M not in svc.context.audiences
    svc.store.close()


def test_a_phrase_about_a_conflict_it_no_longer_settles_goes_by_default_to_whom_may_see_it(tmp_path: Path) -> None:
    """Acknowledged first, then "Received C1. We are amending our activity": the phrase settles nothing any
    more, and sent with no addressee it told Israel which hidden conflict was Türkiye's and what Türkiye was
    doing about it (a hostile party's test, three times)."""
    clock = FixedClock(T0)
    svc = declared_service(tmp_path / "s.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, start_h=3)])
    clock.advance(seconds=3 * 3600 + 60)
    (c,) = svc.report_tracks(mechanism_id=M, actor="TR", reports=[_uav(clock)])["raised"]
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=c["id"])
    for template in ("acknowledged_amending", "holding"):
        sent = svc.send_message(mechanism_id=M, actor="TR", template=template, params={"ref": c["id"]})
        assert sent["to"] == ["AZ"], template
        (entry,) = svc.entries_after(M, sent["seq"] - 1, limit=1)
        assert "settles" not in entry["payload"]
    alert = next(m["id"] for m in svc.messages(M, reader=svc.member(M, "TR")) if m["template"] == "conformance_alert")
    about_the_alert = svc.send_message(mechanism_id=M, actor="TR", template="acknowledged", params={"ref": alert})
    assert about_the_alert["to"] == ["AZ"]


@pytest.mark.parametrize("disclosure", [Disclosure.CONFLICTS_ONLY, Disclosure.FULL], ids=lambda d: d.value)
def test_a_phrase_about_an_activity_goes_by_default_to_whom_may_see_it(tmp_path: Path, disclosure: Disclosure) -> None:
    """ "Holding TR-0001" about a notice Israel is not shown under conflicts-only told Israel the notice's id and
    what Türkiye does with it; under full disclosure every party sees the notice and is told."""
    clock = FixedClock(T0)
    svc = declared_service(tmp_path / "s.db", clock, mechanism=syria(disclosure=disclosure))
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, start_h=3)])
    sent = svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "TR-0001"})
    assert sent["to"] == (["AZ"] if disclosure is Disclosure.CONFLICTS_ONLY else ["AZ", "IL"])
