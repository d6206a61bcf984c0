"""The compiled cores of a :class:`~deconflict.volumes.VolumeIndex` query and of ``deconflict check`` (numba,
cached on disk).

Imported only when a large index is queried or a file checked (inside functions), so that
``import deconflict`` and small indexes never load numba. ``cache=True`` keeps the machine code
beside this file (or in ``NUMBA_CACHE_DIR``): compiled once per installation.

:func:`query_slots` is the broad phase and the interval filters of one query in one pass over the
packed tree (the same tests, in the same order of slots, as the numpy path of ``VolumeIndex``);
:func:`grid` and :func:`block_pairs` find the candidate pairs of ``deconflict check``.
:func:`ground_distances` (one footprint against many) and :func:`pair_distances` (pairs) measure
circle and circle, circle and a polygon of one ring with the same floating-point operations as
``pair_distance`` (which follows GEOS 3.14 step by step), and two polygons of one ring as GEOS's
``DistanceOp`` does (``_ring_ring``), so the same values to the bit; the rest (holes,
multipolygons, rings too near to settle GEOS's exact tests) they mark for GEOS. No ``fastmath``:
every operation is rounded as GEOS and numpy round it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from deconflict.volume_buckets import CIRCLE, RING

__all__ = [
    "block_pairs",
    "format_rows",
    "grid",
    "ground_distances",
    "outward_float32",
    "pair_distances",
    "query_slots",
]
MIN_RING_RADIUS_M = 1e-3
"""As ``pair_distance.MIN_NUMPY_RADIUS_M``: smaller circles against a ring go to GEOS."""
RING_GAP_M = 1e-3
"""Two rings closer than this (frame metres) are measured by GEOS (see ``_ring_ring``)."""
PRUNE_MARGIN = 1.0 + 1e-9
"""A pair of segments whose boxes are further apart than this times the least distance so far is skipped
(the boxes' gap is a lower bound of their distance; the margin covers rounding)."""
PRUNE_SLACK_M = 1e-6
"""And further apart than that by this much (frame metres): the plain distance's rounding is absolute, some
1e-16 of the coordinates."""
CROSS_MARGIN = 1e-6
"""Two segments cross clearly when each meets the other this share of its length from either end (and
the sine of their angle is above it); the plain arithmetic's error is some 1e-16 of the lengths."""


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
                if _wanted(slot, env, rows, bx0, by0, bx1, by1, t0, t1, z0, zt, v, exclude):
                    out, m = _added(out, m, slot)
    for slot in range(n_tree, n):  # the tail: volumes added since the tree was built
        if _wanted(slot, env, rows, bx0, by0, bx1, by1, t0, t1, z0, zt, v, exclude):
            out, m = _added(out, m, slot)
    return np.sort(out[:m])


@njit(cache=True, nogil=True, inline="always")
def _wanted(
    slot: int,
    env: np.ndarray,
    rows: np.ndarray,
    bx0: float,
    by0: float,
    bx1: float,
    by1: float,
    t0: float,
    t1: float,
    z0: float,
    zt: float,
    v: float,
    exclude: int,
) -> bool:
    """Whether the volume in ``slot`` is a candidate (see :func:`query_slots`)."""
    if not (env[slot, 0] <= bx1 and bx0 <= env[slot, 2] and env[slot, 1] <= by1 and by0 <= env[slot, 3]):
        return False
    if not (rows[slot, 0] < t1 and t0 < rows[slot, 1] and rows[slot, 2] < zt and z0 < rows[slot, 3] + v):
        return False
    p = rows[slot, 4]
    return not (p < 0 or p == exclude)


@njit(cache=True, nogil=True, inline="always")
def _added(out: np.ndarray, m: int, slot: int) -> tuple[np.ndarray, int]:
    """``slot`` appended to the first ``m`` of ``out`` (doubled when full)."""
    if m == len(out):
        out = np.concatenate((out, np.empty(len(out), dtype=np.int64)))
    out[m] = slot
    return out, m + 1


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
def _point_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """GEOS's ``Distance::pointToSegment``, operation for operation."""
    if ax == bx and ay == by:
        dx, dy = px - ax, py - ay
        return math.sqrt(dx * dx + dy * dy)
    len2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay)
    r = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len2
    if r <= 0.0:
        dx, dy = px - ax, py - ay
        return math.sqrt(dx * dx + dy * dy)
    if r >= 1.0:
        dx, dy = px - bx, py - by
        return math.sqrt(dx * dx + dy * dy)
    s = ((ay - py) * (bx - ax) - (ax - px) * (by - ay)) / len2
    return abs(s) * math.sqrt(len2)


@njit(cache=True, nogil=True, error_model="numpy")
def _segment_segment(ax: float, ay: float, bx: float, by: float, cx: float, cy: float, dx: float, dy: float) -> float:
    """GEOS's ``Distance::segmentToSegment``, operation for operation."""
    if ax == bx and ay == by:
        return _point_segment(ax, ay, cx, cy, dx, dy)
    if cx == dx and cy == dy:
        return _point_segment(dx, dy, ax, ay, bx, by)
    apart = False
    if min(ax, bx) > max(cx, dx) or max(ax, bx) < min(cx, dx) or min(ay, by) > max(cy, dy) or max(ay, by) < min(cy, dy):
        apart = True
    else:
        denom = (bx - ax) * (dy - cy) - (by - ay) * (dx - cx)
        if denom == 0:
            apart = True
        else:
            r_num = (ay - cy) * (dx - cx) - (ax - cx) * (dy - cy)
            s_num = (ay - cy) * (bx - ax) - (ax - cx) * (by - ay)
            s = s_num / denom
            r = r_num / denom
            if r < 0 or r > 1 or s < 0 or s > 1:
                apart = True
    if apart:
        return min(
            _point_segment(ax, ay, cx, cy, dx, dy),
            min(
                _point_segment(bx, by, cx, cy, dx, dy),
                min(_point_segment(cx, cy, ax, ay, bx, by), _point_segment(dx, dy, ax, ay, bx, by)),
            ),
        )
    return 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _closest_point(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    """GEOS's ``LineSegment::closestPoint`` of p on the segment a-b."""
    if px == ax and py == ay:
        factor = 0.0
    elif px == bx and py == by:
        factor = 1.0
    else:
        ex, ey = bx - ax, by - ay
        factor = ((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey)
    if factor > 0 and factor < 1:
        return ax + factor * (bx - ax), ay + factor * (by - ay)
    d0 = math.sqrt((ax - px) * (ax - px) + (ay - py) * (ay - py))
    d1 = math.sqrt((bx - px) * (bx - px) + (by - py) * (by - py))
    return (ax, ay) if d0 < d1 else (bx, by)


@njit(cache=True, nogil=True)
def _distance(ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = ax - bx, ay - by
    return math.sqrt(dx * dx + dy * dy)


@njit(cache=True, nogil=True, error_model="numpy")
def _inside(qx: float, qy: float, coords: np.ndarray, start: int, length: int) -> bool:
    """Even-odd crossings of a ray towards +x: decides points away from the ring (see ``_ring_ring``)."""
    crossings = 0
    for s in range(start, start + length - 1):
        ax, ay = coords[s, 0], coords[s, 1]
        bx, by = coords[s + 1, 0], coords[s + 1, 1]
        if (ay > qy) != (by > qy) and qx < ax + (qy - ay) * (bx - ax) / (by - ay):
            crossings += 1
    return crossings % 2 == 1


@njit(cache=True, nogil=True, error_model="numpy")
def _crossing(ax: float, ay: float, bx: float, by: float, cx: float, cy: float, dx: float, dy: float) -> bool:
    """Whether segments a-b and c-d cross well inside both (a parameter within ``CROSS_MARGIN`` of an end
    or a near-parallel pair is left undecided: False), where any exact test agrees that they meet."""
    denom = (bx - ax) * (dy - cy) - (by - ay) * (dx - cx)
    scale = math.sqrt(((bx - ax) * (bx - ax) + (by - ay) * (by - ay)) * ((dx - cx) * (dx - cx) + (dy - cy) * (dy - cy)))
    if not abs(denom) > CROSS_MARGIN * scale:
        return False
    r = ((ay - cy) * (dx - cx) - (ax - cx) * (dy - cy)) / denom
    s = ((ay - cy) * (bx - ax) - (ax - cx) * (by - ay)) / denom
    lo, hi = CROSS_MARGIN, 1.0 - CROSS_MARGIN
    return lo < r < hi and lo < s < hi


@njit(cache=True, nogil=True, error_model="numpy")
def _ring_ring(
    ca: np.ndarray, sa: int, la: int, cb: np.ndarray, sb: int, lb: int, k0: float, kden: float
) -> tuple[float, bool]:
    """Ground distance between two polygons of one ring (a first), as GEOS's ``DistanceOp`` finds the
    shortest line and ``Frame.ground_distance`` measures it; (distance, whether decided here).

    The first pair of segments (a's in ring order, then b's) at the least ``segmentToSegment``
    distance, and on it ``LineSegment::closestPoints``. Rings that cross are 0 apart whichever way GEOS
    finds it (a vertex inside the other, or the first crossing pair, which its exact intersection test
    confirms): decided here when that pair crosses clearly inside both segments. Rings within
    ``RING_GAP_M`` of each other (touching, or too near for the plain arithmetic to settle GEOS's exact
    tests) are left to GEOS; further apart, either one holds the other's first vertex (GEOS's containment
    test: distance 0) or the two segments do not meet, so ``closestPoints`` takes the nearest of the four
    endpoint cases.
    """
    best = math.inf
    bi = bj = -1
    for i in range(sa, sa + la - 1):
        ax, ay, bx, by = ca[i, 0], ca[i, 1], ca[i + 1, 0], ca[i + 1, 1]
        x0, x1, y0, y1 = min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)
        for j in range(sb, sb + lb - 1):
            cx, cy, dx, dy = cb[j, 0], cb[j, 1], cb[j + 1, 0], cb[j + 1, 1]
            # a pair whose boxes are clearly further apart than the best so far cannot be strictly nearer
            gx = max(min(cx, dx) - x1, x0 - max(cx, dx))
            gy = max(min(cy, dy) - y1, y0 - max(cy, dy))
            reach = best * PRUNE_MARGIN + PRUNE_SLACK_M
            if gx > reach or gy > reach:
                continue
            d = _segment_segment(ax, ay, bx, by, cx, cy, dx, dy)
            if d < best:
                best, bi, bj = d, i, j
    if best == 0.0:  # GEOS stops at this first crossing: 0 when its exact test agrees the segments cross
        return 0.0, _crossing(
            ca[bi, 0], ca[bi, 1], ca[bi + 1, 0], ca[bi + 1, 1], cb[bj, 0], cb[bj, 1], cb[bj + 1, 0], cb[bj + 1, 1]
        )
    if not best > RING_GAP_M:
        return 0.0, False
    if _inside(ca[sa, 0], ca[sa, 1], cb, sb, lb) or _inside(cb[sb, 0], cb[sb, 1], ca, sa, la):
        return 0.0, True
    p0x, p0y, p1x, p1y = ca[bi, 0], ca[bi, 1], ca[bi + 1, 0], ca[bi + 1, 1]
    q0x, q0y, q1x, q1y = cb[bj, 0], cb[bj, 1], cb[bj + 1, 0], cb[bj + 1, 1]
    x, y = _closest_point(q0x, q0y, p0x, p0y, p1x, p1y)
    least = _distance(x, y, q0x, q0y)
    xa, ya, xb, yb = x, y, q0x, q0y
    x, y = _closest_point(q1x, q1y, p0x, p0y, p1x, p1y)
    d = _distance(x, y, q1x, q1y)
    if d < least:
        least, xa, ya, xb, yb = d, x, y, q1x, q1y
    x, y = _closest_point(p0x, p0y, q0x, q0y, q1x, q1y)
    d = _distance(x, y, p0x, p0y)
    if d < least:
        least, xa, ya, xb, yb = d, p0x, p0y, x, y
    x, y = _closest_point(p1x, p1y, q0x, q0y, q1x, q1y)
    d = _distance(x, y, p1x, p1y)
    if d < least:
        xa, ya, xb, yb = p1x, p1y, x, y
    return _measure(xa, ya, 0.0, xb, yb, 0.0, k0, kden), True


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
        elif q_kind == RING and kind == RING:
            dist[i], done = _ring_ring(q_coords, 0, q_len, coords, s, length[i], k0, kden)
            geos[i] = not done
        else:
            geos[i] = True
    return dist, geos


# --- deconflict check: every pair of many volumes ---------------------------------------------------------


@njit(cache=True, nogil=True)
def _cell(v: float, lo: float, size: float, count: int) -> int:
    """Grid cell of a coordinate: monotone in ``v``, clamped to the grid."""
    f = (v - lo) / size
    if not f >= 0.0:
        return 0
    if f >= count:
        return count - 1
    return int(f)


@njit(cache=True, nogil=True)
def grid(
    env: np.ndarray, rows: np.ndarray, order: np.ndarray, lo_x: float, lo_y: float, size: float, nx: int, ny: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Volumes by grid cell (every cell their envelope covers), each cell's in the given ``order``:
    (first entry of each cell and one past the last cell, each entry's volume, its envelope's four
    sides as float32 and its interval row (``rows``: start, end, floor, ceiling, party), each side
    and field in an array of its own, so that a scan of a cell reads little memory, in sequence).
    ``env`` must hold float32 values (``outward_float32``)."""
    count = np.zeros(nx * ny + 1, dtype=np.int64)
    for v in order:
        x0, x1 = _cell(env[v, 0], lo_x, size, nx), _cell(env[v, 2], lo_x, size, nx)
        y0, y1 = _cell(env[v, 1], lo_y, size, ny), _cell(env[v, 3], lo_y, size, ny)
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                count[cy * nx + cx + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    total = start[-1]
    members = np.empty(total, dtype=np.int64)
    sides = np.empty((4, total), dtype=np.float32)
    fields = np.empty((5, total))
    for v in order:
        x0, x1 = _cell(env[v, 0], lo_x, size, nx), _cell(env[v, 2], lo_x, size, nx)
        y0, y1 = _cell(env[v, 1], lo_y, size, ny), _cell(env[v, 3], lo_y, size, ny)
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                c = cy * nx + cx
                e = fill[c]
                members[e] = v
                for k in range(4):
                    sides[k, e] = env[v, k]
                for k in range(5):
                    fields[k, e] = rows[v, k]
                fill[c] += 1
    return start, members, sides, fields


@njit(cache=True, nogil=True)
def block_pairs(
    homes: np.ndarray,
    grown: np.ndarray,
    rows: np.ndarray,
    rank: np.ndarray,
    v: float,
    start: np.ndarray,
    members: np.ndarray,
    sides: np.ndarray,
    fields: np.ndarray,
    lo_x: float,
    lo_y: float,
    size: float,
    nx: int,
    ny: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b), a in ``homes``, b later by ``rank``, whose boxes meet (``grown[a]`` and the envelope of
    b) and whose windows, bands (within ``v``) and parties pass ``detect._Arrays.interval_ok`` (``rows``:
    start, end, floor, ceiling, party). Each pair once: from the cell holding the lower-left corner of
    the two boxes' intersection. Cells list their volumes in ``rank`` order, so a scan starts past ``a``."""
    out_a = np.empty(1024, dtype=np.int64)
    out_b = np.empty(1024, dtype=np.int64)
    m = 0
    sx0, sy0, sx1, sy1 = sides[0], sides[1], sides[2], sides[3]
    f_t0, f_t1, f_z0, f_z1, f_party = fields[0], fields[1], fields[2], fields[3], fields[4]
    for a in homes:
        gx0, gy0, gx1, gy1 = grown[a, 0], grown[a, 1], grown[a, 2], grown[a, 3]
        t0, t1, z0, z1, party = rows[a, 0], rows[a, 1], rows[a, 2], rows[a, 3], rows[a, 4]
        zt = z1 + v
        ra = rank[a]
        cx0, cx1 = _cell(gx0, lo_x, size, nx), _cell(gx1, lo_x, size, nx)
        cy0, cy1 = _cell(gy0, lo_y, size, ny), _cell(gy1, lo_y, size, ny)
        for cy in range(cy0, cy1 + 1):
            for cx in range(cx0, cx1 + 1):
                c = cy * nx + cx
                lo, hi = start[c], start[c + 1]
                while lo < hi:  # the first member ranked after a
                    mid = (lo + hi) // 2
                    if rank[members[mid]] <= ra:
                        lo = mid + 1
                    else:
                        hi = mid
                for e in range(lo, start[c + 1]):
                    if not (sx0[e] <= gx1 and gx0 <= sx1[e] and sy0[e] <= gy1 and gy0 <= sy1[e]):
                        continue
                    if _cell(max(gx0, sx0[e]), lo_x, size, nx) != cx or _cell(max(gy0, sy0[e]), lo_y, size, ny) != cy:
                        continue
                    if not (
                        party != f_party[e] and t0 < f_t1[e] and f_t0[e] < t1 and z0 < f_z1[e] + v and f_z0[e] < zt
                    ):
                        continue
                    if m == len(out_a):
                        out_a = np.concatenate((out_a, np.empty(m, dtype=np.int64)))
                        out_b = np.concatenate((out_b, np.empty(m, dtype=np.int64)))
                    out_a[m] = a
                    out_b[m] = members[e]
                    m += 1
    return out_a[:m], out_b[:m]


def outward_float32(env: np.ndarray) -> np.ndarray:
    """Envelopes (xmin, ymin, xmax, ymax) widened to the nearest float32 values outside (as float64)."""
    out = env.astype(np.float32)
    low = out[:, :2] > env[:, :2]
    out[:, :2][low] = np.nextafter(out[:, :2][low], np.float32(-np.inf))
    high = out[:, 2:] < env[:, 2:]
    out[:, 2:][high] = np.nextafter(out[:, 2:][high], np.float32(np.inf))
    return out.astype(np.float64)


@njit(cache=True, nogil=True, error_model="numpy")
def pair_distances(
    i: np.ndarray,
    j: np.ndarray,
    radii: np.ndarray,
    xy: np.ndarray,
    ring_start: np.ndarray,
    ring_len: np.ndarray,
    coords: np.ndarray,
    k0: float,
    kden: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``pair_distance.pair_distances`` of pairs (i[k], j[k]) of ``Shapes`` (its ``xy``, ``ring_start``,
    ``ring_len``, ``coords``): the same values to the bit, and which pairs are left to GEOS."""
    m = len(i)
    dist = np.zeros(m)
    geos = np.zeros(m, dtype=np.bool_)
    for k in range(m):
        a, b = i[k], j[k]
        ra, rb = radii[a], radii[b]
        if ra > 0 and rb > 0:
            dist[k] = _measure(xy[a, 0], xy[a, 1], ra, xy[b, 0], xy[b, 1], rb, k0, kden)
        elif ra <= 0 and rb > 0 and ring_len[a] > 0 and rb >= MIN_RING_RADIUS_M:
            px, py = xy[b, 0], xy[b, 1]
            inside, x, y = _nearest_on_ring(px, py, coords, ring_start[a], ring_len[a])
            if inside:
                x, y = px, py
            dist[k] = _measure(x, y, ra, px, py, rb, k0, kden)
        elif ra > 0 and rb <= 0 and ring_len[b] > 0 and ra >= MIN_RING_RADIUS_M:
            px, py = xy[a, 0], xy[a, 1]
            inside, x, y = _nearest_on_ring(px, py, coords, ring_start[b], ring_len[b])
            if inside:
                x, y = px, py
            dist[k] = _measure(px, py, ra, x, y, rb, k0, kden)
        elif ra <= 0 and rb <= 0 and ring_len[a] > 0 and ring_len[b] > 0:
            dist[k], done = _ring_ring(coords, ring_start[a], ring_len[a], coords, ring_start[b], ring_len[b], k0, kden)
            geos[k] = not done
        else:
            geos[k] = True
    return dist, geos


@njit(cache=True, nogil=True)
def _copy(out: np.ndarray, at: int, text: np.ndarray, offsets: np.ndarray, k: int) -> int:
    lo, hi = int(offsets[k]), int(offsets[k + 1])
    out[at : at + hi - lo] = text[lo:hi]
    return at + hi - lo


@njit(cache=True, nogil=True)
def _centi(out: np.ndarray, at: int, k: int) -> int:
    """k/100 as ``repr`` writes that hundredth: "12.0", "12.5", "12.34"."""
    q, r = k // 100, k % 100
    n, t = 1, q
    while t >= 10:
        t //= 10
        n += 1
    for d in range(at + n - 1, at - 1, -1):
        out[d] = 48 + q % 10
        q //= 10
    at += n
    out[at] = 46  # "."
    out[at + 1] = 48 + r // 10
    at += 2
    if r % 10:
        out[at] = 48 + r % 10
        at += 1
    return at


@njit(cache=True, nogil=True)
def format_rows(
    frag: np.ndarray,
    offsets: np.ndarray,
    columns: np.ndarray,
    numbers: np.ndarray,
    size: int,
) -> np.ndarray:
    """Rows of text (UTF-8) from fragments: each row is its ``columns`` (fragment ids into ``frag`` by
    ``offsets``) in order, a negative id -1 - c standing for number c of the row: its ``numbers[row, c]``
    hundredths as ``_centi`` writes them. ``size`` is the bytes of every fragment plus 24 a number."""
    out = np.empty(size, dtype=np.uint8)
    at = 0
    for row in range(columns.shape[0]):
        for c in range(columns.shape[1]):
            k = columns[row, c]
            if k >= 0:
                at = _copy(out, at, frag, offsets, k)
            else:
                at = _centi(out, at, numbers[row, -1 - k])
    return out[:at]
