"""The tactical picture in the service: position reports, predicted loss of separation between parties'
tracks (once per encounter), conformance to notices, intrusion; real SQLite, pinned clock."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod
from support.builders import T4, M, declared_db, offset, position, syria, vol
from support.live import LiveServer

from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.errors import Forbidden, InvalidInput
from deconflict.model import Disclosure
from deconflict.service import Service, tactical_shape
from deconflict.service import tracks as tracks_service
from deconflict.store import open_store
from deconflict.store.schema import TrackReportRow

GEOD = Geod(ellps="WGS84")
at = partial(offset, T4)
"""The point (bearing in degrees, metres) from T4."""


def cover(
    svc: Service,
    clock: FixedClock,
    party: str,
    kind: str,
    radius_m: float = 80_000,
    band: tuple[float, float] = (0, 12_000),
) -> None:
    """A notice around T4 from 2 h after now for 6 h, in ``band`` (floor, ceiling in metres)."""
    volume = vol(T4, clock() + timedelta(hours=2), hours=6, radius_m=radius_m, floor_m=band[0], ceiling_m=band[1])
    svc.notify(mechanism_id=M, actor=party, kind=kind, volumes=[volume])


def report(
    svc: Service, clock: FixedClock, party: str, tid: str, where: tuple[float, float], trk: float, **kw: Any
) -> dict[str, Any]:
    """``party`` reports track ``tid`` at ``where`` (lon, lat) on course ``trk`` now; ``kw``: alt_ft, gs_kt, vs_fpm."""
    return svc.report_tracks(mechanism_id=M, actor=party, reports=[position(tid, clock(), where, trk, **kw)])


def tactical(svc: Service, kind: str) -> list[dict[str, Any]]:
    return [c for c in svc.conflicts(M) if c["kind"] == kind]


@pytest.fixture
def covered(svc: Service, clock: FixedClock) -> Service:
    """Both parties notified a wide volume around T4; the clock is inside its window."""
    cover(svc, clock, "TR", "uav_patrol")
    cover(svc, clock, "IL", "air_sortie")
    clock.advance(seconds=3 * 3600)
    return svc


def test_converging_tracks_raise_one_alert_minutes_ahead_to_both_parties(covered: Service, clock: FixedClock) -> None:
    svc = covered
    before = {c["id"] for c in svc.conflicts(M)}
    # a Turkish UAV 30 km west of T4 flying east, an Israeli aircraft 30 km east flying west: 200 kt each
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    out = report(svc, clock, "IL", "F16-2", at(90, 30_000), 270)
    (c,) = [x for x in out["raised"] if x["kind"] == "tracks"]
    assert c["kind"] == "tracks" and (c["activity"], c["other_activity"]) == ("IL/F16-2", "TR/UAV-1")
    closing = 2 * 200 * 1852 / 3600
    assert c["t_in_s"] == pytest.approx((60_000 - 9260) / closing, abs=3)  # about 2 min ahead
    assert c["tcpa_s"] == pytest.approx(60_000 / closing, abs=3) and c["distance_m"] < 500
    assert c["awaiting"] == ["IL", "TR"]
    alerts = [m for m in svc.messages(M, reader=svc.member(M, "TR")) if m["template"] == "track_alert"]
    assert len(alerts) == 1 and alerts[0]["lang"] == "tr" and "TR/UAV-1" in alerts[0]["text"]
    assert alerts[0]["to"] == ["TR"] and alerts[0]["about"] == {"kind": "conflict", "id": c["id"]}
    # each awaited party has an alert of its own, acknowledged and escalated on its own
    il_alerts = [m for m in svc.messages(M, reader=svc.member(M, "IL")) if m["template"] == "track_alert"]
    assert [m["to"] for m in il_alerts] == [["IL"]] and il_alerts[0]["about"] == alerts[0]["about"]
    # more reports of the same encounter: no new conflict, no new alert
    for _ in range(3):
        clock.advance(seconds=10)
        moved = 10 * 200 * 1852 / 3600
        report(svc, clock, "TR", "UAV-1", at(270, 30_000 - moved * (_ + 1)), 90)
        again = report(svc, clock, "IL", "F16-2", at(90, 30_000 - moved * (_ + 1)), 270)["raised"]
        assert [x for x in again if x["kind"] == "tracks"] == []
    assert len(tactical(svc, "tracks")) == 1
    # both turn away and report: checked clear, the conflict clears
    clock.advance(seconds=10)
    report(svc, clock, "TR", "UAV-1", at(270, 20_000), 270)
    report(svc, clock, "IL", "F16-2", at(90, 20_000), 90)
    (done,) = tactical(svc, "tracks")
    assert done["status"] == "resolved" and done["resolution"] == "cleared"
    (cleared,) = [
        e["payload"]
        for e in svc.entries_after(M, 0, limit=10_000)
        if e["type"] == "conflict.resolved" and e["payload"]["id"] == done["id"]
    ]
    assert cleared["note"] == "no loss of separation predicted any more"
    # its alerts, never acknowledged, close with it and stop climbing
    for reader in ("TR", "IL"):
        (alert,) = [m for m in svc.messages(M, reader=svc.member(M, reader)) if m["template"] == "track_alert"]
        assert (alert["status"], alert["closed_note"]) == ("closed", f"conflict {done['id']} resolved (cleared)")
    # each aircraft is still inside the other party's notified volume: those intrusions stay open
    assert sorted((c["kind"], c["status"]) for c in svc.conflicts(M) if c["id"] not in before) == [
        ("intrusion", "open"),
        ("intrusion", "open"),
        ("tracks", "resolved"),
    ]


def _track_alerts(svc: Service) -> list[dict[str, Any]]:
    read = [m for reader in ("TR", "IL") for m in svc.messages(M, reader=svc.member(M, reader))]
    return [m for m in read if m["template"] == "track_alert"]


def _escalated(svc: Service, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {m["id"] for m in messages}
    entries = svc.entries_after(M, 0, limit=10_000)
    return [e for e in entries if e["type"] == "message.escalated" and e["payload"]["id"] in ids]


def _rechecked(svc: Service, *about: str) -> list[str]:
    """What ``ledger verify``'s recomputation of the record names about any of ``about`` (conflict ids, phrases)
    (the fixtures never tick: the rest may name a missed duty-loop run)."""
    from deconflict.service.recheck import recheck

    problems = recheck(svc.entries_after(M, 0, limit=10_000), mechanism=M).problems
    return [p for p in problems if any(a in p for a in about)]


def test_contact_lost_mid_encounter_keeps_the_conflict_open_and_its_alerts_climbing(
    covered: Service, clock: FixedClock
) -> None:
    """Two aircraft predicted to lose separation; Israel's feed of its aircraft stops while Türkiye's UAV flies
    on. Contact lost is not a resolution: past the stale time the conflict stays open, its alerts are due at
    the predicted loss of separation and climb the ladder then (it used to close as "cleared" 60 s after the
    last report, its alerts with it, before the aircraft met). It ends when the track is back and checked
    clear, or when a person resolves it; and the record verifies."""
    svc = covered
    stale_s = svc.mechanism(M).rules.track_stale_s
    speed = 200 * 1852 / 3600
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    (c,) = [x for x in report(svc, clock, "IL", "F16-2", at(90, 30_000), 270)["raised"] if x["kind"] == "tracks"]
    alerts = _track_alerts(svc)
    assert c["t_in_s"] > stale_s + 30  # the feed is lost well before the predicted loss of separation
    flown = 0.0
    while flown < stale_s + 20:  # F16-2 is no longer reported; UAV-1 is, on course, every 10 s
        clock.advance(seconds=10)
        flown += 10
        report(svc, clock, "TR", "UAV-1", at(270, 30_000 - speed * flown), 90)
        svc.tick()
    (still,) = tactical(svc, "tracks")
    assert still["status"] != "resolved", still
    assert {m["status"] for m in _track_alerts(svc)} != {"closed"}
    assert _escalated(svc, alerts) == []  # not due yet
    # what a reader of the conflict is told: F16-2 no longer reported since its last report, UAV-1 reporting;
    # the same when the query reads every track of the mechanism instead of naming them
    lost = [{"track": "IL/F16-2", "last_report": iso(clock() - timedelta(seconds=flown))}]
    assert svc.contact_lost(M, [still]) == {c["id"]: lost}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracks_service, "MOST_NAMED", 0)
        assert svc.contact_lost(M, [still]) == {c["id"]: lost}
    clock.advance(seconds=c["t_in_s"] - flown + 1)  # the predicted loss of separation passes, nobody answered
    svc.tick()
    assert sorted(e["payload"]["id"] for e in _escalated(svc, alerts)) == sorted(m["id"] for m in alerts)
    (still,) = tactical(svc, "tracks")
    assert still["status"] != "resolved"
    # contact regained: F16-2 reports again, turned away, and its pair is checked clear
    report(svc, clock, "IL", "F16-2", at(0, 40_000), 0)
    report(svc, clock, "TR", "UAV-1", at(180, 40_000), 180)
    (done,) = tactical(svc, "tracks")
    assert (done["status"], done["resolution"]) == ("resolved", "cleared")
    assert _rechecked(svc, c["id"], "track_alert") == []
    assert svc.contact_lost(M, [done]) == {}  # resolved: nothing to say


def test_tracks_about_to_meet_must_be_acknowledged_before_they_meet(covered: Service, clock: FixedClock) -> None:
    """The rules give 10 minutes to acknowledge; tracks predicted to lose separation in about 4 minutes must be
    acknowledged by then, and the ladder climbs at that moment if nobody has, not 6 minutes after they met."""
    svc = covered
    rules = svc.mechanism(M).rules
    speed = 200 * 1852 / 3600
    detected = clock()
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    (c,) = [x for x in report(svc, clock, "IL", "F16-2", at(90, 30_000), 270)["raised"] if x["kind"] == "tracks"]
    assert 200 < c["t_in_s"] < rules.ack_deadline_s
    assert c["deadline"] == iso(detected + timedelta(seconds=c["t_in_s"]))
    alerts = _track_alerts(svc)
    assert len(alerts) == 2 and {m["deadline"] for m in alerts} == {c["deadline"]}
    # both keep reporting as they close; nobody acknowledges
    flown = 0.0
    while flown + 30 < c["t_in_s"]:
        clock.advance(seconds=30)
        flown += 30
        report(svc, clock, "TR", "UAV-1", at(270, 30_000 - speed * flown), 90)
        report(svc, clock, "IL", "F16-2", at(90, 30_000 - speed * flown), 270)
        svc.tick()
    assert _escalated(svc, alerts) == []  # still before the loss of separation
    clock.advance(seconds=c["t_in_s"] - flown + 1)
    flown = c["t_in_s"] + 1
    report(svc, clock, "TR", "UAV-1", at(270, 30_000 - speed * flown), 90)
    report(svc, clock, "IL", "F16-2", at(90, 30_000 - speed * flown), 270)
    svc.tick()
    climbed = _escalated(svc, alerts)
    assert sorted(e["payload"]["id"] for e in climbed) == sorted(m["id"] for m in alerts)
    assert {e["payload"]["rung"] for e in climbed} == {1}
    assert {e["payload"]["due_at"] for e in climbed} == {c["deadline"]}


def test_tracks_already_too_close_get_the_least_time_to_acknowledge(covered: Service, clock: FixedClock) -> None:
    """Tracks within the separation minima when first seen: the alert is due in a minute, not at once."""
    svc = covered
    detected = clock()
    report(svc, clock, "TR", "UAV-1", at(270, 2_000), 90)
    (c,) = [x for x in report(svc, clock, "IL", "F16-2", at(90, 2_000), 270)["raised"] if x["kind"] == "tracks"]
    assert c["t_in_s"] == 0
    assert c["deadline"] == iso(detected + timedelta(seconds=tactical_shape.LEAST_ACK_S))
    assert {m["deadline"] for m in _track_alerts(svc)} == {c["deadline"]}


def test_tracks_seen_after_the_clock_stepped_back_are_due_from_their_entry_s_time(
    covered: Service, clock: FixedClock
) -> None:
    """The clock steps back 5 s after an entry: the tracks conflict is stamped with that entry's time, as every
    entry then, and its deadline and its alerts' count from that stamp; verify finds nothing wrong with them."""
    svc = covered
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    stamped = parse_utc(svc.entries_after(M, svc.head(M).seq - 1, limit=1)[0]["at"], field="at")
    clock.advance(seconds=-5)
    (c,) = [x for x in report(svc, clock, "IL", "F16-2", at(90, 30_000), 270)["raised"] if x["kind"] == "tracks"]
    (entry,) = [e for e in svc.entries_after(M, 0, limit=10_000) if e["payload"].get("id") == c["id"]]
    assert parse_utc(entry["at"], field="at") == stamped > clock()
    assert c["deadline"] == iso(stamped + timedelta(seconds=c["t_in_s"]))
    assert {m["deadline"] for m in _track_alerts(svc)} == {c["deadline"]}
    assert _rechecked(svc, c["id"], "track_alert") == []


def test_same_party_tracks_and_diverging_tracks_raise_nothing(covered: Service, clock: FixedClock) -> None:
    svc = covered
    report(svc, clock, "TR", "A", at(270, 20_000), 90)
    report(svc, clock, "TR", "B", at(90, 20_000), 270)  # same party
    report(svc, clock, "IL", "C", at(0, 30_000), 0)  # flying away north
    assert tactical(svc, "tracks") == []


def test_vertical_separation_is_the_mechanisms_rule(covered: Service, clock: FixedClock) -> None:
    """The Syria rules ask for 305 m: 1,000 ft (304.8 m) is not enough, 1,010 ft (307.8 m) is."""
    svc = covered
    report(svc, clock, "TR", "A", at(270, 20_000), 90, alt_ft=15_000)
    report(svc, clock, "IL", "B", at(90, 20_000), 270, alt_ft=16_010)
    assert tactical(svc, "tracks") == []
    report(svc, clock, "IL", "C", at(90, 20_000), 270, alt_ft=16_000)
    assert [c["other_activity"] for c in tactical(svc, "tracks")] == ["TR/A"]


def test_a_track_outside_its_partys_notices_is_reported_to_that_party_once(svc: Service, clock: FixedClock) -> None:
    cover(svc, clock, "TR", "uav_patrol", radius_m=20_000)
    clock.advance(seconds=3 * 3600)
    assert report(svc, clock, "TR", "UAV-1", at(0, 10_000), 0)["raised"] == []  # inside
    out = report(svc, clock, "TR", "UAV-2", at(0, 25_000), 0)  # 5 km outside: beyond the 1 NM tolerance
    (c,) = out["raised"]
    assert c["kind"] == "conformance" and c["activity"] == "TR/UAV-2" and c["awaiting"] == ["TR"]
    (alert,) = [m for m in svc.messages(M, reader=svc.member(M, "TR")) if m["template"] == "conformance_alert"]
    assert alert["to"] == ["TR"]
    assert [m for m in svc.messages(M, reader=svc.member(M, "IL")) if m["template"] == "conformance_alert"] == []
    clock.advance(seconds=5)
    assert report(svc, clock, "TR", "UAV-2", at(0, 25_500), 0)["raised"] == []  # still out: same conflict
    clock.advance(seconds=5)
    back = report(svc, clock, "TR", "UAV-2", at(0, 19_000), 180)
    assert back["cleared"] == [c["id"]]
    clock.advance(seconds=5)
    again = report(svc, clock, "TR", "UAV-2", at(0, 30_000), 0)  # a new excursion: a new conflict
    assert [x["kind"] for x in again["raised"]] == ["conformance"] and again["raised"][0]["id"] != c["id"]


def test_a_track_inside_another_partys_volume_alerts_both(svc: Service, clock: FixedClock) -> None:
    cover(svc, clock, "TR", "uav_patrol", radius_m=50_000)
    cover(svc, clock, "IL", "air_sortie", radius_m=10_000)
    clock.advance(seconds=3 * 3600)
    out = report(svc, clock, "TR", "UAV-1", at(0, 5_000), 0, gs_kt=0)
    kinds = {c["kind"]: c for c in out["raised"]}
    assert set(kinds) == {"intrusion"} and kinds["intrusion"]["other_activity"] == "IL-0001"
    # no loss of separation to come before: the rules' acknowledgement deadline
    assert kinds["intrusion"]["deadline"] == iso(clock() + timedelta(seconds=svc.mechanism(M).rules.ack_deadline_s))
    assert kinds["intrusion"]["parties"] == ["IL", "TR"]
    for reader in ("TR", "IL"):
        assert [m for m in svc.messages(M, reader=svc.member(M, reader)) if m["template"] == "intrusion_alert"]


BAD = [
    ({"lat": None}, "lat: missing"),
    ({"lat": "north"}, "lat: expected a number"),
    ({"lat": 91}, "latitude, degrees must be between -90 and 90"),
    ({"gs_kt": -5}, "ground speed, knots must be between 0 and 2000"),
    ({"at": "2025-04-09T09:10:00Z"}, "lies in the future"),
    ({"at": "2025-04-09T08:00:00Z"}, "such a track has left the picture"),
    ({"colour": "red"}, "unknown field 'colour'"),
]


@pytest.mark.parametrize(("change", "words"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_report_is_refused_by_name_and_nothing_is_stored(
    covered: Service, clock: FixedClock, change: dict[str, Any], words: str
) -> None:
    svc = covered
    head = svc.verify(M).head_seq
    good = position("A", clock(), (37.6, 34.5), 90, alt_ft=9000, gs_kt=150)
    bad = {**good, "id": "B", **change}
    with pytest.raises(InvalidInput, match=words) as err:
        svc.report_tracks(mechanism_id=M, actor="TR", reports=[good, bad])
    assert "report 1 (id 'B')" in str(err.value)
    with svc.store.read() as s:
        assert s.query(TrackReportRow).count() == 0
    assert svc.verify(M).head_seq == head and svc.tracks(M, reader=svc.member(M, "AZ")) == []


def test_only_parties_report_tracks(covered: Service, clock: FixedClock) -> None:
    with pytest.raises(Forbidden):
        report(covered, clock, "AZ", "X", T4, 0)


def test_who_sees_which_track(covered: Service, clock: FixedClock) -> None:
    svc = covered
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    clock.advance(seconds=10)
    tracks = svc.tracks(M, reader=svc.member(M, "AZ"))
    (t,) = tracks
    expected_lon, _, _ = GEOD.fwd(*at(270, 30_000), 90, 10 * 200 * 1852 / 3600)
    assert t["track"] == "TR/UAV-1" and t["lon"] == pytest.approx(expected_lon, abs=1e-6)  # flown on 10 s
    assert [x["track"] for x in svc.tracks(M, reader=svc.member(M, "IL"))] == ["TR/UAV-1"]  # full disclosure


def test_under_conflicts_only_a_party_sees_another_party_s_track_only_in_a_conflict_with_its_own(
    store_url: str, clock: FixedClock
) -> None:
    svc = Service(
        open_store(declared_db(store_url, clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))), clock=clock
    )
    # within the caps of conflicts-only; Israel's band above Türkiye's, so that no Turkish track intrudes into it
    cover(svc, clock, "TR", "uav_patrol", radius_m=55_000, band=(0, 9_000))
    cover(svc, clock, "IL", "air_sortie", radius_m=55_000, band=(9_500, 18_500))
    clock.advance(seconds=3 * 3600)

    def seen(party: str) -> list[str]:
        return [t["track"] for t in svc.tracks(M, reader=svc.member(M, party))]

    report(svc, clock, "TR", "UAV-9", at(180, 45_000), 90)  # 45 km south of the others: in no conflict
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    report(svc, clock, "TR", "UAV-5", at(0, 150_000), 90)  # outside TR's notice: a conformance conflict, TR's alone
    assert {c["activity"] for c in tactical(svc, "conformance")} == {"TR/UAV-5"}
    assert seen("IL") == [] and seen("TR") == ["TR/UAV-1", "TR/UAV-5", "TR/UAV-9"]
    report(svc, clock, "IL", "F16-2", at(90, 30_000), 270)  # head on with UAV-1, at its altitude
    assert {c["activity"] for c in tactical(svc, "tracks")} == {"IL/F16-2"}
    assert seen("IL") == ["IL/F16-2", "TR/UAV-1"]  # UAV-1 now in a conflict with Israel's own; not UAV-5, UAV-9
    assert seen("TR") == ["IL/F16-2", "TR/UAV-1", "TR/UAV-5", "TR/UAV-9"]
    assert len(seen("AZ")) == 4  # the facilitator sees the whole picture


def test_positions_command_sends_a_csv_to_the_running_service(
    live: LiveServer, tmp_path: Path, clock: FixedClock
) -> None:
    from typer.testing import CliRunner

    from deconflict.cli import app

    env = {"DECONFLICT_URL": live.url, "DECONFLICT_TOKEN": live.service.issue_token(mechanism_id=M, member_id="TR")}
    csv = tmp_path / "tracks.csv"
    csv.write_text("id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\nUAV-1,34.52,37.63,9000,120,90,0\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["positions", str(csv), "--at", iso(clock())], env=env)
    assert out.exit_code == 0, out.output
    assert "1 positions stored" in out.output and "conformance, TR/UAV-1" in out.output
    csv.write_text("id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\nUAV-2,95,37.63,9000,120,90,0\n", encoding="utf-8")
    bad = CliRunner().invoke(app, ["positions", str(csv)], env=env)
    assert bad.exit_code == 2 and "line 2" in bad.output and "lat" in bad.output
    assert [t["track"] for t in live.service.tracks(M, reader=live.service.member(M, "AZ"))] == ["TR/UAV-1"]


def test_a_record_written_when_contact_lost_cleared_still_verifies(
    covered: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records written before 2026-12-05 closed a tactical conflict whose track left the picture as cleared,
    with a note saying so: they verify as they did. A note that is neither the earlier nor today's is named."""
    from deconflict.service import tracks as tracks_module

    svc = covered
    for kind, note in tracks_module.EARLIER_CLEARED_NOTES.items():
        monkeypatch.setitem(tracks_module.CLEARED_NOTES, kind, note)  # the service as it was
    report(svc, clock, "TR", "UAV-1", at(270, 30_000), 90)
    report(svc, clock, "IL", "F16-2", at(90, 30_000), 270)
    clock.advance(seconds=10)
    report(svc, clock, "TR", "UAV-1", at(270, 20_000), 270)
    report(svc, clock, "IL", "F16-2", at(90, 20_000), 90)
    (done,) = tactical(svc, "tracks")
    assert done["resolution"] == "cleared"
    monkeypatch.undo()  # the service as it is: the rules recomputed from the record (what ledger verify does)
    assert _rechecked(svc, done["id"]) == []
    monkeypatch.setitem(tracks_module.EARLIER_CLEARED_NOTES, "tracks", "something else")
    (named,) = _rechecked(svc, done["id"])
    assert "no loss of separation predicted any more" in named, named
