"""The compiled distance of two polygons of one ring (``volume_kernel._ring_ring`` through ``pair_distances``)
against ``Frame.ground_distance`` (GEOS) bit for bit: apart, one inside the other, crossing, sharing an edge
or a vertex, a millimetre apart, and random stars; what it cannot settle it leaves to GEOS."""

from __future__ import annotations

import numpy as np
import shapely
from support.builders import random_footprint

from deconflict import volume_kernel as kernel
from deconflict.geo import Footprint, Frame
from deconflict.pair_distance import Shapes

BOX = (37.5, 34.0, 38.5, 34.8)


def measure(frame: Frame, polygons: list[shapely.Polygon]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compiled distances, left to GEOS, GEOS's distances) of every ordered pair of the frame polygons."""
    geoms = np.array(polygons, dtype=object)
    radii = np.zeros(len(geoms))
    shapes = Shapes.of(geoms, radii)
    n = len(geoms)
    i, j = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    keep = i != j
    i, j = i[keep], j[keep]
    kden = 4.0 * frame.r_m**2 * frame.k0**2
    dist, geos = kernel.pair_distances(
        i, j, radii, shapes.xy, shapes.ring_start, shapes.ring_len, shapes.coords, frame.k0, kden
    )
    return dist, geos, frame.ground_distance(geoms[i], radii[i], geoms[j], radii[j])


def test_ring_pairs_of_every_kind_agree_with_geos_to_the_bit() -> None:
    frame = Frame.for_bounds(BOX)
    square = shapely.Polygon([(0, 0), (1000, 0), (1000, 1000), (0, 1000)])
    polygons = [
        square,
        shapely.affinity.translate(square, 3000.0, 250.0),  # apart
        shapely.Polygon([(200, 200), (400, 250), (300, 600)]),  # inside the square
        shapely.affinity.translate(square, 500.0, 500.0),  # crossing
        shapely.affinity.translate(square, 1000.0, 0.0),  # sharing an edge
        shapely.affinity.translate(square, 1000.0, 1000.0),  # sharing a vertex
        shapely.affinity.translate(square, 0.0, 1000.0005),  # half a millimetre apart: GEOS decides
        shapely.affinity.translate(square, 0.0, -1000.002),  # two millimetres apart
        shapely.affinity.rotate(square, 45.0, origin=(500, 500)),  # crossing at eight points
        shapely.Polygon([(-500, 400), (-10, 500), (-500, 600)]),  # a vertex 10 m from an edge
        shapely.Polygon([(1500, 500), (1000, 500.0000001), (1500, 600)]),  # a vertex on the edge, nearly
    ]
    dist, geos, want = measure(frame, polygons)
    done = ~geos
    assert dist[done].view(np.int64).tolist() == want[done].view(np.int64).tolist()
    assert done.sum() > 0.7 * len(done) and geos.sum() >= 2  # the near ones go to GEOS, the rest are decided
    assert (want[done] == 0).sum() >= 10 and (want[done] > 0).sum() >= 10


def test_random_stars_agree_with_geos_to_the_bit() -> None:
    rng = np.random.default_rng(4242)
    frame = Frame.for_bounds(BOX)
    small = (37.9, 34.3, 38.1, 34.45)
    footprints = [random_footprint(rng, small, max_reach_m=6_000.0) for _ in range(160)]
    polygons = [f.geometry for f in footprints if not f.is_circle]
    geoms, _ = frame.project_footprints([Footprint(p) for p in polygons])
    dist, geos, want = measure(frame, list(geoms))
    done = ~geos
    assert dist[done].view(np.int64).tolist() == want[done].view(np.int64).tolist()
    assert done.mean() > 0.99 and (want == 0).sum() > 500 and (want > 0).sum() > 500
