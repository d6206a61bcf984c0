"""VolumeIndex's packed tree at density: buckets of many runs of NODE_SLOTS slots, answers equal to brute force
to the bit (the same distances as Frame.ground_distance)."""

from __future__ import annotations

import numpy as np
from support.builders import random_footprint

from deconflict import volumes
from deconflict.geo import Frame
from deconflict.volumes import VolumeIndex

BOX = (37.5, 34.0, 38.5, 34.8)
T0 = 1_744_185_600.0


def test_crowded_buckets_answer_as_brute_force() -> None:
    rng = np.random.default_rng(17)
    frame = Frame.for_bounds(BOX)
    n = 2500
    footprints = [random_footprint(rng, BOX, max_radius_m=6_000.0, max_reach_m=6_000.0) for _ in range(n)]
    geoms, radii = frame.project_footprints(footprints)
    t0 = T0 + 900.0 * rng.integers(0, 8, n)
    t1 = t0 + rng.choice([600.0, 1800.0, 5400.0, 4e12], n)  # several levels, and unbounded windows
    z0 = 100.0 * rng.integers(0, 50, n)
    z1 = z0 + 100.0 * rng.integers(1, 20, n)
    parties = [("TR", "IL", "RU")[k] for k in rng.integers(0, 3, n).tolist()]
    index = VolumeIndex(frame, capacity=n)
    index.add([f"v{k}" for k in range(n)], parties, geoms, radii, t0, t1, z0, z1)
    index.rebuild()
    assert index._n_tree == n
    runs = np.diff(index._bucket_nodes)
    assert runs.max() > 3 and len(index._node_env) > n // volumes.NODE_SLOTS  # buckets of several runs
    slots = np.array([index.slot(f"v{k}") for k in range(n)])
    hits = 0
    for q in range(0, n, 25):
        for m, v, exclude in ((0.0, 0.0, None), (9_260.0, 304.8, parties[q])):
            got_slots, got_d = index.query_arrays(
                geoms[q], radii[q], t0[q], t1[q], z0[q], z1[q], separation_m=m, vertical_separation_m=v,
                exclude_party=exclude,
            )  # fmt: skip
            ok = (t0 < t1[q]) & (t0[q] < t1) & (z0 < z1[q] + v) & (z0[q] < z1 + v)
            if exclude is not None:
                ok &= np.array([p != exclude for p in parties])
            cand = np.flatnonzero(ok)
            d = frame.ground_distance(geoms[q], radii[q], geoms[cand], radii[cand])
            want = dict(zip(slots[cand[d <= m]].tolist(), d[d <= m].tolist(), strict=True))
            got = dict(zip(got_slots.tolist(), got_d.tolist(), strict=True))
            assert got == want
            hits += len(got)
    assert hits > 2000
