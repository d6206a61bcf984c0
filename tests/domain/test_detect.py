"""Strategic detection: find_conflicts against brute force, against plain geodesics, and the contract's edges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import CENTRAL_SYRIA, random_footprint

from deconflict import detect
from deconflict.detect import (
    MAX_FRAME_RADIUS_M,
    VolumeConflict,
    _split_into_frames,
    brute_force_conflicts,
    find_conflict_table,
    find_conflicts,
)
from deconflict.geo import WGS84, parse_footprint
from deconflict.model import Volume

T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
PARTIES = ("TR", "IL", "RU")
BAND_M = 1.0
"""Pairs whose geodesic gap is this close to the separation are left undecided by the independent check."""

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def circle(
    vid: str,
    party: str,
    lon: float,
    lat: float,
    radius_m: float,
    *,
    floor_m: float = 0.0,
    ceiling_m: float = 3_000.0,
    start: datetime | None = T0,
    end: datetime | None = T0 + timedelta(hours=2),
) -> Volume:
    fp = parse_footprint({"type": "Point", "coordinates": [lon, lat]}, radius_m)
    return Volume(vid, fp, floor_m, ceiling_m, start, end, party=party)


def polygon(
    vid: str,
    party: str,
    ring: Sequence[Sequence[float]],
    *,
    floor_m: float = 0.0,
    ceiling_m: float = 3_000.0,
    start: datetime | None = T0,
    end: datetime | None = T0 + timedelta(hours=2),
) -> Volume:
    fp = parse_footprint({"type": "Polygon", "coordinates": [[list(p) for p in ring]]})
    return Volume(vid, fp, floor_m, ceiling_m, start, end, party=party)


def square(lon: float, lat: float, size_deg: float) -> list[list[float]]:
    return [[lon, lat], [lon + size_deg, lat], [lon + size_deg, lat + size_deg], [lon, lat + size_deg], [lon, lat]]


def geod_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(WGS84.inv(lon1, lat1, lon2, lat2)[2])


def pairs(conflicts: Sequence[VolumeConflict]) -> list[tuple[str, str]]:
    return [(c.a, c.b) for c in conflicts]


def check(volumes: Sequence[Volume], m: float = 0.0, v: float = 0.0) -> list[VolumeConflict]:
    return find_conflicts(volumes, separation_m=m, vertical_separation_m=v)


def assert_well_formed(found: Sequence[VolumeConflict], volumes: Sequence[Volume], m: float, v: float) -> None:
    """The output contract, checked against the volumes with plain Python comparisons."""
    by_id = {vol.id: vol for vol in volumes}
    keys = pairs(found)
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    for c in found:
        a, b = by_id[c.a], by_id[c.b]
        assert c.a < c.b
        assert a.party != b.party and (c.party_a, c.party_b) == (a.party, b.party)
        assert overlapping_in_time(a, b) and within_vertical(a, b, v)
        assert 0.0 <= c.distance_m <= m
        gap = max(0.0, max(a.floor_m, b.floor_m) - min(a.ceiling_m, b.ceiling_m))
        assert c.vertical_gap_m == gap


def overlapping_in_time(a: Volume, b: Volume) -> bool:
    lo, hi = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    a0, a1 = a.start or lo, a.end or hi
    b0, b1 = b.start or lo, b.end or hi
    return a0 < b1 and b0 < a1


def within_vertical(a: Volume, b: Volume, v: float) -> bool:
    return a.floor_m < b.ceiling_m + v and b.floor_m < a.ceiling_m + v


# --- random theatres -------------------------------------------------------------------------

BOX = CENTRAL_SYRIA


def random_window(rng: np.random.Generator) -> tuple[datetime | None, datetime | None]:
    """Half-hour steps, so touching windows are common; one in ten unbounded (allowed by `deconflict check`)."""
    if rng.integers(10) == 0:
        return None, None
    start = T0 + timedelta(minutes=30 * int(rng.integers(0, 13)))
    return start, start + timedelta(minutes=30 * int(rng.integers(1, 9)))


def random_band(rng: np.random.Generator) -> tuple[float, float]:
    """250 m steps, so bands exactly V apart are common."""
    floor = 250.0 * int(rng.integers(-2, 13))
    return floor, floor + 250.0 * int(rng.integers(1, 9))


@st.composite
def theatres(
    draw: st.DrawFn, *, circles_only: bool = False, boxes: Sequence[tuple[float, float, float, float]] = (BOX,)
) -> list[Volume]:
    """2-60 volumes of three parties. Hypothesis draws the size and a seed; numpy draws the details
    (one draw per coordinate would make each example ~1,000 draws and the file too slow)."""
    n = draw(st.integers(2, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    names = [f"v{i:02d}" for i in rng.permutation(n)]  # id order differs from input order
    volumes = []
    for name in names:
        footprint = random_footprint(rng, boxes[int(rng.integers(len(boxes)))], circles_only=circles_only)
        start, end = random_window(rng)
        floor, ceiling = random_band(rng)
        volumes.append(Volume(name, footprint, floor, ceiling, start, end, party=PARTIES[int(rng.integers(3))]))
    return volumes


separations = st.one_of(st.floats(0.0, 30_000.0), st.sampled_from([0.0, 5_000.0, 9_260.0]))
vertical_separations = st.one_of(st.floats(0.0, 1_000.0), st.sampled_from([0.0, 250.0, 300.0, 500.0]))


@PROPERTY_SETTINGS
@given(volumes=theatres(), m=separations, v=vertical_separations)
def test_index_finds_exactly_what_brute_force_finds(volumes: list[Volume], m: float, v: float) -> None:
    found = find_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    reference = brute_force_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    assert pairs(found) == pairs(reference)
    for got, want in zip(found, reference, strict=True):
        assert abs(got.distance_m - want.distance_m) <= 1e-6
        assert replace(got, distance_m=0.0) == replace(want, distance_m=0.0)
    assert_well_formed(found, volumes, m, v)


@PROPERTY_SETTINGS
@given(volumes=theatres(), m=separations, v=vertical_separations, chunk=st.integers(1, 7))
def test_sweep_in_small_chunks_finds_what_brute_force_finds(
    volumes: list[Volume], m: float, v: float, chunk: int
) -> None:
    """The time sweep meets each pair once whatever the chunk size (equal starts, unbounded windows)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detect, "SWEEP_CHUNK", chunk)
        found = find_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    reference = brute_force_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    assert pairs(found) == pairs(reference)
    for got, want in zip(found, reference, strict=True):
        assert got.distance_m == want.distance_m
        assert got == want


def test_conflict_table_rows_are_find_conflicts() -> None:
    volumes = [v for vs in REGIONS.values() for v in vs]
    table = find_conflict_table(volumes, separation_m=60_000.0, vertical_separation_m=1_000.0)
    assert len(table) > 0
    assert table.conflicts(volumes) == find_conflicts(volumes, separation_m=60_000.0, vertical_separation_m=1_000.0)
    ids = [(volumes[a].id, volumes[b].id) for a, b in zip(table.a, table.b, strict=True)]
    assert ids == sorted(ids) and all(a < b for a, b in ids)


def geodesic_truth(volumes: Sequence[Volume], m: float, v: float) -> tuple[set, set, dict]:
    """For circles only, without any frame: (pairs that must conflict, pairs that must not, gap by pair)."""
    must, must_not, gaps = set(), set(), {}
    for i, a in enumerate(volumes):
        for b in volumes[i + 1 :]:
            key = tuple(sorted((a.id, b.id)))
            if a.party == b.party or not overlapping_in_time(a, b) or not within_vertical(a, b, v):
                must_not.add(key)
                continue
            ga, gb = a.footprint.geometry, b.footprint.geometry
            gap = geod_m(ga.x, ga.y, gb.x, gb.y) - a.footprint.radius_m - b.footprint.radius_m
            gaps[key] = max(gap, 0.0)
            if gap <= m - BAND_M:
                must.add(key)
            elif gap > m + BAND_M:
                must_not.add(key)
    return must, must_not, gaps


def assert_matches_geodesics(found: Sequence[VolumeConflict], volumes: Sequence[Volume], m: float, v: float) -> None:
    must, must_not, gaps = geodesic_truth(volumes, m, v)
    got = set(pairs(found))
    assert must <= got, sorted(must - got)
    assert not (got & must_not), sorted(got & must_not)
    for c in found:
        want = gaps[(c.a, c.b)]
        assert abs(c.distance_m - want) <= max(BAND_M, 1e-4 * want), (c, want)


@PROPERTY_SETTINGS
@given(volumes=theatres(circles_only=True), m=separations, v=vertical_separations)
def test_circles_conflict_iff_geodesic_gap_within_separation(volumes: list[Volume], m: float, v: float) -> None:
    found = find_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    assert_matches_geodesics(found, volumes, m, v)
    assert_well_formed(found, volumes, m, v)


WORLD_BOXES = (
    (36.0, 33.0, 39.5, 36.0),  # Syria
    (39.8, 33.8, 40.2, 34.2),  # astride the 40°E cell border
    (-71.5, -34.0, -70.5, -33.0),  # central Chile
    (5.0, 59.8, 10.2, 60.2),  # southern Norway, astride 60°N and 10°E
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(volumes=theatres(circles_only=True, boxes=WORLD_BOXES), m=separations, v=vertical_separations)
def test_world_spread_circles_conflict_iff_geodesic_gap_within_separation(
    volumes: list[Volume], m: float, v: float
) -> None:
    """Several frames (the extent is worldwide), still the same answer as plain geodesics."""
    found = find_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    assert_matches_geodesics(found, volumes, m, v)
    assert_well_formed(found, volumes, m, v)


# --- the contract's interval semantics -------------------------------------------------------

LAT = 34.5
A_LON, B_LON = 38.0, 38.2
"""Two centres on one parallel: their geodesic distance is one call to Geod.inv."""
R_A, R_B = 3_000.0, 2_000.0
GAP_M = geod_m(A_LON, LAT, B_LON, LAT) - R_A - R_B
"""Geodesic gap between the two circles, ~13.3 km."""


def pair(**b_changes: object) -> list[Volume]:
    a = circle("a", "TR", A_LON, LAT, R_A, floor_m=0.0, ceiling_m=1_000.0)
    kwargs: dict = {"floor_m": 0.0, "ceiling_m": 1_000.0} | b_changes
    b = circle("b", "IL", B_LON, LAT, R_B, **kwargs)
    return [a, b]


H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("b_changes", "conflicts"),
    [
        pytest.param({"start": T0 + 2 * H, "end": T0 + 3 * H}, False, id="b-starts-when-a-ends"),
        pytest.param({"start": T0 - H, "end": T0}, False, id="b-ends-when-a-starts"),
        pytest.param(
            {"start": T0 + 2 * H - timedelta(seconds=1), "end": T0 + 3 * H}, True, id="one-second-overlap-after"
        ),
        pytest.param({"start": T0 - H, "end": T0 + timedelta(seconds=1)}, True, id="one-second-overlap-before"),
        pytest.param({"start": T0 + timedelta(minutes=30), "end": T0 + timedelta(minutes=40)}, True, id="b-inside-a"),
        pytest.param({"start": T0 + 3 * H, "end": T0 + 4 * H}, False, id="disjoint"),
        pytest.param({"start": None, "end": None}, True, id="b-unbounded"),
        pytest.param({"start": T0 + 2 * H, "end": None}, False, id="b-open-ended-from-a-end"),
        pytest.param({"start": None, "end": T0}, False, id="b-open-started-until-a-start"),
        pytest.param({"start": None, "end": T0 + timedelta(seconds=1)}, True, id="b-open-started-overlapping"),
    ],
)
def test_time_windows_are_half_open(b_changes: dict, conflicts: bool) -> None:
    volumes = pair(**b_changes)
    found = check(volumes, m=GAP_M + 100.0)
    assert pairs(found) == ([("a", "b")] if conflicts else [])


@pytest.mark.parametrize(
    ("floor_m", "ceiling_m", "v", "conflicts"),
    [
        pytest.param(1_000.0, 2_000.0, 0.0, False, id="b-band-starts-at-a-ceiling"),
        pytest.param(999.5, 2_000.0, 0.0, True, id="b-band-overlaps-half-a-metre"),
        pytest.param(1_300.0, 2_000.0, 300.0, False, id="b-exactly-V-above"),
        pytest.param(1_299.5, 2_000.0, 300.0, True, id="b-slightly-less-than-V-above"),
        pytest.param(-500.0, -300.0, 300.0, False, id="b-exactly-V-below"),
        pytest.param(-500.0, -299.5, 300.0, True, id="b-slightly-less-than-V-below"),
        pytest.param(-500.0, 0.0, 0.0, False, id="b-below-touching"),
        pytest.param(200.0, 300.0, 0.0, True, id="b-inside-a"),
        pytest.param(5_000.0, 6_000.0, 1_000.0, False, id="far-above"),
    ],
)
def test_altitude_bands_within_vertical_separation(floor_m: float, ceiling_m: float, v: float, conflicts: bool) -> None:
    volumes = pair(floor_m=floor_m, ceiling_m=ceiling_m)
    found = check(volumes, m=GAP_M + 100.0, v=v)
    assert pairs(found) == ([("a", "b")] if conflicts else [])
    if found:
        assert found[0].vertical_gap_m == max(0.0, floor_m - 1_000.0, 0.0 - ceiling_m)


def test_same_party_never_conflicts() -> None:
    a = circle("a", "TR", 38.0, 34.5, 5_000.0)
    b = circle("b", "TR", 38.0, 34.5, 5_000.0)
    c = polygon("c", "TR", square(37.9, 34.4, 0.2))
    assert check([a, b, c], m=30_000.0, v=1_000.0) == []
    d = circle("d", "IL", 38.0, 34.5, 1_000.0)
    assert pairs(check([a, b, c, d], m=0.0)) == [("a", "d"), ("b", "d"), ("c", "d")]


@pytest.mark.parametrize(
    ("margin_m", "conflicts"),
    [
        pytest.param(0.05, True, id="5cm-inside-M"),
        pytest.param(-0.05, False, id="5cm-outside-M"),
        pytest.param(10.0, True, id="10m-inside-M"),
        pytest.param(-10.0, False, id="10m-outside-M"),
    ],
)
def test_separation_against_geodesic_gap(margin_m: float, conflicts: bool) -> None:
    found = check(pair(), m=GAP_M + margin_m)
    assert pairs(found) == ([("a", "b")] if conflicts else [])
    if found:
        assert found[0].distance_m == pytest.approx(GAP_M, abs=0.02)


def test_distance_exactly_at_separation_conflicts() -> None:
    """``<= M``: the measured distance itself as M conflicts, the next float below does not."""
    volumes = pair()
    (measured,) = check(volumes, m=100_000.0)
    d = measured.distance_m
    assert pairs(check(volumes, m=d)) == [("a", "b")]
    assert check(volumes, m=float(np.nextafter(d, 0.0))) == []


@pytest.mark.parametrize(
    ("ring_b", "conflicts"),
    [
        pytest.param(square(38.5, 34.0, 0.5), True, id="sharing-an-edge"),
        pytest.param(square(38.5, 34.5, 0.5), True, id="sharing-a-corner"),
        pytest.param(square(38.5001, 34.0, 0.5), False, id="10m-apart"),
    ],
)
def test_touching_footprints_conflict_with_zero_separation(ring_b: list, conflicts: bool) -> None:
    a = polygon("a", "TR", square(38.0, 34.0, 0.5))
    b = polygon("b", "IL", ring_b)
    found = check([a, b], m=0.0)
    assert pairs(found) == ([("a", "b")] if conflicts else [])
    if found:
        assert found[0].distance_m == 0.0


def test_result_carries_overlap_window_and_ids_in_order() -> None:
    z = circle("z", "IL", 38.0, 34.5, 5_000.0, start=T0, end=T0 + 3 * H, floor_m=0.0, ceiling_m=1_000.0)
    a = circle("a", "TR", 38.01, 34.5, 5_000.0, start=T0 + H, end=T0 + 5 * H, floor_m=1_200.0, ceiling_m=2_000.0)
    (c,) = check([z, a], m=0.0, v=500.0)
    assert (c.a, c.b, c.party_a, c.party_b) == ("a", "z", "TR", "IL")
    assert (c.start, c.end) == (T0 + H, T0 + 3 * H)
    assert c.vertical_gap_m == 200.0
    assert c.distance_m == 0.0


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_volumes(n: int) -> None:
    assert check([circle("a", "TR", 38.0, 34.5, 1_000.0)][:n], m=1e6, v=1e6) == []


# --- several frames --------------------------------------------------------------------------


def region(prefix: str, lon: float, lat: float) -> list[Volume]:
    """A small cluster of circles and polygons of three parties around (lon, lat), inside one 10° cell."""
    return [
        circle(f"{prefix}-1", "TR", lon, lat, 5_000.0),
        circle(f"{prefix}-2", "IL", lon + 0.1, lat, 3_000.0),
        circle(f"{prefix}-3", "RU", lon + 0.3, lat + 0.1, 2_000.0),
        polygon(f"{prefix}-4", "IL", square(lon - 0.3, lat - 0.3, 0.2)),
        polygon(f"{prefix}-5", "TR", square(lon - 0.05, lat - 0.2, 0.1), floor_m=4_000.0, ceiling_m=5_000.0),
        circle(f"{prefix}-6", "RU", lon - 0.2, lat + 0.2, 8_000.0, start=T0 + 2 * H, end=T0 + 4 * H),
    ]


REGIONS = {
    "syria": region("syr", 37.5, 34.5),
    "chile": region("chl", -71.0, -33.5),
    "norway": region("nor", 7.5, 59.0),
}


def test_world_spread_uses_several_frames() -> None:
    volumes = [v for vs in REGIONS.values() for v in vs]
    groups = _split_into_frames(volumes, 20_000.0)
    assert len(groups) == 3
    assert all(frame.radius_m <= MAX_FRAME_RADIUS_M for frame, _, _ in groups)
    homes = np.sum([home for _, _, home in groups], axis=0)
    assert np.all(homes == 1)  # every volume has exactly one home cell


@pytest.mark.parametrize(("m", "v"), [(0.0, 0.0), (5_000.0, 0.0), (20_000.0, 1_500.0), (60_000.0, 1_000.0)])
def test_world_spread_equals_each_region_alone(m: float, v: float) -> None:
    volumes = [v for vs in REGIONS.values() for v in vs]
    found = check(volumes, m=m, v=v)
    alone = sorted((c for vs in REGIONS.values() for c in check(vs, m=m, v=v)), key=lambda c: (c.a, c.b))
    assert pairs(found) == pairs(alone)
    assert len(found) > 0
    for got, want in zip(found, alone, strict=True):
        assert got.distance_m == pytest.approx(want.distance_m, rel=1e-9, abs=1e-6)
    assert_well_formed(found, volumes, m, v)


def test_world_spread_order_of_input_does_not_matter() -> None:
    volumes = [v for vs in REGIONS.values() for v in vs]
    forward = check(volumes, m=20_000.0, v=500.0)
    backward = check(volumes[::-1], m=20_000.0, v=500.0)
    assert pairs(forward) == pairs(backward)
    for x, y in zip(forward, backward, strict=True):
        assert x.distance_m == pytest.approx(y.distance_m, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("lon_a", "lat_a", "lon_b", "lat_b"),
    [
        pytest.param(39.99, 34.0, 40.01, 34.0, id="astride-40E"),
        pytest.param(40.01, 34.0, 39.99, 34.0, id="astride-40E-reversed"),
        pytest.param(7.5, 59.99, 7.5, 60.01, id="astride-60N"),
        pytest.param(-70.01, -33.5, -69.99, -33.5, id="astride-70W"),
        pytest.param(-0.01, 0.01, 0.01, -0.01, id="astride-0-0-corner"),
    ],
)
def test_pair_astride_a_cell_border_is_found_once(lon_a: float, lat_a: float, lon_b: float, lat_b: float) -> None:
    r = 500.0
    border = [circle("edge-a", "TR", lon_a, lat_a, r), circle("edge-b", "IL", lon_b, lat_b, r)]
    volumes = [v for vs in REGIONS.values() for v in vs] + border
    m = 5_000.0
    assert len(_split_into_frames(volumes, m)) > 1
    found = check(volumes, m=m)
    edge = [c for c in found if c.a.startswith("edge")]
    assert pairs(edge) == [("edge-a", "edge-b")]
    want = geod_m(lon_a, lat_a, lon_b, lat_b) - 2 * r
    assert edge[0].distance_m == pytest.approx(want, rel=1e-4)
    # and the rest is unchanged by the extra pair
    rest = [c for c in found if not c.a.startswith("edge")]
    assert pairs(rest) == pairs(check([v for vs in REGIONS.values() for v in vs], m=m))


def test_four_parties_around_a_cell_corner_each_pair_once() -> None:
    corner = [
        circle("q1", "TR", 40.02, 30.02, 3_000.0),
        circle("q2", "IL", 39.98, 30.02, 3_000.0),
        circle("q3", "RU", 39.98, 29.98, 3_000.0),
        circle("q4", "US", 40.02, 29.98, 3_000.0),
    ]
    volumes = REGIONS["chile"] + corner
    found = [c for c in check(volumes, m=1_000.0) if c.a.startswith("q")]
    assert pairs(found) == [("q1", "q2"), ("q1", "q3"), ("q1", "q4"), ("q2", "q3"), ("q2", "q4"), ("q3", "q4")]
    assert all(c.distance_m == 0.0 for c in found)


def test_conflict_next_to_a_circle_near_the_antimeridian_is_found() -> None:
    # 'a' is valid (its edge stops ~5 m short of 180°); bounds drawn as a ring at 1.001 × radius would
    # wrap past 180° and report lon -180..180, and detection would then measure in a frame covering the
    # globe and miss 'b', 20 km away.
    radius_m = geod_m(179.5, 0.0, 179.99995, 0.0)
    lon_b = float(WGS84.fwd(179.5, 0.0, 270.0, radius_m + 30_000.0)[0])
    volumes = [circle("a", "TR", 179.5, 0.0, radius_m), circle("b", "IL", lon_b, 0.0, 10_000.0)]
    found = check(volumes, m=25_000.0)
    assert pairs(found) == [("a", "b")]
    assert found[0].distance_m == pytest.approx(20_000.0, abs=1.0)


def test_control_for_the_antimeridian_case_ten_degrees_west() -> None:
    """The same geometry 10° west is found: only the antimeridian makes the difference above."""
    radius_m = geod_m(169.5, 0.0, 169.99995, 0.0)
    lon_b = float(WGS84.fwd(169.5, 0.0, 270.0, radius_m + 30_000.0)[0])
    volumes = [circle("a", "TR", 169.5, 0.0, radius_m), circle("b", "IL", lon_b, 0.0, 10_000.0)]
    found = check(volumes, m=25_000.0)
    assert pairs(found) == [("a", "b")]
    assert found[0].distance_m == pytest.approx(20_000.0, abs=1.0)


def test_large_extent_in_one_frame_is_still_accurate() -> None:
    """Circles ~1,000 km apart (one frame, radius under the split limit) measure within 0.1 %."""
    volumes = [circle("a", "TR", 30.0, 30.0, 10_000.0), circle("b", "IL", 40.0, 35.0, 10_000.0)]
    assert len(_split_into_frames(volumes, 2e6)) == 1
    want = geod_m(30.0, 30.0, 40.0, 35.0) - 20_000.0
    (c,) = check(volumes, m=2e6)
    assert abs(c.distance_m - want) <= 1e-3 * want
    assert math.isclose(c.distance_m, want, rel_tol=1e-4)
