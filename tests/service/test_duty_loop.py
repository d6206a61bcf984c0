"""The duty officer's loop in the service, on a real SQLite file with a pinned clock (docs/duty-loop.md).

A conflict reaches the party that must act (routing, table-driven for every kind of conflict), that
party settles it once (conflict, alert or response phrase: one entry), and once settled or resolved
nothing climbs the ladder; the report, replay and the waiting list read the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from support.builders import HAMA, PALMYRA, T0, T4, M, offset, position, vol, zone
from support.live import LiveServer, auth, start_server

from deconflict.analysis import report
from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.errors import Forbidden, InvalidInput, InvalidState, NotFound
from deconflict.hotline import render
from deconflict.service import Service


def sent_about(svc: Service, conflict_id: str) -> list[dict[str, Any]]:
    """Every hotline message about a conflict, as the record holds it (whoever it went to)."""
    return [
        e["payload"]
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.sent" and e["payload"].get("about") == {"kind": "conflict", "id": conflict_id}
    ]


def message(svc: Service, message_id: str) -> dict[str, Any]:
    doc = next(
        e["payload"]
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.sent" and e["payload"]["id"] == message_id
    )
    reader = next(m for m in svc.mechanism(M).members if m.party == doc["to"][0])
    return svc.message(M, message_id, reader=reader)


def escalations_after(svc: Service, seq: int) -> list[str]:
    return [e["payload"]["id"] for e in svc.entries_after(M, seq, limit=100_000) if e["type"] == "message.escalated"]


def head(svc: Service) -> int:
    return int(svc.entries_after(M, 0, limit=100_000)[-1]["seq"])


# --- routing: who is alarmed, who is informed, for every kind of conflict -------------------------------


def separation(svc: Service, clock: FixedClock) -> dict[str, Any]:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, T0 + timedelta(hours=3))])
    return svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, T0 + timedelta(hours=3))]).raised[
        0
    ]


def red_line(svc: Service, clock: FixedClock) -> dict[str, Any]:
    # Israel's red line around Palmyra (in the scenario) forbids other parties' deployments there
    start = T0 + timedelta(days=1)
    notice = vol(PALMYRA, start, hours=24, radius_m=3000, floor_m=0, ceiling_m=150)
    (c,) = svc.notify(mechanism_id=M, actor="TR", kind="deployment", volumes=[notice]).raised
    return c


def restricted(svc: Service, clock: FixedClock) -> dict[str, Any]:
    svc.declare_zone(mechanism_id=M, actor="IL", zone=zone("IL-R-HAMA", "restricted", ["uav_patrol"], HAMA, 20_000))
    (c,) = svc.notify(
        mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, T0 + timedelta(hours=3))]
    ).raised
    return c


def own_protected_zone(svc: Service, clock: FixedClock) -> dict[str, Any]:
    protected = zone("IL-P-HAMA", "protected", ["air_sortie"], HAMA, 5_000, applies_to_owner=True)
    svc.declare_zone(mechanism_id=M, actor="IL", zone=protected)
    (c,) = svc.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, T0 + timedelta(hours=3))]
    ).raised
    return c


def short_notice(svc: Service, clock: FixedClock) -> dict[str, Any]:
    (c,) = svc.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, T0 + timedelta(minutes=20))]
    ).raised
    return c


def covered(svc: Service, clock: FixedClock) -> None:
    """Both parties notified wide volumes around T4 two hours ahead; the clock moves into their window."""
    for party, kind in (("TR", "uav_patrol"), ("IL", "air_sortie")):
        wide = vol(T4, T0 + timedelta(hours=2), hours=6, radius_m=80_000, floor_m=0, ceiling_m=12_000)
        svc.notify(mechanism_id=M, actor=party, kind=kind, volumes=[wide])
    clock.advance(seconds=3 * 3600)


def track(svc: Service, clock: FixedClock, party: str, tid: str, bearing: float, distance_m: float, trk: float) -> Any:
    report_ = position(tid, clock(), offset(T4, bearing, distance_m), trk)
    return svc.report_tracks(mechanism_id=M, actor=party, reports=[report_])


def tracks(svc: Service, clock: FixedClock) -> dict[str, Any]:
    covered(svc, clock)
    track(svc, clock, "TR", "UAV-1", 270, 30_000, 90)
    out = track(svc, clock, "IL", "F16-2", 90, 30_000, 270)
    return next(c for c in out["raised"] if c["kind"] == "tracks")


def conformance(svc: Service, clock: FixedClock) -> dict[str, Any]:
    covered(svc, clock)
    out = track(svc, clock, "TR", "UAV-9", 90, 150_000, 90)  # far outside TR's 80 km volume
    return next(c for c in out["raised"] if c["kind"] == "conformance")


def intrusion(svc: Service, clock: FixedClock) -> dict[str, Any]:
    covered(svc, clock)
    out = track(svc, clock, "TR", "UAV-5", 0, 1_000, 90)  # TR's UAV inside IL's sortie volume (and its own)
    return next(c for c in out["raised"] if c["kind"] == "intrusion")


# kind, how it arises, awaited (each gets an alert it must acknowledge), informed (no acknowledgement)
ROUTING: list[tuple[str, Callable[[Service, FixedClock], dict[str, Any]], list[str], list[list[str]]]] = [
    ("separation: the earlier notifier is awaited, the later one informed", separation, ["TR"], [["IL"]]),
    ("red line: the owner is awaited, the breaker and the facilitator informed", red_line, ["IL"], [["TR"], ["AZ"]]),
    ("restricted zone: the owner is awaited, the breaker informed (no facilitator copy)", restricted, ["IL"], [["TR"]]),
    ("own protected zone: the other parties are awaited, the owner informed", own_protected_zone, ["TR"], [["IL"]]),
    ("short notice: the other parties are awaited, the late notifier informed", short_notice, ["TR"], [["IL"]]),
    ("tracks: both parties are awaited, each with its own alert", tracks, ["IL", "TR"], []),
    ("conformance: the track's own party is awaited", conformance, ["TR"], []),
    ("intrusion: both parties are awaited", intrusion, ["IL", "TR"], []),
]


@pytest.mark.parametrize(("case", "arise", "awaited", "informed"), ROUTING, ids=[r[0].split(":")[0] for r in ROUTING])
def test_routing_rule(
    svc: Service,
    clock: FixedClock,
    case: str,
    arise: Callable[[Service, FixedClock], dict[str, Any]],
    awaited: list[str],
    informed: list[list[str]],
) -> None:
    c = arise(svc, clock)
    assert c["awaiting"] == awaited, case
    assert set(awaited) <= set(c["parties"]), case  # whoever must answer is a party to it, and sees it
    messages = sent_about(svc, c["id"])
    alerts = [m for m in messages if m["needs_ack"]]
    assert [m["to"] for m in alerts] == [[p] for p in awaited], case  # one alert each, to the awaited only
    assert all(m["type"] == "alert" for m in alerts)
    assert [m["to"] for m in messages if not m["needs_ack"]] == informed, case
    # every alert names the conflict, so it can be settled by naming it
    assert all(m["params"].get("conflict", m["params"].get("ref")) == c["id"] for m in alerts)
    # only an awaited party may acknowledge it
    for party in {"TR", "IL"} - set(awaited):
        if party in c["parties"]:  # told of it, not asked
            with pytest.raises(Forbidden, match=f"awaits the acknowledgement of .*not of {party}"):
                svc.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=c["id"])
        else:  # it does not concern that party: answered as a conflict that does not exist
            with pytest.raises(NotFound, match="no such conflict that concerns you"):
                svc.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=c["id"])
    for party in awaited:
        svc.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=c["id"])
    assert svc.conflict(M, c["id"])["status"] == "acknowledged"
    assert all(message(svc, m["id"])["status"] == "acknowledged" for m in alerts)


def test_the_owner_told_of_its_own_zones_breach_is_told_who_was_alerted(svc: Service, clock: FixedClock) -> None:
    """IL's own protected zone binds IL: TR is awaited, and IL's information copy said "IL has been alerted"
    (the zone's owner, as when another party breaches it): IL was told it had alerted itself, not that Türkiye
    must now acknowledge."""
    c = own_protected_zone(svc, clock)
    (info,) = [m for m in sent_about(svc, c["id"]) if not m["needs_ack"]]
    assert info["to"] == ["IL"] and info["template"] == "own_zone_breach_info"
    assert info["params"]["alerted"] == "TR"
    words = render(info["template"], "en", info["params"]).text
    assert "your own zone IL-P-HAMA" in words and "TR has been alerted and must acknowledge" in words, words
    assert "IL has been alerted" not in words
    assert "נשלחה התרעה אל \u2068TR\u2069" in message(svc, info["id"])["text"]  # as IL's member reads it


def test_zone_and_short_notice_alerts_carry_the_real_band(svc: Service, clock: FixedClock) -> None:
    c = red_line(svc, clock)
    assert (c["floor_m"], c["ceiling_m"]) == (0, 150)
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    assert (alert["template"], alert["params"]["floor"], alert["params"]["ceiling"]) == (
        "zone_breach_alert",
        "0",
        "150",
    )
    s = short_notice(svc, clock)
    assert (s["floor_m"], s["ceiling_m"]) == (1000, 4000)


# --- one acknowledgement: the conflict, its alert or a phrase; nothing climbs once settled ----------------


def test_acknowledging_the_conflict_settles_its_alert_and_nothing_climbs(svc: Service, clock: FixedClock) -> None:
    c = separation(svc, clock)
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    clock.advance(seconds=3 * 60)
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=c["id"])
    entry = svc.entries_after(M, 0, limit=100_000)[-1]
    assert (entry["type"], entry["payload"]) == (
        "conflict.acknowledged",
        {"id": c["id"], "party": "TR", "messages": [alert["id"]]},
    )  # recorded once
    seen = head(svc)
    with pytest.raises(InvalidState, match="already acknowledged by TR"):
        svc.acknowledge_message(mechanism_id=M, actor="TR", message_id=alert["id"])
    for _ in range(3 * 60):  # three hours, past every rung of the ladder
        clock.advance(seconds=60)
        svc.tick()
    assert escalations_after(svc, seen) == [m for m in escalations_after(svc, seen) if m != alert["id"]]
    assert alert["id"] not in escalations_after(svc, 0)
    assert message(svc, alert["id"])["status"] == "acknowledged"
    tr = report.compliance_report(svc.entries_after(M, 0, limit=100_000), parties=["TR"]).parties[0]
    assert tr.conflicts.in_time == 1 and [d for d in tr.missed_deadlines if d.kind == "conflict"] == []
    assert alert["id"] not in tr.escalations.messages


def test_acknowledging_the_alert_acknowledges_the_conflict(svc: Service, clock: FixedClock) -> None:
    c = red_line(svc, clock)
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    assert alert["to"] == ["IL"]
    done = svc.acknowledge_message(mechanism_id=M, actor="IL", message_id=alert["id"])
    assert done["status"] == "acknowledged"
    conflict = svc.conflict(M, c["id"])
    assert conflict["status"] == "acknowledged" and set(conflict["acknowledged"]) == {"IL"}
    last = svc.entries_after(M, 0, limit=100_000)[-1]
    assert last["type"] == "conflict.acknowledged" and last["payload"]["messages"] == [alert["id"]]
    with pytest.raises(InvalidState):
        svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id=c["id"])


@pytest.mark.parametrize("template", ["acknowledged", "holding", "acknowledged_amending", "proceeding_as_notified"])
@pytest.mark.parametrize("ref", ["conflict", "alert"])
def test_a_response_phrase_from_the_awaited_party_acknowledges(
    svc: Service, clock: FixedClock, template: str, ref: str
) -> None:
    c = separation(svc, clock)
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    named = c["id"] if ref == "conflict" else alert["id"]
    # the party that caused it saying the same settles nothing: it is not awaited
    svc.send_message(mechanism_id=M, actor="IL", template="acknowledged", params={"ref": named})
    assert svc.conflict(M, c["id"])["status"] == "open"
    svc.send_message(mechanism_id=M, actor="TR", template=template, params={"ref": named})
    last = svc.entries_after(M, 0, limit=100_000)[-1]
    assert last["type"] == "message.sent" and last["payload"]["settles"] == {
        "conflicts": [c["id"]],
        "messages": [alert["id"]],
    }
    assert svc.conflict(M, c["id"])["status"] == "acknowledged"
    assert message(svc, alert["id"])["status"] == "acknowledged"
    seen = head(svc)
    clock.advance(seconds=30 * 60)
    svc.tick()
    assert alert["id"] not in escalations_after(svc, seen)
    replayed = svc.replay(M, None)
    assert next(x for x in replayed["conflicts"] if x["id"] == c["id"])["status"] == "acknowledged"


@pytest.mark.parametrize(
    ("settle", "resolution"),
    [
        (
            lambda svc, c: svc.amend(
                mechanism_id=M,
                actor="IL",
                activity_id=c["activity"],
                seen_version=1,
                volumes=[vol(PALMYRA, T0 + timedelta(hours=3))],
            ),
            "amended",
        ),
        (lambda svc, c: svc.cancel(mechanism_id=M, actor="IL", activity_id=c["activity"]), "cancelled"),
        (
            lambda svc, c: svc.resolve_conflict(
                mechanism_id=M, actor="AZ", conflict_id=c["id"], resolution="escalated", note="agreed by phone"
            ),
            "escalated",
        ),
    ],
    ids=["amended", "cancelled", "escalated"],
)
def test_a_resolved_conflict_closes_its_alerts_and_they_stop_climbing(
    svc: Service, clock: FixedClock, settle: Callable[[Service, dict[str, Any]], Any], resolution: str
) -> None:
    c = separation(svc, clock)
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    clock.advance(seconds=2 * 60)
    settle(svc, c)
    resolved = svc.conflict(M, c["id"])
    assert (resolved["status"], resolved["resolution"]) == ("resolved", resolution)
    closed = message(svc, alert["id"])
    assert (closed["status"], closed["closed_note"]) == ("closed", f"conflict {c['id']} resolved ({resolution})")
    entry = next(e for e in svc.entries_after(M, 0, limit=100_000) if e["type"] == "conflict.resolved")
    assert entry["payload"]["messages"] == [alert["id"]]  # the closing is on the record, in the same entry
    seen = head(svc)
    for _ in range(3 * 60):
        clock.advance(seconds=60)
        svc.tick()
    assert alert["id"] not in escalations_after(svc, 0) and seen <= head(svc)
    with pytest.raises(InvalidState, match="closed"):
        svc.acknowledge_message(mechanism_id=M, actor="TR", message_id=alert["id"])
    tr = report.compliance_report(svc.entries_after(M, 0, limit=100_000), parties=["TR"]).parties[0]
    assert [d.outcome for d in tr.conflicts.items] == ["closed"]
    assert [d for d in tr.missed_deadlines if d.kind == "conflict"] == []
    replayed = svc.replay(M, None)
    row = next(m for m in replayed["messages"] if m["id"] == alert["id"])
    assert row["closed_at"] == iso(T0 + timedelta(minutes=2)) and row["closed_note"] == closed["closed_note"]


def test_withdrawing_a_zone_resolves_its_conflicts(svc: Service, clock: FixedClock) -> None:
    c = red_line(svc, clock)
    out = svc.withdraw_zone(mechanism_id=M, actor="IL", zone_id=c["zone"])
    assert out.resolved == (c["id"],)
    assert svc.conflict(M, c["id"])["resolution"] == "withdrawn"
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    assert message(svc, alert["id"])["status"] == "closed"


def test_by_hand_a_conflict_is_resolved_only_as_accepted_or_escalated(svc: Service, clock: FixedClock) -> None:
    """Amended too is the service's to record: by hand, TR (awaited) closed IL's conflict "as amended" with
    nothing amended, and the service told IL that an activity in it was amended, nothing more awaited."""
    c = separation(svc, clock)
    head = svc.head(M).seq
    with pytest.raises(InvalidInput, match="resolution: 'cleared' is recorded by the service"):
        svc.resolve_conflict(mechanism_id=M, actor="AZ", conflict_id=c["id"], resolution="cleared")
    for actor in ("TR", "AZ"):
        with pytest.raises(InvalidInput, match="'amended' is recorded by the service when it happens: amend or cancel"):
            svc.resolve_conflict(mechanism_id=M, actor=actor, conflict_id=c["id"], resolution="amended")
    assert svc.head(M).seq == head and svc.conflict(M, c["id"])["status"] == "open"


def test_an_unanswered_alert_still_climbs(svc: Service, clock: FixedClock) -> None:
    c = red_line(svc, clock)
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    clock.advance(seconds=11 * 60)
    svc.tick()
    assert escalations_after(svc, 0) == [alert["id"]]
    il = report.compliance_report(svc.entries_after(M, 0, limit=100_000), parties=["IL", "TR"]).parties
    assert [d.id for d in il[0].missed_deadlines] == [c["id"]] and il[1].missed_deadlines == ()  # the owner's, not TR's


# --- what waits on us --------------------------------------------------------------------------------------


def test_waiting_says_when_each_item_climbs_next_and_to_whom(svc: Service, clock: FixedClock) -> None:
    """After an escalation the first deadline has passed for good: what a shift taking over needs is when the
    ladder climbs again if nobody answers, and to whom (the Syria ladder: 10 min, then the operations chief
    15, the national security adviser 30, the facilitator 60)."""
    red = red_line(svc, clock)
    first = parse_utc(red["deadline"], field="deadline")

    def item() -> dict[str, Any]:
        (found,) = [i for i in svc.waiting(M, reader=svc.member(M, "IL"))["items"] if i["id"] == red["id"]]
        return found

    before = item()
    assert (before["rung"], before["next_step_at"], before["next_rung_name"]) == (0, iso(first), "operations chief")
    clock.advance(seconds=11 * 60)
    svc.tick()
    climbed = item()
    assert climbed["rung"] == 1 and climbed["overdue"] and climbed["deadline"] == iso(first)  # still the first
    assert climbed["next_step_at"] == iso(first + timedelta(minutes=15))
    assert climbed["next_rung_name"] == "national security adviser"
    clock.advance(seconds=15 * 60)
    svc.tick()
    assert (item()["rung"], item()["next_step_at"]) == (2, iso(first + timedelta(minutes=45)))
    clock.advance(seconds=30 * 60)
    svc.tick()
    last = item()
    assert (last["rung"], last["rung_name"], last["next_step_at"], last["next_rung_name"]) == (
        3,
        "facilitator",
        None,
        None,
    )
    # a message of its own (TR's incident report to IL) climbs on the same ladder from its own send time
    params = {"place": "T4", "t1": iso(clock()), "party": "TR"}
    asked = svc.send_message(mechanism_id=M, actor="TR", template="incident_at", params=params, to=["IL"])
    (msg,) = [i for i in svc.waiting(M, reader=svc.member(M, "IL"))["items"] if i["id"] == asked["id"]]
    assert (msg["next_step_at"], msg["next_rung_name"]) == (msg["deadline"], "operations chief")


def test_waiting_lists_what_each_party_must_answer_overdue_first(svc: Service, clock: FixedClock) -> None:
    red = red_line(svc, clock)
    clock.advance(seconds=60)
    late = short_notice(svc, clock)
    clock.advance(seconds=9 * 60)  # the red line's deadline has passed, the short notice's not yet
    svc.tick()
    il = svc.waiting(M, reader=svc.member(M, "IL"))
    items = [(i["kind"], i["id"], i["overdue"], i["rung"]) for i in il["items"]]
    assert items[0] == ("conflict", red["id"], True, 1)  # climbed to the operations chief
    assert ("conflict", late["id"]) not in [(i[0], i[1]) for i in items]  # IL caused it: nothing to answer
    tr = svc.waiting(M, reader=svc.member(M, "TR"))
    assert [(i["kind"], i["id"], i["overdue"]) for i in tr["items"] if i["kind"] == "conflict"] == [
        ("conflict", late["id"], False)
    ]
    assert tr["items"][0]["alerts"] and "IL-0001" in (tr["items"][0]["summary"] or "")
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id=red["id"])
    assert red["id"] not in [i["id"] for i in svc.waiting(M, reader=svc.member(M, "IL"))["items"]]
    assert svc.waiting(M, reader=svc.member(M, "US"))["items"] == []


# --- time -------------------------------------------------------------------------------------------------


def test_a_notice_whose_windows_have_ended_is_refused_and_nothing_is_written(svc: Service, clock: FixedClock) -> None:
    before = head(svc)
    past = vol(T4, T0 - timedelta(hours=14), hours=2)
    for call in (
        lambda: svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[past]),
        lambda: svc.preview_notice(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[past]),
    ):
        with pytest.raises(InvalidInput, match="every window of this notice has already ended") as e:
            call()
        assert e.value.field == "end"
    assert head(svc) == before
    # a window under way is fine: the activity is in force
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, T0 - timedelta(hours=1))])
    patrol = svc.activities(M)[0]
    clock.advance(seconds=2 * 3600)
    with pytest.raises(InvalidInput, match="already ended"):
        svc.amend(mechanism_id=M, actor="TR", activity_id=patrol.id, seen_version=1, title="late change")


# --- line checks: late while the party is heard from, down in silence -----------------------------------


def test_an_unanswered_line_check_is_late_if_the_party_acts_and_down_if_silent(svc: Service, clock: FixedClock) -> None:
    svc.tick()  # the first line checks go out
    clock.advance(seconds=2 * 60)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, T0 + timedelta(hours=3))])
    clock.advance(seconds=9 * 60)  # past the deadline; IL acted, TR did nothing
    svc.tick()
    assert svc.line_status(M) == {"IL": "late", "TR": "down"}
    downs = [
        e["payload"]
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.sent" and e["payload"].get("template") == "line_down"
    ]
    assert [d["params"]["party"] for d in downs] == ["TR"]  # IL's people are there: no line-down for IL


def test_activities_say_whether_they_are_in_force_live_and_replayed(db: str, svc: Service, clock: FixedClock) -> None:
    under_way = vol(T4, T0 - timedelta(hours=1), hours=2)  # 05:00–07:00, now 06:00
    later = vol(HAMA, T0 + timedelta(hours=3))
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[under_way])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[later])
    svc.store.close()
    server = start_server(db, clock)
    try:
        token = server.service.issue_token(mechanism_id=M, member_id="IL")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            base = f"/api/v1/mechanisms/{M}"

            def phases(path: str) -> dict[str, str]:
                got = c.get(base + path, headers=auth(token)).json()
                return {a["id"]: a["phase"] for a in (got["activities"] if isinstance(got, dict) else got)}

            assert phases("/activities") == {"TR-0001": "in_force", "TR-0002": "planned"}
            clock.advance(seconds=2 * 3600)  # 08:00: the first has ended, the second not begun
            assert phases("/activities") == {"TR-0001": "ended", "TR-0002": "planned"}
            assert phases(f"/replay?at={iso(T0)}") == {"TR-0001": "in_force", "TR-0002": "planned"}
            assert phases(f"/replay?at={iso(T0 + timedelta(hours=3, minutes=30))}") == {
                "TR-0001": "ended",
                "TR-0002": "in_force",
            }
    finally:
        server.stop()


def test_each_role_sends_only_its_own_phrases(svc: Service, clock: FixedClock) -> None:
    c = separation(svc, clock)
    with pytest.raises(Forbidden, match="'holding' is not a phrase a facilitator sends"):
        svc.send_message(mechanism_id=M, actor="AZ", template="holding", params={"ref": c["id"]})
    forged = {
        "conflict": c["id"],
        "ref": "TR-0001",
        "place": "X",
        "owner": "IL",
        "party": "TR",
        "t1": T0,
        "t2": T0,
        "floor": 0,
        "ceiling": 1,
    }
    with pytest.raises(Forbidden, match="alerts, line checks and escalations come from the service"):
        svc.send_message(mechanism_id=M, actor="IL", template="zone_breach_alert", params=forged)
    assert (
        svc.send_message(
            mechanism_id=M, actor="AZ", template="query_activity", params={"ref": "TR-0001", "t1": T0, "t2": T0}
        )["type"]
        == "query"
    )


@pytest.mark.parametrize(
    ("change", "detail", "field"),
    [
        ({"floor_m": "abc"}, "volume 1 floor_m: expected a number of metres, got 'abc'", "volumes.0.floor_m"),
        (
            {"start": "tomorrow"},
            "volume 1 (id 'v1') start: 'tomorrow' is not a time in ISO 8601 form such as 2025-04-09T08:00:00Z",
            "start",
        ),
        ({"colour": "red"}, "volume 1 colour: is not a field this request takes", "volumes.0.colour"),
    ],
)
def test_malformed_notices_are_refused_in_words(
    live: LiveServer, change: dict[str, Any], detail: str, field: str
) -> None:
    token = live.service.issue_token(mechanism_id=M, member_id="TR")
    notice = {"kind": "uav_patrol", "volumes": [{**vol(T4, T0 + timedelta(hours=3)), **change}]}
    r = httpx.post(f"{live.url}/api/v1/mechanisms/{M}/activities", json=notice, headers=auth(token))
    assert r.status_code == 422 and r.json()["detail"] == detail and r.json()["field"] == field
    assert live.service.activities(M) == []


def test_a_time_sent_as_text_is_worded_once_as_utc(svc: Service, clock: FixedClock) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    params = {"ref": "TR-0001", "t1": "2025-04-09T23:33:00+03:00", "t2": "2025-04-09T22:00:00Z"}
    sent = svc.send_message(mechanism_id=M, actor="IL", template="query_activity", params=params)
    assert sent["params"] == {"ref": "TR-0001", "t1": "2025-04-09T20:33", "t2": "2025-04-09T22:00"}
    assert "2025-04-09T20:33 and 2025-04-09T22:00 UTC" in svc.message(M, sent["id"], reader=svc.member(M, "AZ"))["text"]


def test_a_phrase_answering_a_line_check_reported_down_restores_the_line_aloud(svc: Service, clock: FixedClock) -> None:
    svc.tick()  # line checks to IL and TR
    check = next(
        e["payload"]["id"]
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.sent" and e["payload"]["type"] == "line_check" and e["payload"]["to"] == ["IL"]
    )
    clock.advance(seconds=11 * 60)
    svc.tick()
    assert svc.line_status(M)["IL"] == "down"
    svc.send_message(mechanism_id=M, actor="IL", template="acknowledged", params={"ref": check})
    assert svc.line_status(M)["IL"] == "up"
    restored = [
        e["payload"]
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.sent" and e["payload"].get("template") == "line_restored"
    ]
    assert [(r["params"]["party"], r["to"]) for r in restored] == [("IL", ["AZ", "TR"])]


def test_an_overlap_wholly_in_the_past_raises_no_conflict(svc: Service, clock: FixedClock) -> None:
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, T0 + timedelta(minutes=61), hours=0.5)])
    clock.advance(seconds=95 * 60)  # IL's window (07:01–07:31) has ended
    under_way = vol(T4, T0 + timedelta(minutes=35), hours=3)  # TR's activity, under way since 06:35
    assert [
        c["kind"] for c in svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[under_way]).raised
    ] == ["short_notice"]  # given after it began, but no separation conflict with a sortie that is over
    tr_zone = zone("TR-R-T4", "restricted", ["air_sortie"], T4, 20_000)
    assert svc.declare_zone(mechanism_id=M, actor="TR", zone=tr_zone).raised == ()  # IL's sortie there has ended


def test_amending_again_and_again_cannot_hold_an_unanswered_alert_at_its_first_rung(
    svc: Service, clock: FixedClock
) -> None:
    first = separation(svc, clock)  # awaits TR, deadline 06:10
    version = 1
    for _ in range(3):  # IL retitles its sortie every 9 minutes; TR never answers
        clock.advance(seconds=9 * 60)
        svc.tick()
        out = svc.amend(mechanism_id=M, actor="IL", activity_id="IL-0001", seen_version=version, title=f"v{version}")
        version += 1
        (again,) = out.raised
        assert again["deadline"] == first["deadline"] and again["supersedes"]
    escalated = [
        (e["payload"]["rung"], e["at"])
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.escalated"
    ]
    # rung 1 fell due at 06:10 and was seen at the 06:18 tick; the re-raised alert climbed on to rung 2 (06:25)
    assert escalated[0] == (1, "2025-04-09T06:18:00Z") and max(r for r, _ in escalated) == 2
    tr = report.compliance_report(svc.entries_after(M, 0, limit=100_000), parties=["TR"]).parties[0]
    assert [d.outcome for d in tr.conflicts.items if d.id == again["id"]] == ["missed"]
    # once TR acknowledges, an amendment raises a fresh conflict with a deadline of its own
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=again["id"])
    clock.advance(seconds=60)
    (fresh,) = svc.amend(mechanism_id=M, actor="IL", activity_id="IL-0001", seen_version=version, title="x").raised
    assert fresh["deadline"] == iso(clock() + timedelta(minutes=10)) and "supersedes" not in fresh


def test_the_party_that_caused_a_conflict_cannot_accept_it_for_the_party_it_awaits(
    svc: Service, clock: FixedClock
) -> None:
    c = red_line(svc, clock)
    with pytest.raises(Forbidden, match="your activity caused it: amend or cancel it"):
        svc.resolve_conflict(mechanism_id=M, actor="TR", conflict_id=c["id"], resolution="accepted")
    assert [i["id"] for i in svc.waiting(M, reader=svc.member(M, "IL"))["items"]] == [c["id"]]  # IL still alarmed
    done = svc.resolve_conflict(mechanism_id=M, actor="IL", conflict_id=c["id"], resolution="accepted", note="ok")
    assert (done["resolution"], done["resolved_by"]) == ("accepted", "IL")
    (alert,) = [m for m in sent_about(svc, c["id"]) if m["needs_ack"]]
    closed = message(svc, alert["id"])
    assert (closed["status"], closed["closed_resolution"]) == ("closed", "accepted")


def test_the_other_parties_are_told_when_a_conflict_closes(svc: Service, clock: FixedClock) -> None:
    c = red_line(svc, clock)
    svc.cancel(mechanism_id=M, actor="TR", activity_id=c["activity"])
    (told,) = [m for m in sent_about(svc, c["id"]) if m["template"] == "conflict_closed"]
    assert told["to"] == ["AZ", "IL"] and told["params"]["how"] == "cancelled"  # the owner and the facilitator
    hebrew = svc.message(M, told["id"], reader=svc.member(M, "IL"))["text"]
    assert "בוטלה" in hebrew and "cancelled" not in hebrew  # how it closed, in the reader's language
    s = separation(svc, clock)
    svc.resolve_conflict(mechanism_id=M, actor="TR", conflict_id=s["id"], resolution="accepted", note="we hold")
    (noted,) = [m for m in sent_about(svc, s["id"]) if m["template"] == "conflict_closed_note"]
    assert noted["to"] == ["IL"] and noted["params"]["note"] == "we hold"


@pytest.mark.parametrize("on", ["2026-12-07T06:00:00Z", "2025-04-09T06:00:00Z"])
def test_an_escalation_is_told_to_the_parties_it_still_awaits(tmp_path: Any, on: str) -> None:
    """Türkiye reports an incident to Israel and the facilitator; Israel acknowledges at once, the facilitator
    never. At the deadline the step is told to the facilitator, not to Israel, which answered (Israel was told
    that nobody had answered); and the compliance report does not charge Israel with it. Before the service
    took up that rule (``duty.AWAITED_ONLY_SINCE``) a step was told to every addressee, as ``ledger verify``
    recomputes a record of then."""
    from support.builders import declared_service

    clock = FixedClock(parse_utc(on, field="on"))
    svc = declared_service(tmp_path / "esc.db", clock)
    incident = {"place": "T4", "t1": on[:16], "party": "TR"}
    sent = svc.send_message(mechanism_id=M, actor="TR", template="incident_at", params=incident, to=["AZ", "IL"])
    svc.acknowledge_message(mechanism_id=M, actor="IL", message_id=sent["id"])
    clock.advance(seconds=11 * 60)
    svc.tick()
    told = [
        e["payload"]["to"]
        for e in svc.entries_after(M, 0, limit=100_000)
        if e["type"] == "message.sent" and e["payload"].get("template") == "escalated_to"
    ]
    assert told == ([["AZ"]] if on.startswith("2026") else [["AZ", "IL"]])
    il = report.compliance_report(svc.entries_after(M, 0, limit=100_000), parties=["IL"]).parties[0]
    assert il.escalations.count == 0 and sent["id"] not in il.escalations.messages
    # the facilitator, which did not answer, has its own report when asked for by its code (it was refused)
    az = report.compliance_report(svc.entries_after(M, 0, limit=100_000), parties=["AZ"]).parties[0]
    assert [d.id for d in az.missed_deadlines] == [sent["id"]] and az.escalations.messages == (sent["id"],)
    assert svc.verify(M).ok
