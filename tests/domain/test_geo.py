"""Geodesy: frame ground distances against pyproj's geodesics, and footprint validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import Point
from support.builders import point, square

from deconflict.errors import InvalidInput
from deconflict.geo import (
    MAX_RADIUS_M,
    WGS84,
    Footprint,
    Frame,
    build_footprints,
    circle_extents,
    circle_ring,
    clear_of_antimeridian,
    draft_footprint,
    footprint_bounds,
    parse_footprint,
)

SYRIA = (35.7, 32.3, 42.4, 37.3)
"""(min lon, min lat, max lon, max lat) of the Syria theatre, degrees."""
REQUIRED_REL = 1e-3
"""The issue's requirement: ground distances within 0.1 % ..."""
REQUIRED_ABS_M = 10.0
"""... or 10 m, whichever is larger."""
TIGHT_REL = 1e-4
"""What the frame actually achieves over a theatre (observed ~1e-6); catches regressions early."""
CHORD_M = 0.5
"""Allowance for densified polygon edges (0.1° chords sag a few centimetres in the frame)."""


def geod_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance on WGS84, metres."""
    return float(WGS84.inv(lon1, lat1, lon2, lat2)[2])


def frame_point(frame: Frame, lon: float, lat: float) -> Point:
    x, y = frame.to_xy(lon, lat)
    return Point(float(x), float(y))


def frame_distance_points(frame: Frame, a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(frame.ground_distance(frame_point(frame, *a), 0.0, frame_point(frame, *b), 0.0)[0])


def random_pairs(bounds: tuple[float, float, float, float], n: int, seed: int) -> list[tuple[float, ...]]:
    """(lon1, lat1, lon2, lat2, distance) with the start inside ``bounds`` and 10 m..300 km at a random azimuth."""
    rng = np.random.default_rng(seed)
    lon1 = rng.uniform(bounds[0], bounds[2], n)
    lat1 = rng.uniform(bounds[1], bounds[3], n)
    dist = 10.0 ** rng.uniform(1.0, math.log10(300_000.0), n)
    az = rng.uniform(-180.0, 180.0, n)
    lon2, lat2, _ = WGS84.fwd(lon1, lat1, az, dist)
    return list(zip(lon1, lat1, lon2, lat2, dist, strict=True))


# --- frame accuracy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "seed"),
    [
        pytest.param(SYRIA, 1, id="syria"),
        pytest.param((30.0, 25.0, 50.0, 40.0), 2, id="levant-20x15deg"),
        pytest.param((-80.0, -50.0, -60.0, -35.0), 3, id="patagonia-20x15deg"),
        pytest.param((0.0, 55.0, 20.0, 70.0), 4, id="scandinavia-20x15deg"),
    ],
)
def test_point_to_point_matches_geodesic(bounds: tuple[float, float, float, float], seed: int) -> None:
    frame = Frame.for_bounds(bounds)
    for lon1, lat1, lon2, lat2, dist in random_pairs(bounds, 400, seed):
        got = frame_distance_points(frame, (lon1, lat1), (lon2, lat2))
        want = geod_m(lon1, lat1, lon2, lat2)
        assert want == pytest.approx(dist, rel=1e-9)
        err = abs(got - want)
        assert err <= max(REQUIRED_REL * want, REQUIRED_ABS_M), (lon1, lat1, lon2, lat2, got, want)
        assert err <= TIGHT_REL * want + 0.01, (lon1, lat1, lon2, lat2, got, want)


@pytest.mark.parametrize(
    "bounds",
    [
        pytest.param((30.0, 25.0, 50.0, 40.0), id="levant-20x15deg"),
        pytest.param((0.0, 40.0, 20.0, 55.0), id="europe-20x15deg"),
    ],
)
def test_long_distances_across_a_large_frame_within_requirement(bounds: tuple[float, float, float, float]) -> None:
    """Pairs anywhere in a 20°×15° box (up to ~2,500 km apart) stay within 0.1 %."""
    frame = Frame.for_bounds(bounds)
    rng = np.random.default_rng(11)
    for _ in range(400):
        lon1, lon2 = rng.uniform(bounds[0], bounds[2], 2)
        lat1, lat2 = rng.uniform(bounds[1], bounds[3], 2)
        got = frame_distance_points(frame, (lon1, lat1), (lon2, lat2))
        want = geod_m(lon1, lat1, lon2, lat2)
        assert abs(got - want) <= max(REQUIRED_REL * want, REQUIRED_ABS_M), (lon1, lat1, lon2, lat2)
        assert abs(got - want) <= TIGHT_REL * want + 0.01, (lon1, lat1, lon2, lat2)


def test_frame_covers_its_bounds() -> None:
    frame = Frame.for_bounds(SYRIA)
    assert frame.lon0 == pytest.approx((35.7 + 42.4) / 2)
    assert frame.lat0 == pytest.approx((32.3 + 37.3) / 2)
    corner = geod_m(frame.lon0, frame.lat0, 42.4, 37.3)
    assert frame.radius_m >= corner - 1.0
    # secant: scale below 1 at the centre, above 1 at the edge of the covered radius
    assert float(frame.scale(0.0, 0.0)) < 1.0
    assert float(frame.scale(frame.radius_m, 0.0)) > 1.0


def test_round_trip_to_xy_and_back() -> None:
    frame = Frame.for_bounds(SYRIA)
    lon = np.array([35.9486, 37.6298, 38.3169, 36.7114])
    lat = np.array([35.4012, 34.5226, 34.5574, 35.1183])
    back_lon, back_lat = frame.to_lonlat(*frame.to_xy(lon, lat))
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)


@pytest.mark.parametrize("radius_m", [50.0, 1_000.0, 25_000.0, 150_000.0])
def test_circle_to_point_is_centre_distance_minus_radius(radius_m: float) -> None:
    frame = Frame.for_bounds(SYRIA)
    rng = np.random.default_rng(int(radius_m))
    for _ in range(100):
        clon, clat = rng.uniform(36.5, 41.5), rng.uniform(33.0, 36.5)
        az = rng.uniform(-180.0, 180.0)
        gap = 10.0 ** rng.uniform(0.0, math.log10(200_000.0))
        plon, plat, _ = WGS84.fwd(clon, clat, az, radius_m + gap)
        want = geod_m(clon, clat, float(plon), float(plat)) - radius_m
        got = float(
            frame.ground_distance(frame_point(frame, clon, clat), radius_m, frame_point(frame, plon, plat), 0.0)[0]
        )
        assert abs(got - want) <= max(REQUIRED_REL * want, REQUIRED_ABS_M)
        assert abs(got - want) <= TIGHT_REL * (want + radius_m) + 0.01, (clon, clat, az, gap, got, want)


def _nearest_on_meridian_m(plon: float, plat: float, lon0: float, lat_a: float, lat_b: float) -> float:
    """Geodesic distance from a point to the meridian segment lon0, lat_a..lat_b: dense sampling, refined."""
    lats = np.linspace(lat_a, lat_b, 4001)
    best = math.inf
    for _ in range(3):
        n = len(lats)
        _, _, d = WGS84.inv(np.full(n, plon), np.full(n, plat), np.full(n, lon0), lats)
        k = int(np.argmin(d))
        best = min(best, float(d[k]))
        lats = np.linspace(lats[max(k - 1, 0)], lats[min(k + 1, n - 1)], 401)
    return best


def test_polygon_to_point_with_a_meridian_edge() -> None:
    """The east edge of each rectangle is a meridian segment; points lie east of it, beside or beyond its ends."""
    frame = Frame.for_bounds(SYRIA)
    rng = np.random.default_rng(5)
    for _ in range(150):
        lon0, lat0 = rng.uniform(36.5, 41.0), rng.uniform(32.5, 36.0)
        height, width = rng.uniform(0.05, 1.0), rng.uniform(0.05, 0.5)
        fp = parse_footprint(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lon0 - width, lat0],
                        [lon0, lat0],
                        [lon0, lat0 + height],
                        [lon0 - width, lat0 + height],
                        [lon0 - width, lat0],
                    ]
                ],
            }
        )
        plat = float(rng.uniform(lat0 - 0.3, lat0 + height + 0.3))
        plon = float(WGS84.fwd(lon0, plat, 90.0, 10.0 ** rng.uniform(1.0, 5.3))[0])
        want = _nearest_on_meridian_m(plon, plat, lon0, lat0, lat0 + height)
        got = float(frame.ground_distance(frame.project(fp.geometry), 0.0, frame_point(frame, plon, plat), 0.0)[0])
        assert abs(got - want) <= max(REQUIRED_REL * want, REQUIRED_ABS_M), (lon0, lat0, height, plon, plat)
        assert abs(got - want) <= TIGHT_REL * want + CHORD_M, (lon0, lat0, height, plon, plat, got, want)


def _distance(frame: Frame, a: Footprint, b: Footprint) -> float:
    ga, gb = frame.project(a.geometry), frame.project(b.geometry)
    return float(frame.ground_distance(ga, a.radius_m, gb, b.radius_m)[0])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param((square(38.0, 34.0, 0.5), None), (square(38.5, 34.0, 0.5), None), id="polygons-sharing-an-edge"),
        pytest.param((square(38.0, 34.0, 0.5), None), (square(38.5, 34.5, 0.5), None), id="polygons-sharing-a-corner"),
        pytest.param((square(38.0, 34.0, 0.5), None), (square(38.2, 34.2, 0.5), None), id="polygons-overlapping"),
        pytest.param((square(38.0, 34.0, 1.0), None), (square(38.2, 34.2, 0.1), None), id="polygon-inside-polygon"),
        pytest.param((square(38.0, 34.0, 0.5), None), (point(38.25, 34.25), 1_000.0), id="circle-inside-polygon"),
        pytest.param((square(38.0, 34.0, 0.5), None), (point(38.6, 34.25), 20_000.0), id="circle-over-polygon-edge"),
        pytest.param((point(38.0, 34.0), 5_000.0), (point(38.0, 34.0), 100.0), id="concentric-circles"),
        pytest.param((point(38.0, 34.0), 10_000.0), (point(38.15, 34.0), 10_000.0), id="overlapping-circles"),
    ],
)
def test_touching_or_overlapping_is_exactly_zero(a: tuple, b: tuple) -> None:
    frame = Frame.for_bounds(SYRIA)
    fa, fb = parse_footprint(*a), parse_footprint(*b)
    assert _distance(frame, fa, fb) == 0.0
    assert _distance(frame, fb, fa) == 0.0


def test_ground_distance_is_vectorised_and_symmetric() -> None:
    frame = Frame.for_bounds(SYRIA)
    centre = parse_footprint(point(38.0, 34.0), 2_000.0)
    others = [parse_footprint(point(38.0 + 0.1 * k, 34.0), 1_000.0) for k in range(1, 6)]
    geoms, radii = frame.project_footprints(others)
    many = frame.ground_distance(frame.project(centre.geometry), centre.radius_m, geoms, radii)
    assert many.shape == (5,)
    for k, other in enumerate(others):
        want = geod_m(38.0, 34.0, 38.0 + 0.1 * (k + 1), 34.0) - 3_000.0
        assert many[k] == pytest.approx(want, rel=TIGHT_REL)
        assert _distance(frame, other, centre) == pytest.approx(many[k], rel=1e-12)
    assert np.all(np.diff(many) > 0)


# --- footprint validation ------------------------------------------------------------------


def _poly(*ring: list[float]) -> dict:
    return {"type": "Polygon", "coordinates": [list(ring)]}


BAD_FOOTPRINTS = [
    pytest.param(_poly([38, 34], [39, 34], [39, 35], [38, 35]), None, "not closed", id="ring-not-closed"),
    pytest.param(
        _poly([38, 34], [39, 35], [39, 34], [38, 35], [38, 34]), None, "cross", id="self-intersecting-bow-tie"
    ),
    pytest.param({"type": "Polygon", "coordinates": [[]]}, None, "empty", id="empty-ring"),
    pytest.param({"type": "Polygon", "coordinates": []}, None, "ring", id="no-rings"),
    pytest.param(_poly([38, 34], [39, 34], [38, 34]), None, "4 positions", id="fewer-than-4-positions"),
    pytest.param(_poly([38, 34], [39, 34], [39, 95], [38, 34]), None, "latitude", id="latitude-out-of-range"),
    pytest.param(_poly([38, 34], [181, 34], [181, 35], [38, 34]), None, "longitude", id="longitude-out-of-range"),
    pytest.param(
        _poly([179, 0], [-179, 0], [-179, 1], [179, 1], [179, 0]), None, "antimeridian", id="polygon-over-antimeridian"
    ),
    pytest.param(point(179.9, 10.0), 50_000.0, "antimeridian", id="circle-over-antimeridian"),
    pytest.param(point(38.0, 89.5), 100_000.0, "pole", id="circle-over-pole"),
    pytest.param(point(38.0, 34.0), 0, "more than 0", id="radius-zero"),
    pytest.param(point(38.0, 34.0), -5.0, "more than 0", id="radius-negative"),
    pytest.param(point(38.0, 34.0), MAX_RADIUS_M + 1, "500 km", id="radius-over-500-km"),
    pytest.param(point(38.0, 34.0), "10", "number", id="radius-not-a-number"),
    pytest.param(point(38.0, 34.0), True, "number", id="radius-boolean"),
    pytest.param(_poly([38, 34], ["39", 34], [39, 35], [38, 34]), None, "number", id="coordinate-not-a-number"),
    pytest.param(point(float("nan"), 34.0), 1_000.0, "number", id="coordinate-nan"),
    pytest.param({"type": "LineString", "coordinates": [[38, 34], [39, 35]]}, None, "LineString", id="unknown-type"),
    pytest.param({"type": "Point", "coordinates": [38.0, 34.0]}, None, "radius_m", id="point-without-radius"),
    pytest.param(_poly([38, 34], [39, 34], [39, 35], [38, 34]), 1_000.0, "radius", id="polygon-with-radius"),
    pytest.param({"type": "MultiPolygon", "coordinates": []}, None, "MultiPolygon", id="empty-multipolygon"),
    pytest.param([38.0, 34.0], None, "geometry", id="not-an-object"),
    pytest.param({"type": "Point", "coordinates": [38.0]}, 1_000.0, "position", id="short-position"),
]


@pytest.mark.parametrize(("geometry", "radius_m", "key"), BAD_FOOTPRINTS)
def test_parse_footprint_rejects(geometry: object, radius_m: object, key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_footprint(geometry, radius_m)
    assert key in caught.value.message


def test_error_names_where_it_happened() -> None:
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[38, 34], [39, 34], [39, 35], [38, 34]]],
            [[[40, 34], [41, 34], [41, 35], [40, 35]]],
        ],
    }
    with pytest.raises(InvalidInput) as caught:
        parse_footprint(geometry, where="volume 'v1' geometry")
    assert caught.value.message.startswith("volume 'v1' geometry.coordinates[1][0]")
    assert "not closed" in caught.value.message


@pytest.mark.parametrize(
    ("geometry", "radius_m", "is_circle"),
    [
        pytest.param(_poly([38, 34], [39, 34], [39, 35], [38, 34]), None, False, id="polygon"),
        pytest.param(_poly([38, 34], [39, 34], [39, 35], [38, 34]), 0, False, id="polygon-radius-0"),
        pytest.param(
            {
                "type": "Polygon",
                "coordinates": [
                    [[38, 34], [40, 34], [40, 36], [38, 36], [38, 34]],
                    [[38.5, 34.5], [39, 34.5], [39, 35], [38.5, 34.5]],
                ],
            },
            None,
            False,
            id="polygon-with-hole",
        ),
        pytest.param(
            {
                "type": "MultiPolygon",
                "coordinates": [[[[38, 34], [39, 34], [39, 35], [38, 34]]], [[[40, 34], [41, 34], [41, 35], [40, 34]]]],
            },
            None,
            False,
            id="multipolygon",
        ),
        pytest.param(point(38.0, 34.0), MAX_RADIUS_M, True, id="circle-500km"),
        pytest.param(point(38.0, 34.0), 1, True, id="circle-1m"),
        pytest.param(_poly([179, 0], [180, 0], [180, 1], [179, 0]), None, False, id="polygon-up-to-180"),
        pytest.param({"type": "Point", "coordinates": [38.0, 34.0, 250.0]}, 1_000.0, True, id="3d-position"),
    ],
)
def test_parse_footprint_accepts(geometry: dict, radius_m: object, is_circle: bool) -> None:
    fp = parse_footprint(geometry, radius_m)
    assert fp.is_circle is is_circle
    lon_min, lat_min, lon_max, lat_max = fp.bounds()
    assert lon_min < lon_max and lat_min < lat_max


def test_circle_bounds_cover_the_geodesic_circle() -> None:
    fp = parse_footprint(point(38.0, 34.0), 100_000.0)
    ring = circle_ring(38.0, 34.0, 100_000.0, segments=3600)
    lon_min, lat_min, lon_max, lat_max = fp.bounds()
    assert lon_min <= ring[:, 0].min() and ring[:, 0].max() <= lon_max
    assert lat_min <= ring[:, 1].min() and ring[:, 1].max() <= lat_max
    # and not grossly larger (within 1 km of the circle)
    assert lat_max - ring[:, 1].max() < 0.01


# Circles are checked and bounded by their true extent, not by a 64-vertex ring (``circle_ring``),
# which misses a crossing between its vertices and wraps round the globe near 180°.


def _circle_just_over_antimeridian() -> tuple[float, float, float]:
    """(lon, lat, radius_m) of a circle whose true eastmost point is ~230 m past 180°."""
    lat, radius_m = 35.0, 500_000.0
    east = float(circle_ring(0.0, lat, radius_m, segments=36_000)[:, 0].max())
    return round(180.0 + 0.0025 - east, 6), lat, radius_m


def test_circle_just_over_antimeridian_really_crosses() -> None:
    """Precondition of the test below, checked on its own so that test cannot pass by accident."""
    lon, lat, radius_m = _circle_just_over_antimeridian()
    lons = circle_ring(lon, lat, radius_m, segments=36_000)[:, 0]
    assert np.any(np.abs(np.diff(lons)) > 180.0)


def test_circle_crossing_antimeridian_between_ring_vertices_is_rejected() -> None:
    # None of 64 vertices on the ring crosses 180°; the true eastmost point does.
    lon, lat, radius_m = _circle_just_over_antimeridian()
    with pytest.raises(InvalidInput, match="antimeridian"):
        parse_footprint(point(lon, lat), radius_m)


def test_bounds_of_circle_near_antimeridian_stay_local() -> None:
    # Accepted (its edge is ~5 m short of 180°); a ring drawn at 1.001 × radius would wrap past 180°
    # and yield (-179.9995, ..., 179.998, ...).
    radius_m = geod_m(179.5, 0.0, 179.99995, 0.0)
    fp = parse_footprint(point(179.5, 0.0), radius_m)
    lon_min, _, lon_max, _ = fp.bounds()
    assert lon_max - lon_min < 2.0


@pytest.mark.parametrize(
    ("lon", "lat", "radius_m"),
    [
        pytest.param(38.0, 34.0, 100_000.0, id="syria-100km"),
        pytest.param(-70.0, -33.5, 500_000.0, id="chile-500km"),
        pytest.param(7.5, 75.0, 400_000.0, id="arctic-400km"),
        pytest.param(-179.5, -60.0, 30_000.0, id="near-minus-180"),
        pytest.param(0.0, 0.0, 1.0, id="equator-1m"),
        pytest.param(120.0, 45.0, 12_345.0, id="asia-12km"),
    ],
)
def test_circle_extents_match_a_dense_ring(lon: float, lat: float, radius_m: float) -> None:
    """Within a millimetre of the extremes of a 36,000-vertex ring."""
    ring = circle_ring(lon, lat, radius_m, segments=36_000)
    lons = lon + (ring[:, 0] - lon + 180.0) % 360.0 - 180.0
    west, south, east, north = circle_extents(lon, lat, radius_m)[0]
    m_per_deg_lon = 111_320.0 * math.cos(math.radians(abs(lat) + math.degrees(radius_m / 6.37e6)))
    assert -1e-3 < (lons.min() - west) * m_per_deg_lon < 1e-3
    assert -1e-3 < (east - lons.max()) * m_per_deg_lon < 1e-3
    assert -1e-3 < (ring[:, 1].min() - south) * 110_000.0 < 1e-3
    assert -1e-3 < (north - ring[:, 1].max()) * 110_000.0 < 1e-3


def test_footprint_bounds_of_many_equal_each_footprints_bounds() -> None:
    footprints = [
        parse_footprint(point(38.0, 34.0), 10_000.0),
        parse_footprint(square(38.0, 34.0, 0.5)),
        parse_footprint(point(179.5, 0.0), geod_m(179.5, 0.0, 179.99995, 0.0)),
        parse_footprint(point(-20.0, 88.0), 200_000.0),
        parse_footprint({"type": "MultiPolygon", "coordinates": [square(1, 1, 1)["coordinates"]]}),
    ]
    many = footprint_bounds(footprints)
    assert many.shape == (5, 4)
    for row, fp in zip(many.tolist(), footprints, strict=True):
        assert tuple(row) == fp.bounds()
    assert np.all(many[:, [0, 2]] >= -180.0) and np.all(many[:, [0, 2]] <= 180.0)
    assert np.all(many[:, [1, 3]] >= -90.0) and np.all(many[:, [1, 3]] <= 90.0)


def test_a_circle_said_clear_of_the_antimeridian_is_so_by_its_true_extent() -> None:
    """The quick bound never clears a circle whose true extent reaches ±180° or a pole, and clears the
    circles of an ordinary theatre (it spares them the geodesic extent)."""
    rng = np.random.default_rng(7)
    n = 20_000
    lon = np.concatenate([rng.uniform(-180, 180, n), rng.choice([-1, 1], n) * rng.uniform(170, 180, n)])
    lat = np.concatenate([rng.uniform(-89, 89, n), rng.choice([-1, 1], n) * rng.uniform(60, 89.5, n)])
    r = np.concatenate([10 ** rng.uniform(0, math.log10(MAX_RADIUS_M), n), rng.uniform(1e4, MAX_RADIUS_M, n)])
    keep = np.abs(lat) + np.degrees(r / 6378137.0) < 90.0  # as build_footprints asks: short of a pole
    lon, lat, r = lon[keep], lat[keep], r[keep]
    clear = clear_of_antimeridian(lon, lat, r)
    ext = circle_extents(lon[clear], lat[clear], r[clear])
    assert np.all(ext[:, 0] > -180.0) and np.all(ext[:, 2] < 180.0)
    assert np.all(np.abs(ext[:, [1, 3]]) < 90.0)
    # tight enough to matter: most circles whose true extent stays half a degree clear of ±180° are cleared
    ext_all = circle_extents(lon, lat, r)
    margin = np.minimum(ext_all[:, 0] + 180.0, 180.0 - ext_all[:, 2])
    assert clear[margin > 0.5].mean() > 0.5
    assert clear_of_antimeridian(np.full(1000, 38.0), rng.uniform(32, 37, 1000), rng.uniform(1, 50_000, 1000)).all()
    assert not clear_of_antimeridian([179.9], [0.0], [20_000.0])[0]
    assert not clear_of_antimeridian([0.0], [89.95], [100.0])[0]


@pytest.mark.parametrize("lat", [0.0, 30.0, 60.0, 75.0, 80.0, 84.0])
@pytest.mark.parametrize("radius_m", [1_000.0, 50_000.0, 200_000.0, MAX_RADIUS_M])
def test_a_circle_whose_true_edge_just_passes_180_is_never_cleared(lat: float, radius_m: float) -> None:
    """Placed so that its true east (or west) edge lies a millimetre's worth past ±180°: the bound must see it
    (a bound that took the cosine at the centre's latitude, not at the circle's widest, would clear some)."""
    if abs(lat) + math.degrees(radius_m / 6378137.0) >= 89.0:
        pytest.skip("reaches the pole's degree: never cleared anyway")
    west, _, east, _ = circle_extents(0.0, lat, radius_m)[0]
    past = 1e-8
    for lon in (180.0 - east + past, -180.0 - west - past):
        assert circle_extents(lon, lat, radius_m)[0][2] > 180.0 or circle_extents(lon, lat, radius_m)[0][0] < -180.0
        assert not clear_of_antimeridian([lon], [lat], [radius_m])[0], (lon, lat, radius_m)


def test_build_footprints_gives_each_draft_its_footprint_or_error() -> None:
    drafts = [
        draft_footprint(point(38.0, 34.0), 1_000.0, where="a"),
        draft_footprint(_poly([38, 34], [39, 35], [39, 34], [38, 35], [38, 34]), where="b"),
        draft_footprint(point(179.99, 10.0), 50_000.0, where="c"),
        draft_footprint(square(38.0, 34.0, 0.5), where="d"),
        draft_footprint(
            {
                "type": "Polygon",
                "coordinates": [square(38.0, 34.0, 1.0)["coordinates"][0], square(38.2, 34.2, 0.1)["coordinates"][0]],
            },
            where="e",
        ),
        draft_footprint(
            {"type": "MultiPolygon", "coordinates": [square(1, 1, 1)["coordinates"], square(3, 1, 1)["coordinates"]]},
            where="f",
        ),
    ]
    a, b, c, d, e, f = build_footprints(drafts)
    assert isinstance(a, Footprint) and a.is_circle
    assert isinstance(b, InvalidInput) and b.message.startswith("b: ") and "cross" in b.message
    assert isinstance(c, InvalidInput) and c.message.startswith("c: ") and "antimeridian" in c.message
    assert isinstance(d, Footprint) and d.geometry.geom_type == "Polygon"
    assert isinstance(e, Footprint) and len(e.geometry.interiors) == 1
    assert isinstance(f, Footprint) and f.geometry.geom_type == "MultiPolygon" and len(f.geometry.geoms) == 2


def test_frame_pipeline_is_the_epsg_4326_projection() -> None:
    """The frame's fast PROJ pipeline is the same projection as the one defined from EPSG:4326."""
    from pyproj import Transformer

    frame = Frame.for_bounds((35.7, 32.3, 42.4, 37.3))
    reference = Transformer.from_crs("EPSG:4326", frame.proj, always_xy=True)
    lon, lat = np.random.default_rng(0).uniform([35, 32], [43, 38], (500, 2)).T
    np.testing.assert_allclose(frame.to_xy(lon, lat), reference.transform(lon, lat), atol=1e-6)
    np.testing.assert_allclose(frame.to_lonlat(*frame.to_xy(lon, lat)), (lon, lat), atol=1e-9)
