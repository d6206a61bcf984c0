"""VolumeIndex's compiled query (``volume_kernel``): the index tests again with every query compiled, and the
compiled and numpy paths side by side on one index, slot for slot and distance for distance to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from support.builders import random_footprint

from deconflict import volumes
from deconflict.geo import Footprint, Frame
from deconflict.volumes import VolumeIndex

BOX = (37.5, 34.0, 38.5, 34.8)
T0 = 1_744_185_600.0


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every index made in the test queries through the compiled path, whatever its size."""
    monkeypatch.setattr(volumes, "COMPILED_FROM", 0)


@pytest.mark.usefixtures("compiled")
def test_crowded_buckets_compiled() -> None:
    from test_strategic_index import test_crowded_buckets_answer_as_brute_force

    test_crowded_buckets_answer_as_brute_force()


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("batches", [[3, 40, 300, 7, 120, 30], [1] * 20 + [280, 5]])
def test_batches_and_removals_compiled(batches: list[int]) -> None:
    from test_volumes import test_batches_and_removals_match_brute_force

    test_batches_and_removals_match_brute_force(batches, 0.02, 16, True)


def _odd_footprints(rng: np.random.Generator, n: int) -> list[Footprint]:
    """Polygons with a hole, multipolygons and circles under a millimetre (left to GEOS), among the usual."""
    out = []
    for k in range(n):
        f = random_footprint(rng, BOX, max_radius_m=6_000.0, max_reach_m=6_000.0)
        if k % 7 == 0 and not f.is_circle:
            f = Footprint(shapely.Polygon(f.geometry.exterior, [f.geometry.centroid.buffer(0.005).exterior]))
        elif k % 7 == 1 and not f.is_circle:
            g = f.geometry
            f = Footprint(shapely.MultiPolygon([g, shapely.affinity.translate(g, 0.2, 0.0)]))
        elif k % 7 == 2 and f.is_circle:
            f = Footprint(f.geometry, 0.0005)
        out.append(f)
    return out


def test_compiled_and_numpy_agree_to_the_bit() -> None:
    rng = np.random.default_rng(1717)
    frame = Frame.for_bounds(BOX)
    n = 1500
    geoms, radii = frame.project_footprints(_odd_footprints(rng, n))
    t0 = T0 + 900.0 * rng.integers(0, 8, n)
    t1 = t0 + rng.choice([600.0, 1800.0, 5400.0, 4e12], n)
    z0 = 100.0 * rng.integers(0, 50, n)
    z1 = z0 + 100.0 * rng.integers(1, 20, n)
    parties = [("TR", "IL", "RU")[k] for k in rng.integers(0, 3, n).tolist()]
    index = VolumeIndex(frame, capacity=64, delta_share=0.2)
    for lo in range(0, n, 300):  # a tree and a delta
        s = slice(lo, lo + 300)
        index.add([f"v{k}" for k in range(n)][s], parties[s], geoms[s], radii[s], t0[s], t1[s], z0[s], z1[s])
    for k in range(0, n, 11):
        index.remove(f"v{k}")
    assert index._n_tree < index._n
    hits = geos_pairs = 0
    for q in range(0, n, 7):
        for m, v, exclude in ((0.0, 0.0, None), (9_260.0, 304.8, parties[q]), (20_000.0, 0.0, "XX")):
            args = (geoms[q], radii[q], t0[q], t1[q], z0[q], z1[q])
            rules = {"separation_m": m, "vertical_separation_m": v, "exclude_party": exclude}
            index.compiled_from = 10**9
            want_slots, want_d = index.query_arrays(*args, **rules)
            index.compiled_from = 0
            got_slots, got_d = index.query_arrays(*args, **rules)
            assert got_slots.tolist() == want_slots.tolist()
            assert got_d.view(np.int64).tolist() == want_d.view(np.int64).tolist()
            hits += len(got_slots)
            geos_pairs += int(np.sum(index._kinds[got_slots] == volumes.OTHER))
    assert hits > 3000 and geos_pairs > 100
