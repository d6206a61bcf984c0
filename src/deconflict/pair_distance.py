"""Ground distances of many footprint pairs at once, the same values to the bit as ``Frame.ground_distance``.

``Frame.ground_distance`` asks GEOS for the shortest line between two frame geometries
(``shapely.shortest_line``, about 3 µs a pair with the line object it builds) and measures
it with the frame's scale. For the two commonest kinds of pair this module finds the same
shortest line with numpy, following GEOS 3.14's ``DistanceOp`` step by step:

* circle and circle: the line between the two centres;
* circle and a polygon of one ring: the centre inside the ring gives a line of no length
  (the distance is then 0, as GEOS's containment test gives); outside, the first segment
  of the ring (in ring order) at the least ``Distance::pointToSegment`` from the centre,
  and on it ``LineSegment::closestPoint`` — the same floating-point operations in the same
  order, so the same endpoints. Where the centre lies within a rounding error of the ring,
  both answers are 0 once the circle's radius (above 1 mm) is taken off.

Every other pair (polygon and polygon, holes, multipolygons) goes to GEOS as before. The
tests compare the three paths with ``Frame.ground_distance`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from deconflict.geo import Frame

__all__ = ["Shapes", "circle_distances", "pair_distances"]

MIN_NUMPY_RADIUS_M = 1e-3
"""Circles at least this large are measured against one-ring polygons in numpy (see the module docstring)."""


@dataclass(frozen=True)
class Shapes:
    """What numpy needs of frame geometries: circle centres, and the ring of each one-ring polygon.

    ``xy`` holds each circle's centre (NaN for polygons); ``ring_start`` / ``ring_len`` index
    ``coords`` (the closed ring's vertices) for one-ring polygons, ``ring_len`` 0 for the rest.
    """

    xy: np.ndarray
    ring_start: np.ndarray
    ring_len: np.ndarray
    coords: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray, radii: np.ndarray) -> Shapes:
        """Centres and rings of frame geometries (circle centres where ``radii`` > 0)."""
        n = len(radii)
        xy = np.full((n, 2), np.nan)
        circle = radii > 0
        if np.any(circle):
            xy[circle] = shapely.get_coordinates(geoms[circle])
        ring_start = np.zeros(n, dtype=np.int64)
        ring_len = np.zeros(n, dtype=np.int64)
        simple = ~circle
        if np.any(simple):
            simple[simple] = (shapely.get_type_id(geoms[simple]) == 3) & (
                shapely.get_num_interior_rings(geoms[simple]) == 0
            )
        which = np.flatnonzero(simple)
        if len(which) == 0:
            return cls(xy, ring_start, ring_len, np.empty((0, 2)))
        coords, owner = shapely.get_coordinates(geoms[which], return_index=True)
        counts = np.bincount(owner, minlength=len(which))
        ring_len[which] = counts
        ring_start[which] = np.cumsum(counts) - counts
        return cls(xy, ring_start, ring_len, coords)


def circle_distances(
    frame: Frame, xa: np.ndarray, ya: np.ndarray, ra: Any, xb: np.ndarray, yb: np.ndarray, rb: Any
) -> np.ndarray:
    """Ground distance (m) along the frame segments (xa, ya)-(xb, yb), less the radii, as ``Frame.ground_distance``.

    The same arithmetic as ``Frame.ground_distance`` once GEOS has given the shortest line
    (a first endpoint on the first geometry), so the same values to the bit.
    """
    dx, dy = xb - xa, yb - ya
    planar = np.sqrt(dx * dx + dy * dy)
    m = len(planar)
    k = frame.scale(np.concatenate([xa, (xa + xb) / 2, xb]), np.concatenate([ya, (ya + yb) / 2, yb]))
    inv_k = (1.0 / k[:m] + 4.0 / k[m : 2 * m] + 1.0 / k[2 * m :]) / 6.0
    out = planar * inv_k
    distance: np.ndarray = np.maximum(out - ra - rb, 0.0)
    return distance


def _nearest_on_rings(
    px: np.ndarray, py: np.ndarray, start: np.ndarray, length: np.ndarray, coords: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point and closed ring: (inside, x, y of the nearest point on the ring) as GEOS finds it."""
    m = len(px)
    nseg = length - 1
    owner = np.repeat(np.arange(m), nseg)
    first = np.cumsum(nseg) - nseg
    at = start[owner] + (np.arange(len(owner)) - first[owner])
    ax, ay = coords[at, 0], coords[at, 1]
    bx, by = coords[at + 1, 0], coords[at + 1, 1]
    qx, qy = px[owner], py[owner]
    with np.errstate(divide="ignore", invalid="ignore"):
        # even-odd crossings of a ray towards +x (only decides points away from the ring, see the module)
        up = (ay > qy) != (by > qy)
        cross = up & (qx < ax + (qy - ay) * (bx - ax) / (by - ay))
        inside = (np.add.reduceat(cross.astype(np.int64), first) % 2 == 1) if len(owner) else np.zeros(m, bool)
        # Distance::pointToSegment
        ex, ey = bx - ax, by - ay
        len2 = ex * ex + ey * ey
        r = ((qx - ax) * ex + (qy - ay) * ey) / len2
        dxa, dya = qx - ax, qy - ay
        dxb, dyb = qx - bx, qy - by
        da = np.sqrt(dxa * dxa + dya * dya)
        db = np.sqrt(dxb * dxb + dyb * dyb)
        s = ((ay - qy) * ex - (ax - qx) * ey) / len2
        perp = np.abs(s) * np.sqrt(len2)
        same = (ax == bx) & (ay == by)
        dist = np.where(same | (r <= 0.0), da, np.where(r >= 1.0, db, perp))
    # the first segment at the least distance (GEOS keeps a segment only when strictly nearer)
    least = np.minimum.reduceat(dist, first)
    hit = np.flatnonzero(dist == least[owner])
    _, first_hit = np.unique(owner[hit], return_index=True)
    k = hit[first_hit]
    # LineSegment::closestPoint on that segment
    ax, ay, bx, by, qx, qy, ex, ey = ax[k], ay[k], bx[k], by[k], px, py, ex[k], ey[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = ((qx - ax) * ex + (qy - ay) * ey) / (ex * ex + ey * ey)
    at_a = (qx == ax) & (qy == ay)
    at_b = (qx == bx) & (qy == by)
    factor = np.where(at_a | (~at_b & (ax == bx) & (ay == by)), 0.0, np.where(at_b, 1.0, factor))
    between = (factor > 0) & (factor < 1)
    d0 = np.sqrt((ax - qx) * (ax - qx) + (ay - qy) * (ay - qy))
    d1 = np.sqrt((bx - qx) * (bx - qx) + (by - qy) * (by - qy))
    end_x, end_y = np.where(d0 < d1, ax, bx), np.where(d0 < d1, ay, by)
    x = np.where(between, ax + factor * (bx - ax), end_x)
    y = np.where(between, ay + factor * (by - ay), end_y)
    return inside, x, y


def pair_distances(
    frame: Frame, geoms: np.ndarray, radii: np.ndarray, i: np.ndarray, j: np.ndarray, shapes: Shapes | None = None
) -> np.ndarray:
    """``frame.ground_distance(geoms[i], radii[i], geoms[j], radii[j])``, the same values, most pairs in numpy.

    ``shapes`` is :meth:`Shapes.of` the same ``geoms`` and ``radii`` (made here when not given).
    """
    shapes = shapes or Shapes.of(geoms, radii)
    ra, rb = radii[i], radii[j]
    ca, cb = ra > 0, rb > 0
    both = ca & cb
    # circle (at least 1 mm) and a one-ring polygon, either way round
    a_ring = ~ca & cb & (shapes.ring_len[i] > 0) & (rb >= MIN_NUMPY_RADIUS_M)
    b_ring = ca & ~cb & (shapes.ring_len[j] > 0) & (ra >= MIN_NUMPY_RADIUS_M)
    out = np.empty(len(i))
    rest = ~(both | a_ring | b_ring)
    if np.any(rest):
        out[rest] = frame.ground_distance(geoms[i[rest]], ra[rest], geoms[j[rest]], rb[rest])
    if np.any(both):
        pa, pb = shapes.xy[i[both]], shapes.xy[j[both]]
        out[both] = circle_distances(frame, pa[:, 0], pa[:, 1], ra[both], pb[:, 0], pb[:, 1], rb[both])
    for mixed, poly, circ, poly_first in ((a_ring, i, j, True), (b_ring, j, i, False)):
        if not np.any(mixed):
            continue
        pg, cg = poly[mixed], circ[mixed]
        p = shapes.xy[cg]
        inside, x, y = _nearest_on_rings(p[:, 0], p[:, 1], shapes.ring_start[pg], shapes.ring_len[pg], shapes.coords)
        x = np.where(inside, p[:, 0], x)
        y = np.where(inside, p[:, 1], y)
        if poly_first:
            d = circle_distances(frame, x, y, ra[mixed], p[:, 0], p[:, 1], rb[mixed])
        else:
            d = circle_distances(frame, p[:, 0], p[:, 1], ra[mixed], x, y, rb[mixed])
        out[mixed] = d
    return out
