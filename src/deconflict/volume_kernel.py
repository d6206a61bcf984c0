"""The compiled core of one :class:`~deconflict.volumes.VolumeIndex` query (numba, cached on disk).

Imported only when a large index is queried (``volumes`` imports it inside a method), so that
``import deconflict`` and small indexes never load numba. ``cache=True`` keeps the machine code
beside this file (or in ``NUMBA_CACHE_DIR``): compiled once per installation.

:func:`query_slots` is the broad phase and the interval filters of one query in one pass over the
packed tree (the same tests, in the same order of slots, as the numpy path of ``VolumeIndex``);
:func:`ground_distances` measures the commonest pairs (circle and circle, circle and a polygon of one
ring) with the same floating-point operations as ``pair_distance`` (which follows GEOS 3.14 step by
step), so the same values to the bit, and marks the rest for GEOS. No ``fastmath``: every operation
is rounded as numpy rounds it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from deconflict.volume_buckets import CIRCLE, RING

__all__ = ["ground_distances", "query_slots"]
MIN_RING_RADIUS_M = 1e-3
"""As ``pair_distance.MIN_NUMPY_RADIUS_M``: smaller circles against a ring go to GEOS."""


@njit(cache=True, nogil=True)
def _bisect_left(a: np.ndarray, lo: int, hi: int, x: float) -> int:
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _bisect_right(a: np.ndarray, lo: int, hi: int, x: float) -> int:
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True, error_model="numpy")
def query_slots(
    box: np.ndarray,
    t0: float,
    t1: float,
    z0: float,
    z1: float,
    v: float,
    exclude: int,
    groups: np.ndarray,
    numbers: np.ndarray,
    bucket_nodes: np.ndarray,
    node_env: np.ndarray,
    node_start: np.ndarray,
    node_end: np.ndarray,
    env: np.ndarray,
    rows: np.ndarray,
    tree_box: np.ndarray,
    n_tree: int,
    n: int,
) -> np.ndarray:
    """Slots (ascending) whose envelope meets ``box``, window overlaps ``[t0, t1)``, band comes within ``v``
    of ``[z0, z1]``, and party is live and not ``exclude`` (-2: none excluded).

    ``groups`` rows are (party, longest window, bucket width, first bucket id, first number, end number)
    of each (party, level) group of the tree, ``numbers`` their sorted bucket numbers end to end.
    """
    bx0, by0, bx1, by1 = box[0], box[1], box[2], box[3]
    zt = z1 + v
    out = np.empty(64, dtype=np.int64)
    m = 0
    spans = np.empty((len(groups), 2), dtype=np.int64)
    k = 0
    if n_tree > 0 and bx0 <= tree_box[2] and tree_box[0] <= bx1 and by0 <= tree_box[3] and tree_box[1] <= by1:
        for g in range(len(groups)):
            party = int(groups[g, 0])
            if party == exclude:
                continue
            longest, width = groups[g, 1], groups[g, 2]
            first, lo_at, hi_at = int(groups[g, 3]), int(groups[g, 4]), int(groups[g, 5])
            if longest == math.inf:
                a, b = first, first + hi_at - lo_at
            else:
                lo = (t0 - longest - 1.0) / width
                hi = t1 / width
                if math.isfinite(lo):
                    lo = math.floor(lo)
                if math.isfinite(hi):
                    hi = math.floor(hi)
                a = first + _bisect_left(numbers, lo_at, hi_at, lo) - lo_at
                b = first + _bisect_right(numbers, lo_at, hi_at, hi) - lo_at
            if a < b:
                spans[k, 0] = bucket_nodes[a]
                spans[k, 1] = bucket_nodes[b]
                k += 1
    for s in range(k):
        for node in range(spans[s, 0], spans[s, 1]):
            if not (
                node_env[node, 0] <= bx1
                and bx0 <= node_env[node, 2]
                and node_env[node, 1] <= by1
                and by0 <= node_env[node, 3]
            ):
                continue
            for slot in range(node_start[node], node_end[node]):
                if not (env[slot, 0] <= bx1 and bx0 <= env[slot, 2] and env[slot, 1] <= by1 and by0 <= env[slot, 3]):
                    continue
                if not (rows[slot, 0] < t1 and t0 < rows[slot, 1] and rows[slot, 2] < zt and z0 < rows[slot, 3] + v):
                    continue
                p = rows[slot, 4]
                if p < 0 or p == exclude:
                    continue
                if m == len(out):
                    out = np.concatenate((out, np.empty(len(out), dtype=np.int64)))
                out[m] = slot
                m += 1
    for slot in range(n_tree, n):
        if not (env[slot, 0] <= bx1 and bx0 <= env[slot, 2] and env[slot, 1] <= by1 and by0 <= env[slot, 3]):
            continue
        if not (rows[slot, 0] < t1 and t0 < rows[slot, 1] and rows[slot, 2] < zt and z0 < rows[slot, 3] + v):
            continue
        p = rows[slot, 4]
        if p < 0 or p == exclude:
            continue
        if m == len(out):
            out = np.concatenate((out, np.empty(len(out), dtype=np.int64)))
        out[m] = slot
        m += 1
    return np.sort(out[:m])


@njit(cache=True, nogil=True)
def _inv_k(xa: float, ya: float, xb: float, yb: float, k0: float, kden: float) -> float:
    """Simpson's rule on 1/k along the segment, as ``Frame.ground_distance`` (``Frame.scale`` at three points)."""
    xm, ym = (xa + xb) / 2, (ya + yb) / 2
    ka = k0 * (1.0 + (xa * xa + ya * ya) / kden)
    km = k0 * (1.0 + (xm * xm + ym * ym) / kden)
    kb = k0 * (1.0 + (xb * xb + yb * yb) / kden)
    return (1.0 / ka + 4.0 / km + 1.0 / kb) / 6.0


@njit(cache=True, nogil=True)
def _measure(xa: float, ya: float, ra: float, xb: float, yb: float, rb: float, k0: float, kden: float) -> float:
    """``circle_distances`` of one segment: its ground length less both radii, at least 0."""
    dx, dy = xb - xa, yb - ya
    planar = math.sqrt(dx * dx + dy * dy)
    out = planar * _inv_k(xa, ya, xb, yb, k0, kden) - ra - rb
    return max(out, 0.0)


@njit(cache=True, nogil=True, error_model="numpy")
def _nearest_on_ring(qx: float, qy: float, coords: np.ndarray, start: int, length: int) -> tuple[bool, float, float]:
    """(inside, x, y of the nearest point on the closed ring) as ``pair_distance._nearest_on_rings`` finds it."""
    crossings = 0
    best = math.inf
    hit = -1
    for s in range(start, start + length - 1):
        ax, ay = coords[s, 0], coords[s, 1]
        bx, by = coords[s + 1, 0], coords[s + 1, 1]
        if (ay > qy) != (by > qy) and qx < ax + (qy - ay) * (bx - ax) / (by - ay):
            crossings += 1
        ex, ey = bx - ax, by - ay
        len2 = ex * ex + ey * ey
        r = ((qx - ax) * ex + (qy - ay) * ey) / len2
        if (ax == bx and ay == by) or r <= 0.0:
            dxa, dya = qx - ax, qy - ay
            d = math.sqrt(dxa * dxa + dya * dya)
        elif r >= 1.0:
            dxb, dyb = qx - bx, qy - by
            d = math.sqrt(dxb * dxb + dyb * dyb)
        else:
            sv = ((ay - qy) * ex - (ax - qx) * ey) / len2
            d = abs(sv) * math.sqrt(len2)
        if d < best:  # the first segment at the least distance
            best = d
            hit = s
    ax, ay = coords[hit, 0], coords[hit, 1]
    bx, by = coords[hit + 1, 0], coords[hit + 1, 1]
    ex, ey = bx - ax, by - ay
    factor = ((qx - ax) * ex + (qy - ay) * ey) / (ex * ex + ey * ey)
    at_a = qx == ax and qy == ay
    at_b = qx == bx and qy == by
    if at_a or (not at_b and ax == bx and ay == by):
        factor = 0.0
    elif at_b:
        factor = 1.0
    if factor > 0 and factor < 1:
        x = ax + factor * (bx - ax)
        y = ay + factor * (by - ay)
    else:
        d0 = math.sqrt((ax - qx) * (ax - qx) + (ay - qy) * (ay - qy))
        d1 = math.sqrt((bx - qx) * (bx - qx) + (by - qy) * (by - qy))
        x, y = (ax, ay) if d0 < d1 else (bx, by)
    return crossings % 2 == 1, x, y


@njit(cache=True, nogil=True, error_model="numpy")
def ground_distances(
    q_kind: int,
    q_coords: np.ndarray,
    q_radius: float,
    kinds: np.ndarray,
    radii: np.ndarray,
    coords: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    k0: float,
    kden: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ground distances (m) from one footprint (the first geometry of each pair) to many, and which of them
    are left to GEOS (polygon and polygon, holes, multipolygons, circles under a millimetre against a ring).

    ``q_coords`` is the query's centre or ring; candidate ``i``'s centre or ring is
    ``coords[start[i] : start[i] + length[i]]``. ``kden`` is ``4 r² k0²`` of the frame (``Frame.scale``).
    """
    m = len(kinds)
    dist = np.zeros(m)
    geos = np.zeros(m, dtype=np.bool_)
    q_len = len(q_coords)
    for i in range(m):
        kind, r, s = kinds[i], radii[i], start[i]
        if q_kind == CIRCLE and kind == CIRCLE:
            dist[i] = _measure(q_coords[0, 0], q_coords[0, 1], q_radius, coords[s, 0], coords[s, 1], r, k0, kden)
        elif q_kind == CIRCLE and kind == RING and q_radius >= MIN_RING_RADIUS_M:
            px, py = q_coords[0, 0], q_coords[0, 1]
            inside, x, y = _nearest_on_ring(px, py, coords, s, length[i])
            if inside:
                x, y = px, py
            dist[i] = _measure(px, py, q_radius, x, y, r, k0, kden)
        elif q_kind == RING and kind == CIRCLE and r >= MIN_RING_RADIUS_M:
            px, py = coords[s, 0], coords[s, 1]
            inside, x, y = _nearest_on_ring(px, py, q_coords, 0, q_len)
            if inside:
                x, y = px, py
            dist[i] = _measure(x, y, q_radius, px, py, r, k0, kden)
        else:
            geos[i] = True
    return dist, geos
