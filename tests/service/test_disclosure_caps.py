"""What one notice may cover under conflicts-only (issue 14): the caps in the mechanism's rules, read and
recorded with them, held on notify, amend and preview; the preview's count and allowance; a conflict
recorded without volume ids, and a short-notice conflict without the late notice's window and band."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.builders import HAMA, T0, T4, M, declared_service, syria, vol

from deconflict.clock import FixedClock
from deconflict.errors import InvalidInput
from deconflict.mechanisms import caps_to_doc, mechanism_from_record, mechanism_to_doc, with_caps
from deconflict.model import Disclosure
from deconflict.service import Service
from deconflict.service.previews import PreviewsExhausted


@pytest.fixture
def co(tmp_path: Path) -> tuple[Service, FixedClock]:
    clock = FixedClock(T0)
    return declared_service(tmp_path / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY)), clock


def _notify(svc: Service, actor: str, *volumes: dict[str, Any], kind: str = "uav_patrol") -> Any:
    return svc.notify(mechanism_id=M, actor=actor, kind=kind, volumes=list(volumes))


@pytest.mark.parametrize(
    ("volume", "field", "words"),
    [
        (vol(T4, radius_m=60_000), "geometry", "max_notice_area_km2"),
        (vol(T4, floor_m=0, ceiling_m=12_000), "ceiling_m", "max_notice_band_m"),
        (vol(T4, hours=8 * 24), "end", "max_notice_hours"),
    ],
)
def test_a_notice_beyond_a_cap_is_refused_naming_the_field(
    co: tuple[Service, FixedClock], volume: dict[str, Any], field: str, words: str
) -> None:
    svc, _ = co
    head = svc.entries_after(M, 0)[-1]["seq"]
    for attempt in (
        lambda: _notify(svc, "IL", volume),
        lambda: svc.preview_notice(mechanism_id=M, actor="IL", kind="uav_patrol", volumes=[volume]),
    ):
        with pytest.raises(InvalidInput) as e:
            attempt()
        assert e.value.field == field and words in e.value.message and "conflicts-only" in e.value.message
    first = _notify(svc, "IL", vol(T4)).activity
    with pytest.raises(InvalidInput):
        svc.amend(mechanism_id=M, actor="IL", activity_id=first.id, seen_version=1, volumes=[volume])
    assert svc.entries_after(M, head)[-1]["type"] == "activity.notified"  # only the notice within the caps


def test_two_volumes_count_together_against_the_area(co: tuple[Service, FixedClock]) -> None:
    svc, _ = co
    half = [vol(T4, radius_m=40_000), vol(HAMA, radius_m=40_000)]  # ~5,000 km² each: 10,000 together
    with pytest.raises(InvalidInput, match="together"):
        _notify(svc, "IL", *half)


def test_under_full_disclosure_the_caps_do_not_apply(tmp_path: Path) -> None:
    svc = declared_service(tmp_path / "full.db", FixedClock(T0))
    assert _notify(svc, "IL", vol(T4, floor_m=0, ceiling_m=12_000)).activity is not None


def test_the_caps_are_read_and_recorded_with_the_rules() -> None:
    m = syria(disclosure=Disclosure.CONFLICTS_ONLY)
    doc = mechanism_to_doc(m)
    assert doc["rules"]["max_notice_hours"] == 168 and doc["rules"]["previews_per_hour"] == 60
    changed = {**doc, "rules": {**doc["rules"], "max_notice_band_m": 4000, "previews_per_hour": 5}}
    back = mechanism_from_record(changed)
    assert back.rules.max_notice_band_m == 4000 and back.rules.previews_per_hour == 5
    assert caps_to_doc(syria().rules) == {}  # a full mechanism's record reads as before the caps
    assert caps_to_doc(dataclasses.replace(syria().rules, previews_per_hour=5)) == {"previews_per_hour": 5}
    for bad in ("big", 0, True):
        with pytest.raises(InvalidInput) as e:
            with_caps(m.rules, {"max_notice_area_km2": bad})
        assert "max_notice_area_km2" in e.value.message


def test_previews_are_limited_per_member_per_hour(co: tuple[Service, FixedClock]) -> None:
    svc, clock = co
    for _ in range(60):
        svc.preview_notice(mechanism_id=M, actor="IL", kind="uav_patrol", volumes=[vol(T4)])
    with pytest.raises(PreviewsExhausted) as e:
        svc.preview_notice(mechanism_id=M, actor="IL", kind="uav_patrol", volumes=[vol(T4)])
    assert e.value.status == 429 and e.value.retry_after_s == 3601
    svc.preview_notice(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])  # TR's own allowance
    clock.advance(seconds=3600)
    svc.preview_notice(mechanism_id=M, actor="IL", kind="uav_patrol", volumes=[vol(T4)])


def test_conflicts_are_recorded_without_volume_ids_or_a_late_notices_window(co: tuple[Service, FixedClock]) -> None:
    svc, _ = co
    _notify(svc, "TR", vol(T4, id="tr-vol", radius_m=20_000))
    late = _notify(svc, "TR", vol(HAMA, start_h=0.25, id="tr-late"))
    (short,) = late.raised
    assert short["kind"] == "short_notice" and short["lead_time_s"] == 900
    assert not {"start", "end", "floor_m", "ceiling_m"} & set(short)
    (sep,) = _notify(svc, "IL", vol((37.90, 34.52), id="il-vol"), kind="air_sortie").raised
    assert "volume_pairs" not in sep and sep["overlap_a"] and sep["overlap_b"]
    assert all("volume" not in p and p["area_km2"] > 0 for p in sep["overlap_a"] + sep["overlap_b"])
    recorded = [e["payload"] for e in svc.entries_after(M, 0) if e["type"] == "conflict.detected"]
    assert "tr-vol" not in str(recorded) and "il-vol" not in str(recorded) and "tr-late" not in str(recorded)


def test_a_conflict_recorded_before_the_model_is_read_as_the_model_says() -> None:
    from deconflict.disclosure import recorded_conflict

    old = {
        "kind": "short_notice",
        "activity": "TR-0002",
        "lead_time_s": 900.0,
        "start": "2025-04-09T06:15:00Z",
        "end": "2025-04-09T08:15:00Z",
        "floor_m": 1000,
        "ceiling_m": 4000,
    }
    assert recorded_conflict(old, Disclosure.CONFLICTS_ONLY) == {
        "kind": "short_notice",
        "activity": "TR-0002",
        "lead_time_s": 900.0,
    }
    assert recorded_conflict(old, Disclosure.FULL) == old
    sep = {"kind": "separation", "volume_pairs": [["a", "b"]], "overlap_b": [{"volume": "b", "floor_m": 1}]}
    shaped = recorded_conflict(sep, Disclosure.CONFLICTS_ONLY)
    assert shaped == {"kind": "separation", "overlap_b": [{"floor_m": 1}]}
    assert recorded_conflict(shaped, Disclosure.CONFLICTS_ONLY) == shaped  # idempotent


def test_an_acknowledged_conflict_without_a_window_leaves_the_live_picture_a_day_after_its_acknowledgement(
    co: tuple[Service, FixedClock],
) -> None:
    """A short-notice conflict is recorded without the late notice's window under conflicts-only: the live
    picture (``ending_after``) judges it by what its readers were shown, its last acknowledgement. Counted as
    never ending, such conflicts piled up on the page, the TAK bridge and the picture exports for as long as
    the mechanism ran."""
    svc, clock = co
    (short,) = _notify(svc, "TR", vol(HAMA, start_h=0.25)).raised
    assert short["kind"] == "short_notice" and "end" not in short
    for party in short["awaiting"]:
        svc.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=short["id"])
    clock.advance(seconds=12 * 3600)
    day_ago = clock() - timedelta(days=1)
    assert [c["id"] for c in svc.conflicts(M, status="acknowledged", ending_after=day_ago)] == [short["id"]]
    clock.advance(seconds=13 * 3600)  # acknowledged 25 h ago
    day_ago = clock() - timedelta(days=1)
    assert svc.conflicts(M, status="acknowledged", ending_after=day_ago) == []
    assert [c["id"] for c in svc.conflicts(M, status="acknowledged")] == [short["id"]]


def test_a_comb_of_thin_strips_is_held_to_the_ground_it_reaches_not_the_ground_it_covers(
    co: tuple[Service, FixedClock],
) -> None:
    """A notice of twenty strips 20 m wide, 14 km apart, covers about 80 km² but, grown by the separation
    minimum, reaches some 60,000 km²: a preview of it showed every other party's notice there whole. It is
    refused, as a notice and as a preview, naming its geometry; a round footprint just under the area cap,
    which reaches about as much as a notice may, is not."""
    svc, _ = co
    strips = [
        [
            [
                [37.0 + 0.15 * i, 34.0],
                [37.0002 + 0.15 * i, 34.0],
                [37.0002 + 0.15 * i, 36.0],
                [37.0 + 0.15 * i, 36.0],
                [37.0 + 0.15 * i, 34.0],
            ]
        ]
        for i in range(20)
    ]
    comb = {**vol(T4), "geometry": {"type": "MultiPolygon", "coordinates": strips}}
    comb.pop("radius_m", None)
    head = svc.entries_after(M, 0)[-1]["seq"]
    for attempt in (
        lambda: _notify(svc, "IL", comb),
        lambda: svc.preview_notice(mechanism_id=M, actor="IL", kind="uav_patrol", volumes=[comb]),
    ):
        with pytest.raises(InvalidInput) as e:
            attempt()
        assert e.value.field == "geometry" and "reach" in e.value.message and "conflicts-only" in e.value.message
    assert svc.entries_after(M, head) == []
    round_near_cap = vol(T4, radius_m=56_000)  # 9,852 km², reaching 13,420 of the 13,553 km² allowed
    assert _notify(svc, "IL", round_near_cap).activity.id == "IL-0001"
