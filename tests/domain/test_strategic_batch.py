"""``deconflict check`` at density: the streamed blocks and their document against the whole table and brute force,
and the numpy distances against GEOS bit for bit."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from support.builders import CENTRAL_SYRIA, random_footprint

from deconflict import detect_batch
from deconflict.detect import brute_force_conflicts, find_conflict_table
from deconflict.detect_batch import conflict_blocks, format_centi, instants, write_conflict_blocks
from deconflict.formats.geojson import write_conflicts
from deconflict.geo import Frame, parse_footprint
from deconflict.model import Volume
from deconflict.pair_distance import Shapes, pair_distances

T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
DENSE_BOX = (37.5, 34.0, 38.1, 34.5)
"""About 55 km by 55 km: with windows inside three hours, most pairs are near each other."""


def dense_volumes(n: int, seed: int) -> list[Volume]:
    """n volumes crowded in DENSE_BOX: circles and star polygons, one with a hole, one multipolygon, windows of
    15 min to 2 h (some unbounded, some with fractions of a second), ids in no particular order (one not ASCII)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        footprint = random_footprint(rng, DENSE_BOX, max_radius_m=8_000.0, max_reach_m=8_000.0)
        start = T0 + timedelta(seconds=float(rng.integers(0, 3 * 3600)))
        end = start + timedelta(seconds=float(rng.integers(900, 7200)))
        if k % 97 == 0:
            start = start + timedelta(microseconds=250_000)
        if k % 211 == 5:
            start, end = None, None  # type: ignore[assignment]
        floor = float(rng.integers(0, 8000))
        vid = f"v{int(rng.integers(0, 10**9)):09d}-{k}" + ("é" if k == 7 else "")
        party = ("TR", "IL", "RU")[int(rng.integers(3))]
        out.append(Volume(vid, footprint, floor, floor + float(rng.integers(100, 3000)), start, end, party=party))
    lon, lat = (DENSE_BOX[0] + DENSE_BOX[2]) / 2, (DENSE_BOX[1] + DENSE_BOX[3]) / 2
    shell = [[lon - 0.05, lat - 0.05], [lon + 0.05, lat - 0.05], [lon + 0.05, lat + 0.05], [lon - 0.05, lat + 0.05]]
    hole = [[lon - 0.02, lat - 0.02], [lon - 0.02, lat + 0.02], [lon + 0.02, lat + 0.02], [lon + 0.02, lat - 0.02]]
    holed = parse_footprint({"type": "Polygon", "coordinates": [shell + shell[:1], hole + hole[:1]]})
    far = [[x + 0.2, y] for x, y in shell]
    multi = parse_footprint({"type": "MultiPolygon", "coordinates": [[shell + shell[:1]], [far + far[:1]]]})
    out.append(Volume("holed", holed, 0.0, 9000.0, T0, T0 + timedelta(hours=3), party="TR"))
    out.append(Volume("multi", multi, 0.0, 9000.0, T0, T0 + timedelta(hours=3), party="IL"))
    return out


def streamed(volumes: list[Volume], m: float, v: float) -> str:
    blocks = conflict_blocks(volumes, separation_m=m, vertical_separation_m=v)
    assert blocks is not None
    out = io.StringIO()
    write_conflict_blocks(blocks, volumes, out)
    return out.getvalue()


def whole(volumes: list[Volume], m: float, v: float) -> str:
    out = io.StringIO()
    write_conflicts(find_conflict_table(volumes, separation_m=m, vertical_separation_m=v), volumes, out)
    return out.getvalue()


@pytest.mark.parametrize(("m", "v", "block"), [(9_260.0, 304.8, 2048), (0.0, 0.0, 64), (3_000.0, 150.0, 17)])
def test_streamed_document_is_the_whole_tables_byte_for_byte_and_brute_forces_pairs(
    m: float, v: float, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blocks cross many tree rebuilds; the pairs are brute force's, the bytes the whole table's."""
    volumes = dense_volumes(700, seed=int(m) + block)
    monkeypatch.setattr(detect_batch, "BLOCK_VOLUMES", block)
    text = streamed(volumes, m, v)
    assert text == whole(volumes, m, v)
    reference = brute_force_conflicts(volumes, separation_m=m, vertical_separation_m=v)
    assert len(reference) > (500 if m else 50)
    rows = json.loads(text)["conflicts"]
    assert [(r["a"], r["b"]) for r in rows] == [(c.a, c.b) for c in reference]
    assert [r["distance_m"] for r in rows] == [round(c.distance_m, 2) for c in reference]


def test_no_conflict_and_fewer_than_two_volumes_write_the_empty_document() -> None:
    volumes = dense_volumes(3, seed=1)[:1]
    assert conflict_blocks(volumes, separation_m=0.0, vertical_separation_m=0.0) is None  # whole table: trivial
    apart = [
        Volume("a", parse_footprint({"type": "Point", "coordinates": [37.0, 34.0]}, 100.0), 0, 10, T0, None, party="X"),
        Volume("b", parse_footprint({"type": "Point", "coordinates": [38.0, 34.0]}, 100.0), 0, 10, T0, None, party="Y"),
    ]
    assert streamed(apart, 0.0, 0.0) == whole(apart, 0.0, 0.0) == '{"conflicts": []}\n'


def test_an_input_wider_than_one_frame_is_left_to_the_whole_table() -> None:
    far = [
        Volume("a", parse_footprint({"type": "Point", "coordinates": [-60.0, 0.0]}, 100.0), 0, 10, T0, None, party="X"),
        Volume("b", parse_footprint({"type": "Point", "coordinates": [60.0, 0.0]}, 100.0), 0, 10, T0, None, party="Y"),
    ]
    assert conflict_blocks(far, separation_m=0.0, vertical_separation_m=0.0) is None


def test_numpy_distances_are_geos_distances_to_the_bit() -> None:
    """Circle pairs and circle-polygon pairs (both orders, centres inside, on a vertex, on an edge, tiny radii)
    against Frame.ground_distance; polygon pairs, holes and multipolygons go to GEOS anyway."""
    rng = np.random.default_rng(5)
    footprints = [random_footprint(rng, CENTRAL_SYRIA, max_reach_m=40_000.0) for _ in range(300)]
    square = [[38.0, 34.0], [38.3, 34.0], [38.3, 34.3], [38.0, 34.3], [38.0, 34.0]]
    footprints.append(parse_footprint({"type": "Polygon", "coordinates": [square]}))
    for lon, lat, r in ((38.0, 34.0, 500.0), (38.15, 34.0, 500.0), (38.1, 34.1, 1e-4), (38.31, 34.1, 2e-3)):
        footprints.append(parse_footprint({"type": "Point", "coordinates": [lon, lat]}, r))
    frame = Frame.for_bounds(CENTRAL_SYRIA)
    geoms, radii = frame.project_footprints(footprints)
    n = len(footprints)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    got = pair_distances(frame, geoms, radii, i, j, Shapes.of(geoms, radii))
    want = frame.ground_distance(geoms[i], radii[i], geoms[j], radii[j])
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
    circle, polygon = radii > 0, shapely.get_type_id(geoms) == 3
    assert np.sum(circle[i] & polygon[j] & (want > 0)) > 1000  # measured in numpy, not only where 0
    assert np.sum(circle[i] & polygon[j] & (want == 0)) > 100


def test_hundredths_are_written_as_python_rounds_them() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.uniform(0, 10_000, 20_000),
            np.round(rng.uniform(0, 10_000, 2_000), 3),  # many exact halves of a hundredth
            [0.0, -0.0, 0.005, 0.015, 0.125, 1.005, 2.675, 9260.0, 1e9, 3.5e12, 1e17, -1.25, math.inf],
        ]
    )
    texts = format_centi(values, "|")
    assert texts.tolist() == [repr(round(float(x), 2)) + "|" for x in values]


def test_instants_are_written_as_iso_writes_them() -> None:
    from deconflict.clock import iso

    seconds = np.array([T0.timestamp(), T0.timestamp() + 0.25, 0.0, -1e12, 1e12, -3600.0, 253402300799.0])
    want = ["null" if not -1e12 < s < 1e12 else f'"{iso(datetime.fromtimestamp(s, UTC))}"' for s in seconds.tolist()]
    assert instants(seconds, "").tolist() == want
