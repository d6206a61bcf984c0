"""The incident timeline on a real record (the scripted hour of support.day) and on a polygon notice."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.builders import T0, M, offset, position, vol
from support.day import record_of, write_bundle
from typer.testing import CliRunner

from deconflict.analysis import _timeline_words as timeline_words
from deconflict.analysis import timeline
from deconflict.cli import app
from deconflict.clock import FixedClock, iso
from deconflict.errors import InvalidInput
from deconflict.geo import WGS84
from deconflict.service import Service

T4 = (34.5226, 37.6298)  # lat, lon, as the timeline takes a place
HAMA = (35.1183, 36.7114)


def story(entries: list[dict[str, Any]], place: tuple[float, float], radius_km: float, h0: float, h1: float) -> Any:
    return timeline.incident_timeline(
        entries,
        lat=place[0],
        lon=place[1],
        radius_km=radius_km,
        start=T0 + timedelta(hours=h0),
        end=T0 + timedelta(hours=h1),
    )


def test_t4_story_in_order_with_exact_sentences(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    events = story(entries, T4, 20, 3, 5)
    assert [(e.seq, e.what) for e in events] == [
        (
            7,
            "TR (Türkiye) notified TR-0001, a UAV patrol, 10 km around 34.52 N 37.63 E, 1,000–4,000 m, 09:00–11:00 UTC",
        ),
        (
            8,
            "IL (Israel) notified IL-0001, an air sortie, 10 km around 34.52 N 37.63 E, 1,000–4,000 m, 09:00–11:00 UTC",
        ),
        (
            9,
            "The system raised conflict C1: IL-0001 (IL) and TR-0001 (TR) overlap (minimum 9.3 km), "
            "09:00–11:00 UTC, 1,000–4,000 m; TR to acknowledge by 06:15 UTC",
        ),
        (
            10,
            "The system sent an alert, M1, to TR: “Conflict C1: new notice IL-0001 of IL comes within 0 m of your "
            "activity TR-0001 between 2025-04-09T09:00 and 2025-04-09T11:00 UTC, 1000–4000 m. Acknowledge, then "
            "agree with IL who holds or amends.”; acknowledge by 06:15 UTC",
        ),
        (
            11,
            "The system sent a notice, M2, to IL: “Conflict C1: your notice IL-0001 comes within 0 m of activity "
            "TR-0001 of TR between 2025-04-09T09:00 and 2025-04-09T11:00 UTC, 1000–4000 m. TR has been alerted. "
            "Hold or amend your activity, or agree on the hotline.”",
        ),
        (12, "TR (Türkiye) acknowledged conflict C1, 3 min after it was raised, settling its alert M1"),
        (
            27,
            "TR (Türkiye) amended TR-0001 to version 2: a UAV patrol, 10 km around 34.52 N 36.90 E, "
            "1,000–4,000 m, 09:00–11:00 UTC",
        ),
        (28, "The system closed conflict C1 as amended (TR-0001 superseded by version 2)"),
        (
            29,
            "The system sent a notice, M10, to IL: “Conflict C1 about IL-0001 is closed: an activity in it was "
            "amended (TR). Nothing more is awaited on it.”",
        ),  # the other party is told
    ]
    first, ack = events[0], events[5]
    assert (first.at, first.actor, first.party, first.type) == (T0, "TR", "TR", "activity.notified")
    assert first.fields["activity"] == "TR-0001" and first.fields["lead_s"] == 3 * 3600
    assert first.fields["distance_km"] == 0.0
    assert ack.fields == {
        "conflict": "C1",
        "acknowledged_for": "TR",
        "delay_s": 180.0,
        "late": False,
        "alerts_settled": ["M1"],
    }
    assert events[2].fields["awaiting"] == ["TR"] and events[2].fields["conflict_kind"] == "separation"


def test_hama_story_has_the_short_notice_its_late_acknowledgement_and_the_escalations(
    day: tuple[str, list[dict[str, Any]]],
) -> None:
    _, entries = day
    events = story(entries, HAMA, 10, 0, 2)
    assert [(e.seq, e.what) for e in events if e.seq not in (15, 16)] == [
        (
            13,
            "IL (Israel) notified IL-0002, an air sortie, 15 km around 35.12 N 36.71 E, 2,000–8,000 m, 06:30–07:30 UTC",
        ),
        (
            14,
            "The system raised conflict C2: IL-0002 (IL) was notified 20 min before it starts; "
            "the rules ask for 1 h; TR to acknowledge by 06:20 UTC",
        ),
        (17, "The system escalated M3 to the operations chief: no acknowledgement by 06:20 UTC"),
        (
            21,
            "TR (Türkiye) acknowledged conflict C2, 15 min after it was raised, after its deadline of 06:20 UTC, "
            "settling its alert M3",
        ),
    ]  # and nothing climbs after that: the alert was settled with its conflict
    alert = next(e for e in events if e.seq == 15)
    assert alert.fields["message"] == "M3" and alert.fields["to"] == ["TR"] and alert.fields["needs_ack"]
    assert alert.what.startswith("The system sent an alert, M3, to TR: “") and "IL-0002" in alert.what
    info = next(e for e in events if e.seq == 16)
    assert info.fields["message"] == "M4" and info.fields["to"] == ["IL"] and not info.fields["needs_ack"]
    by_seq = {e.seq: e for e in events}
    assert by_seq[21].fields["late"] is True and by_seq[17].fields == {
        "message": "M3",
        "rung": 1,
        "rung_name": "operations chief",
        "due_at": "2025-04-09T06:20:00Z",
    }


@pytest.mark.parametrize(
    ("place", "radius_km", "h0", "h1", "activities"),
    [
        (T4, 20, 3, 5, {"TR-0001", "IL-0001"}),
        (T4, 20, 0, 3, set()),  # the window ends when the activities start
        (T4, 20, 4.99, 6, {"TR-0001", "IL-0001"}),
        ((34.52, 36.9), 5, 3, 5, {"TR-0001"}),  # only the amended patrol came here
        (HAMA, 10, 3, 5, set()),  # the Hama sortie ended at 07:30
        ((34.52, 37.2), 15, 3, 5, set()),  # 39 km from T4, 27 km from the amended patrol: 10 km circles miss
        ((34.52, 37.2), 30, 3, 5, {"TR-0001", "IL-0001"}),
    ],
)
def test_place_and_window_select_activities(
    day: tuple[str, list[dict[str, Any]]],
    place: tuple[float, float],
    radius_km: float,
    h0: float,
    h1: float,
    activities: set[str],
) -> None:
    _, entries = day
    events = story(entries, place, radius_km, h0, h1)
    found = {e.fields["activity"] for e in events if e.type.startswith("activity.")}
    assert found == activities


def test_red_line_near_the_place_is_in_the_story(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    events = story(entries, (34.5574, 38.3169), 5, 0, 1)  # Palmyra airfield
    assert [(e.seq, e.type) for e in events] == [(6, "zone.declared")]
    assert events[0].what == (
        "IL (Israel) declared red line IL-RL-PALMYRA (Palmyra area: no foreign bases or air defences): "
        "40 km around 34.56 N 38.32 E, forbidding air-defence activation and deployment, from 2025-04-01 00:00 UTC"
    )


def test_withheld_entry_is_shown_as_such(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    copy = [{k: v for k, v in e.items() if not (k == "payload" and e["seq"] == 12)} for e in entries]
    events = story(copy, T4, 20, 3, 5)
    assert [e.seq for e in events] == [7, 8, 9, 10, 11, 12, 27, 28, 29]
    withheld = events[5]
    assert (withheld.what, withheld.actor, withheld.party) == ("entry 12 withheld from this copy", "TR", "TR")
    assert timeline.event_to_json(withheld)["withheld"] is True


def test_text_and_json(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    events = story(entries, T4, 20, 3, 5)
    lines = timeline.timeline_text(events).splitlines()
    assert len(lines) == len(events)
    assert lines[0] == (
        "2025-04-09T06:00:00Z  [7]  TR (Türkiye) notified TR-0001, a UAV patrol, 10 km around 34.52 N 37.63 E, "
        "1,000–4,000 m, 09:00–11:00 UTC"
    )
    docs = timeline.timeline_to_json(events)
    json.dumps(docs, allow_nan=False)
    assert docs[5] == {
        "at": "2025-04-09T06:08:00Z",
        "seq": 12,
        "actor": "TR",
        "party": "TR",
        "type": "conflict.acknowledged",
        "what": "TR (Türkiye) acknowledged conflict C1, 3 min after it was raised, settling its alert M1",
        "conflict": "C1",
        "acknowledged_for": "TR",
        "delay_s": 180.0,
        "late": False,
        "alerts_settled": ["M1"],
    }


def test_polygon_footprint_measured_on_the_ground(svc: Service) -> None:
    square = [[37.0, 34.0], [37.2, 34.0], [37.2, 34.2], [37.0, 34.2], [37.0, 34.0]]
    volume = {**vol((0, 0), T0 + timedelta(hours=2), hours=1), "geometry": {"type": "Polygon", "coordinates": [square]}}
    del volume["radius_m"]
    svc.notify(mechanism_id=M, actor="TR", kind="exercise", volumes=[volume])
    entries = record_of(svc)
    _, _, expected_m = WGS84.inv(37.3, 34.1, 37.2, 34.1)  # east of the square's eastern edge
    (near,) = story(entries, (34.1, 37.3), expected_m / 1000 + 0.1, 2, 3)
    assert near.fields["distance_km"] == pytest.approx(expected_m / 1000, abs=0.02)
    assert near.what == (
        "TR (Türkiye) notified TR-0001, an exercise, an area of 18.5 × 22.2 km around 34.10 N 37.10 E, "
        "1,000–4,000 m, 08:00–09:00 UTC"
    )
    assert story(entries, (34.1, 37.3), expected_m / 1000 - 0.1, 2, 3) == []
    (inside,) = story(entries, (34.1, 37.1), 1, 2, 3)
    assert inside.fields["distance_km"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lat": 91}, "lat: expected degrees between -90 and 90"),
        ({"lon": -200}, "lon: expected degrees"),
        ({"radius_km": 0}, "radius_km: expected kilometres above 0"),
        ({"end": T0}, "window is empty"),
    ],
)
def test_bad_place_or_window_is_refused(
    day: tuple[str, list[dict[str, Any]]], kwargs: dict[str, Any], message: str
) -> None:
    _, entries = day
    args: dict[str, Any] = {"lat": 34.5, "lon": 37.6, "radius_km": 10, "start": T0, "end": T0 + timedelta(hours=1)}
    with pytest.raises(InvalidInput, match=message):
        timeline.incident_timeline(entries, **{**args, **kwargs})


# --- the command ---------------------------------------------------------------------------------

WHERE = ["--lat", "34.5226", "--lon", "37.6298", "--radius-km", "20"]
WHEN = ["--from", iso(T0 + timedelta(hours=3)), "--to", iso(T0 + timedelta(hours=5))]


def test_timeline_command_prints_the_story(day: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    db, entries = day
    result = CliRunner().invoke(app, ["timeline", "--db", db, *WHERE, *WHEN])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tr-il-syria: 9 events within 20 km of 34.5226, 37.6298")
    assert lines[1:] == timeline.timeline_text(story(entries, T4, 20, 3, 5)).splitlines()

    bundle = write_bundle(entries, tmp_path / "record.jsonl")
    from_bundle = CliRunner().invoke(app, ["timeline", "--bundle", str(bundle), *WHERE, *WHEN, "--json"])
    assert from_bundle.exit_code == 0, from_bundle.output
    assert json.loads(from_bundle.stdout) == timeline.timeline_to_json(story(entries, T4, 20, 3, 5))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*WHERE, "--from", "noon", "--to", "2025-04-09T12:00Z"], "--from: 'noon' is not a time"),
        (["--lat", "95", "--lon", "37", "--radius-km", "20", *WHEN], "--lat"),
        ([*WHERE, "--to", "2025-04-09T12:00Z"], "--from"),
        ([*WHERE, *WHEN, "--mechanism", "elsewhere"], "mechanism 'elsewhere' has no record"),
    ],
)
def test_timeline_command_refuses_bad_input_with_exit_2(
    day: tuple[str, list[dict[str, Any]]], args: list[str], message: str
) -> None:
    db, _ = day
    result = CliRunner().invoke(app, ["timeline", "--db", db, *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_timeline_command_refuses_a_missing_database_and_both_sources(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["timeline", "--db", str(tmp_path / "none.db"), *WHERE, *WHEN])
    assert missing.exit_code == 2 and "no such database file" in missing.stderr
    both = CliRunner().invoke(app, ["timeline", "--db", "a.db", "--bundle", "b.jsonl", *WHERE, *WHEN])
    assert both.exit_code == 2 and "either --db or --bundle" in both.stderr


def test_timeline_command_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["timeline", "--help"])
    assert result.exit_code == 0 and "Example: deconflict timeline" in result.stdout


def test_a_predicted_loss_of_separation_between_tracks_is_in_the_story(svc: Service, clock: FixedClock) -> None:
    """Two parties' tracks converging near T4 raise a track conflict: it is told where and when the tracks
    were, what was predicted, and who acknowledged it, with its alerts; far from them, or before, it is not."""
    here = (T4[1], T4[0])  # lon, lat
    for party, kind in (("TR", "uav_patrol"), ("IL", "air_sortie")):
        volume = vol(here, clock() + timedelta(hours=2), hours=6, radius_m=80_000, floor_m=0, ceiling_m=12_000)
        svc.notify(mechanism_id=M, actor=party, kind=kind, volumes=[volume])
    clock.advance(seconds=3 * 3600)  # 09:00Z, inside both notices
    reports = (("TR", "UAV-1", offset(here, 270, 30_000), 90), ("IL", "F16-2", offset(here, 90, 30_000), 270))
    for party, track, where, course in reports:
        raised = svc.report_tracks(mechanism_id=M, actor=party, reports=[position(track, clock(), where, course)])
    (c,) = [x for x in raised["raised"] if x["kind"] == "tracks"]
    clock.advance(seconds=40)
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=c["id"])
    entries = record_of(svc)

    told = [e for e in story(entries, T4, 50, 3, 4) if e.fields.get("conflict") == c["id"]]
    raised_event, *rest = told
    assert raised_event.type == "conflict.detected" and raised_event.fields["conflict_kind"] == "tracks"
    assert raised_event.what == (
        f"The system raised conflict {c['id']}: tracks IL/F16-2 and TR/UAV-1 predicted to come within "
        f"{timeline_words.km(c['distance_m'])} of each other (minimum 9.3 km) at 09:04:51 UTC, 5 min ahead, "
        "inside it from 09:04:06 to 09:05 UTC "  # 60 km closing at 2 x 200 kt; the look-ahead ends at 09:05
        "(IL/F16-2 at 34.52 N 37.96 E, 4,572 m; TR/UAV-1 at 34.52 N 37.30 E, 4,572 m); "
        "IL and TR to acknowledge by 09:04:06 UTC"  # when separation is lost, before the rules' 10 minutes
    )
    assert [s["track"] for s in raised_event.fields["track_states"]] == ["IL/F16-2", "TR/UAV-1"]
    assert [e.type for e in rest] == ["conflict.acknowledged"]
    alerts = [e for e in story(entries, T4, 50, 3, 4) if (e.fields.get("about") or {}).get("id") == c["id"]]
    assert sorted(e.fields["to"][0] for e in alerts) == ["IL", "TR"]  # each party's alert
    assert not [e for e in story(entries, HAMA, 50, 3, 4) if e.fields.get("conflict") == c["id"]]  # far away
    assert not [e for e in story(entries, T4, 50, 0, 2.9) if e.fields.get("conflict") == c["id"]]  # before


def test_a_partys_phrases_about_a_conflict_in_the_story_are_in_it(svc: Service) -> None:
    """Türkiye answers the conflict that awaits it with "holding" (which acknowledges it) and Israel with
    "Received and acknowledged: C1": both are in the story around T4, Türkiye's saying it acknowledged C1 for
    Türkiye. Neither was: a phrase carries its subject in ``ref``, not ``about``, so the story read as if the
    awaited party never answered."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])  # C1, awaiting TR
    svc.send_message(mechanism_id=M, actor="IL", template="acknowledged", params={"ref": "C1"})
    svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "C1"})
    events = story(record_of(svc), T4, 20, -1, 5)
    said = [e.what for e in events if e.type == "message.sent" and e.actor in ("IL", "TR")]
    assert len(said) == 2 and "Received and acknowledged: C1" in said[0], said
    assert said[1].endswith("this acknowledged C1 and M1 for TR"), said
