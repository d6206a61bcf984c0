"""The compiled core of tactical detection (numba, cached on disk): the frame's exact test, the grid, the brute force.

Imported only when detection runs (``predict`` imports it inside its functions), so that
``import deconflict`` and ``deconflict tracks --help`` never load numba. ``cache=True``
keeps the machine code beside this file (or in ``NUMBA_CACHE_DIR``): compiled once per
installation, loaded in a fraction of a second after that.

:func:`pair_test` is the frame's exact test of one pair (the model is described in
:mod:`deconflict.tactical.predict`); the grid (:func:`grid_slice`) and the brute force
(:func:`brute_force`) both call it, so their answers are the same to the last bit.
Each reports a pair with a code: 1 sure (the test passes with R - E, E the pair's own
bound on the frame's error), 2 in doubt (passes with R + E only: decided on the
ellipsoid by ``_refine``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "brute_force",
    "bucket_rows",
    "count_keys",
    "finish_buckets",
    "grid_slice",
    "may_radius2",
    "pair_may",
    "pair_order",
    "pair_test",
    "scale_bound",
]

_RE_MIN_M = 6_335_000.0
_SAFETY = 1.5
_INF = math.inf


@njit(cache=True, nogil=True)
def pair_error_m(rho_i: float, rho_j: float, flown_i: float, flown_j: float, rpz_m: float) -> float:
    """The pair's own bound E (same formula as ``_refine.screen_error_m``)."""
    flown = max(flown_i, flown_j)
    far = max(rho_i, rho_j) + flown
    chord = far * (flown_i * flown_i + flown_j * flown_j) / (16.0 * _RE_MIN_M**2)
    scale = (rpz_m + 1.0) * far * (flown + rpz_m) / (2.0 * _RE_MIN_M**2)
    return _SAFETY * (chord + scale) + 0.5


@njit(cache=True, nogil=True)
def _window(along, speed, moving, r, cross2, v_in, v_out, lookahead_s):  # type: ignore[no-untyped-def]
    """(hit, lo, hi): the horizontal window at radius ``r`` met with the vertical ``[v_in, v_out]``, within [0, T]."""
    gap2 = r * r - cross2
    if gap2 <= 0.0:
        return False, 0.0, 0.0
    chord = math.sqrt(gap2)
    h_in, h_out = ((-along - chord) / speed, (-along + chord) / speed) if moving else (-_INF, _INF)
    lo, hi = max(h_in, v_in), min(h_out, v_out)
    return lo < hi and lo < lookahead_s and hi > 0.0, lo, hi


@njit(cache=True, nogil=True)
def pair_test(st, i, j, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m):  # type: ignore[no-untyped-def]
    """(code, tcpa, dcpa, t_in, t_out) of tracks i < j; code 0 none, 1 sure, 2 in doubt.

    ``st`` has a row per track (one cache line): x, y, vx, vy, z, vz, rho, flown. ``kd`` is ``4 r² k0²`` of the frame.
    Sure: the test passes with R - E (E the pair's own bound on the frame's error); in doubt: it
    passes with R + E only. The narrow test comes first: when it passes, so does the wide one (a
    wider radius gives a wider window, and rounding keeps the order), which then need not be
    computed.
    """
    xi, yi, vxi, vyi, zi, vzi = st[i, 0], st[i, 1], st[i, 2], st[i, 3], st[i, 4], st[i, 5]
    xj, yj, vxj, vyj, zj, vzj = st[j, 0], st[j, 1], st[j, 2], st[j, 3], st[j, 4], st[j, 5]
    dx, dy, ux, uy = xj - xi, yj - yi, vxj - vxi, vyj - vyi
    dz, uz = zj - zi, vzj - vzi
    h = hpz_m - strict_m
    if uz != 0.0:
        v1, v2 = (-h - dz) / uz, (h - dz) / uz
        v_in, v_out = min(v1, v2), max(v1, v2)
        if v_out <= 0.0 or v_in >= lookahead_s:  # the window below is within [v_in, v_out]: it misses [0, T]
            return 0, 0.0, 0.0, 0.0, 0.0
    elif abs(dz) < h:
        v_in, v_out = -_INF, _INF
    else:
        return 0, 0.0, 0.0, 0.0, 0.0
    speed = math.hypot(ux, uy)
    moving = speed > 0.0
    if moving:
        ex, ey = ux / speed, uy / speed
        along = dx * ex + dy * ey
        tcpa = -along / speed
        c = dx * ey - dy * ex
        cross2 = c * c
    else:
        along, tcpa, cross2 = 0.0, 0.0, dx * dx + dy * dy
    tc = min(max(tcpa, 0.0), lookahead_s)
    mx = (xi + xj + (vxi + vxj) * tc) / 2
    my = (yi + yj + (vyi + vyj) * tc) / 2
    k = k0 * (1.0 + (mx * mx + my * my) / kd)
    e = pair_error_m(st[i, 6], st[j, 6], st[i, 7], st[j, 7], rpz_m)
    narrow = (rpz_m - e) * k - strict_m
    # with R - E: does it conflict, whatever the frame's error?
    sure = rpz_m > e and _window(along, speed, moving, narrow, cross2, v_in, v_out, lookahead_s)[0]
    if not (sure and narrow > 0.0):  # a radius above 0 passing: the wider R + E passes too
        # with R + E: may it conflict at all?
        if not _window(along, speed, moving, (rpz_m + e) * k - strict_m, cross2, v_in, v_out, lookahead_s)[0]:
            return 0, 0.0, 0.0, 0.0, 0.0
        if not sure:
            return 2, 0.0, 0.0, 0.0, 0.0
    r = rpz_m * k - strict_m
    chord = math.sqrt(max(r * r - cross2, 0.0))
    h_in, h_out = ((-along - chord) / speed, (-along + chord) / speed) if moving else (-_INF, _INF)
    lo, hi = max(h_in, v_in), min(h_out, v_out)
    dcpa = math.hypot(dx + ux * tc, dy + uy * tc) / k
    return 1, tc, dcpa, max(lo, 0.0), min(hi, lookahead_s)


@njit(cache=True, nogil=True)
def _grow(buf, fig):  # type: ignore[no-untyped-def]
    """The row buffers, twice as long."""
    n = buf.shape[1]
    nb = np.empty((3, 2 * n + 1024), dtype=np.int64)
    nb[:, :n] = buf
    nf = np.empty((4, 2 * n + 1024), dtype=np.float64)
    nf[:, :n] = fig
    return nb, nf


@njit(cache=True, nogil=True)
def brute_force(st, home, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m):  # type: ignore[no-untyped-def]
    """Every pair i < j (i at home) through :func:`pair_test`: (i, j, code) and (tcpa, dcpa, t_in, t_out) rows."""
    m = st.shape[0]
    buf, fig, n = np.empty((3, 1024), dtype=np.int64), np.empty((4, 1024), dtype=np.float64), 0
    for i in range(m):
        if not home[i]:
            continue
        for j in range(i + 1, m):
            code, tc, dcpa, t_in, t_out = pair_test(st, i, j, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m)
            if code:
                if n == buf.shape[1]:
                    buf, fig = _grow(buf, fig)
                buf[0, n], buf[1, n], buf[2, n] = i, j, code
                fig[0, n], fig[1, n], fig[2, n], fig[3, n] = tc, dcpa, t_in, t_out
                n += 1
    return buf[:, :n], fig[:, :n]


@njit(cache=True, nogil=True)
def scale_bound(st, k0, kd, lookahead_s):  # type: ignore[no-untyped-def]
    """A bound on the scale factor ``pair_test`` finds for any pair of ``st``'s tracks (at a midpoint of two chords).

    The scale grows with the distance from the frame's centre, and a midpoint of two points
    of the chords is in their convex hull: no farther than the farthest end of a chord.
    """
    far2 = 0.0
    for i in range(st.shape[0]):
        x1, y1 = st[i, 0] + st[i, 2] * lookahead_s, st[i, 1] + st[i, 3] * lookahead_s
        far2 = max(far2, st[i, 0] * st[i, 0] + st[i, 1] * st[i, 1], x1 * x1 + y1 * y1)
    return k0 * (1.0 + far2 / kd) * (1.0 + 1e-9)


@njit(cache=True, nogil=True)
def pair_may(st, i, j, hpz_m, strict_m, rr):  # type: ignore[no-untyped-def]
    """False only for a pair :func:`pair_test` rejects (code 0): a screen without division or square root.

    Level pairs H apart or more; pairs whose lines pass farther than ``sqrt(rr)`` apart. ``rr`` is
    :func:`may_radius2`: the square of R + E times a bound on the scale (E the frame's bound on every
    pair's own, so that the screen needs nothing of the pair but its states).
    """
    dz, uz = st[j, 4] - st[i, 4], st[j, 5] - st[i, 5]
    if uz == 0.0 and not abs(dz) < hpz_m - strict_m:
        return False
    dx, dy, ux, uy = st[j, 0] - st[i, 0], st[j, 1] - st[i, 1], st[j, 2] - st[i, 2], st[j, 3] - st[i, 3]
    if ux == 0.0 and uy == 0.0:
        return not (dx * dx + dy * dy > rr)
    uu = ux * ux + uy * uy
    c = dx * uy - dy * ux  # |relative velocity| times the distance of the relative line from the origin
    return not (c * c > rr * uu)


@njit(cache=True, nogil=True)
def may_radius2(st, k0, kd, rpz_m, error_m, strict_m, lookahead_s):  # type: ignore[no-untyped-def]
    """:func:`pair_may`'s ``rr``: ``((R + E) k - strict)²`` grown by 10⁻⁶ for rounding.

    ``error_m`` bounds every pair's own E (:func:`pair_error_m` grows with each of its inputs, and
    the frame's bound is the same formula on the largest of each), ``k`` is :func:`scale_bound`.
    """
    r = (rpz_m + error_m) * scale_bound(st, k0, kd, lookahead_s) - strict_m
    return r * r * (1.0 + 1e-6)


@njit(cache=True, nogil=True)
def _boxes_meet(st, i, j, t0, t1, grow_xy, grow_z):  # type: ignore[no-untyped-def]
    """Whether the boxes of tracks i and j over ``[t0, t1]`` overlap (computed as :func:`grid_slice` computes them)."""
    for d in (2, 0, 1):
        p, v = (0, 2) if d == 0 else ((1, 3) if d == 1 else (4, 5))
        g = grow_z if d == 2 else grow_xy
        a, b = st[i, p] + st[i, v] * t0, st[i, p] + st[i, v] * t1
        c, e = st[j, p] + st[j, v] * t0, st[j, p] + st[j, v] * t1
        if min(a, b) - g > max(c, e) + g or min(c, e) - g > max(a, b) + g:
            return False
    return True


@njit(cache=True, nogil=True)
def _grow_sure(key, fig):  # type: ignore[no-untyped-def]
    """The sure rows' buffers, twice as long."""
    n = len(key)
    nk = np.empty(2 * n + 1024, dtype=np.int64)
    nk[:n] = key
    nf = np.empty((2 * n + 1024, 4), dtype=np.float64)
    nf[:n] = fig
    return nk, nf


@njit(cache=True, nogil=True)
def grid_slice(st, home, want, s, slices, cell, grow_xy, grow_z, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m, error_m):  # type: ignore[no-untyped-def]
    """The pairs tested in time slice ``s``, through a grid of square cells: sure rows and pairs in doubt.

    Each track's path over the slice is boxed (grown by half of R + E and of H) and put in
    every cell its box touches; in a cell, entries are swept in order of their box's floor,
    and a pair is tested only in the cell holding the low corner of the two boxes' overlap
    (so once in the slice), only when the boxes overlap, and only when they overlap in no
    earlier slice (so once over the slices: in the first where they meet). A pair that may
    conflict has overlapping boxes in the slice where its conflict at R + E starts.

    Only pairs with a track in ``want`` are tested (all tracks: every pair); a cell holding none
    of them is not swept. ``error_m`` bounds every pair's own E (the frame's ``screen_error_m``).

    Returns the sure pairs (code 1) as keys ``i << 32 | j`` (i < j, indices into ``st``) with
    their figures (tcpa, dcpa, t_in, t_out) a row each, and the pairs in doubt (code 2) as
    two rows (i, j).
    """
    m = st.shape[0]
    step = lookahead_s / slices
    t0, t1 = s * step, (s + 1) * step
    rr = may_radius2(st, k0, kd, rpz_m, error_m, strict_m, lookahead_s)
    box = np.empty((6, m))
    for i in range(m):
        for d in range(3):
            p, v = (0, 2) if d == 0 else ((1, 3) if d == 1 else (4, 5))
            g = grow_z if d == 2 else grow_xy
            a, b = st[i, p] + st[i, v] * t0, st[i, p] + st[i, v] * t1
            box[d, i], box[d + 3, i] = min(a, b) - g, max(a, b) + g
    x0, y0 = box[0].min(), box[1].min()
    nx = int((box[3].max() - x0) / cell) + 1
    ny = int((box[4].max() - y0) / cell) + 1
    cx0 = np.empty(m, dtype=np.int64)
    cx1 = np.empty(m, dtype=np.int64)
    cy0 = np.empty(m, dtype=np.int64)
    cy1 = np.empty(m, dtype=np.int64)
    count = np.zeros(nx * ny + 1, dtype=np.int64)
    for i in range(m):
        cx0[i], cx1[i] = int((box[0, i] - x0) / cell), int((box[3, i] - x0) / cell)
        cy0[i], cy1[i] = int((box[1, i] - y0) / cell), int((box[4, i] - y0) / cell)
        for cx in range(cx0[i], cx1[i] + 1):
            for cy in range(cy0[i], cy1[i] + 1):
                count[cx * ny + cy + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    entry = np.empty(start[-1], dtype=np.int64)
    for i in np.argsort(box[2], kind="mergesort"):  # each cell's entries in order of their box's floor
        for cx in range(cx0[i], cx1[i] + 1):
            for cy in range(cy0[i], cy1[i] + 1):
                c = cx * ny + cy
                entry[fill[c]] = i
                fill[c] += 1
    key, fig, n = np.empty(1024, dtype=np.int64), np.empty((1024, 4), dtype=np.float64), 0
    doubt, nd = np.empty((2, 64), dtype=np.int64), 0
    cand = np.empty(m, dtype=np.int64)
    loc = np.empty((8, m), dtype=np.float64)  # one cell's boxes, contiguous, in order of their floor
    own = np.empty((3, m), dtype=np.int64)  # track, first cell column, first cell row
    lst = np.empty((m, 8), dtype=np.float64)  # and their states (pair_test reads them from the cache)
    for c in range(nx * ny):
        lo_e, hi_e = start[c], start[c + 1]
        size = hi_e - lo_e
        if size < 2:
            continue
        members = entry[lo_e:hi_e]
        wanted = False
        for a in range(size):
            wanted |= want[members[a]]
        if not wanted:
            continue
        for a in range(size):
            i = members[a]
            for d in range(6):
                loc[d, a] = box[d, i]
            for d in range(8):
                lst[a, d] = st[i, d]
            own[0, a], own[1, a], own[2, a] = i, cx0[i], cy0[i]
        ccx, ccy = c // ny, c % ny
        for a in range(size):
            top, ax0, ay0, ax1, ay1 = loc[5, a], loc[0, a], loc[1, a], loc[3, a], loc[4, a]
            acx, acy = own[1, a], own[2, a]
            k, b = 0, a + 1
            while b < size and loc[2, b] <= top:  # the boxes that overlap a's, in this cell (one branch a box)
                hit = (
                    (ax0 <= loc[3, b])
                    & (loc[0, b] <= ax1)
                    & (ay0 <= loc[4, b])
                    & (loc[1, b] <= ay1)
                    & (max(acx, own[1, b]) == ccx)  # tested in the cell of the overlap's low corner
                    & (max(acy, own[2, b]) == ccy)
                )
                cand[k] = b
                k += hit
                b += 1
            for q in range(k):
                b = cand[q]
                i, j = own[0, a], own[0, b]
                lo_i, hi_j, la, lb = (i, j, a, b) if i < j else (j, i, b, a)
                if not home[lo_i] or not (want[i] or want[j]):
                    continue
                if not pair_may(lst, la, lb, hpz_m, strict_m, rr):
                    continue
                seen = False
                for r in range(s - 1, -1, -1):  # tested in an earlier slice where the boxes overlap
                    if _boxes_meet(lst, la, lb, r * step, (r + 1) * step, grow_xy, grow_z):
                        seen = True
                        break
                if seen:
                    continue
                code, tc, dcpa, t_in, t_out = pair_test(lst, la, lb, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m)
                if code == 1:
                    if n == len(key):
                        key, fig = _grow_sure(key, fig)
                    key[n] = (lo_i << 32) | hi_j
                    fig[n, 0], fig[n, 1], fig[n, 2], fig[n, 3] = tc, dcpa, t_in, t_out
                    n += 1
                elif code == 2:
                    if nd == doubt.shape[1]:
                        wider = np.empty((2, 2 * nd), dtype=np.int64)
                        wider[:, :nd] = doubt
                        doubt = wider
                    doubt[0, nd], doubt[1, nd] = lo_i, hi_j
                    nd += 1
    return key[:n], fig[:n], doubt[:, :nd]


@njit(cache=True, nogil=True)
def count_keys(key, members, count):  # type: ignore[no-untyped-def]
    """Count the rows of each lower track: ``count[rank + 1]``, ``members`` mapping the keys' indices to ranks."""
    for k in range(len(key)):
        count[members[key[k] >> 32] + 1] += 1


@njit(cache=True, nogil=True)
def bucket_rows(key, fig, members, fill, shift, out_key, out_fig):  # type: ignore[no-untyped-def]
    """Put each row in its bucket (rank of its lower track ``>> shift``) at ``fill[bucket]``, then one on.

    Keys are rewritten in ranks (``rank_a << 32 | rank_b``). A few hundred buckets are
    written at once, each in order: the writes stay in the cache, unlike placing each row
    straight at its final place among millions.
    """
    for k in range(len(key)):
        ra, rb = members[key[k] >> 32], members[key[k] & 0xFFFFFFFF]
        p = fill[ra >> shift]
        fill[ra >> shift] = p + 1
        out_key[p] = (ra << 32) | rb
        out_fig[p, 0], out_fig[p, 1], out_fig[p, 2], out_fig[p, 3] = fig[k, 0], fig[k, 1], fig[k, 2], fig[k, 3]


@njit(cache=True, nogil=True)
def finish_buckets(start, shift, first, last, key, fig, order, a, b, tcpa, dcpa, t_in, t_out):  # type: ignore[no-untyped-def]
    """Buckets ``first`` to ``last``: their rows sorted by key (ranks a, then b) into the columns, as track indices.

    ``start[r]`` is where the rows of rank r begin; ``order`` maps ranks to track indices.
    Each bucket is sorted on its own (a few thousand rows, in cache) by a least-significant
    digit radix sort: by rank b a digit of up to 11 bits at a time, then by rank a.
    """
    n = len(order)
    bits = 0
    while (1 << bits) < n:
        bits += 1
    passes = (bits + 10) // 11
    width = (bits + passes - 1) // passes if passes else 0
    widest = 0
    for bk in range(first, last):
        widest = max(widest, start[min((bk + 1) << shift, n)] - start[bk << shift])
    k1, i1 = np.empty(widest, dtype=np.int64), np.empty(widest, dtype=np.int64)
    k2, i2 = np.empty(widest, dtype=np.int64), np.empty(widest, dtype=np.int64)
    count = np.empty((1 << width) + 1, dtype=np.int64)
    for bk in range(first, last):
        r0, r1 = bk << shift, min((bk + 1) << shift, n)
        lo, hi = start[r0], start[r1]
        m = hi - lo
        for q in range(m):
            k1[q], i1[q] = key[lo + q], lo + q
        for d in range(passes):  # by rank b, least significant digit first (stable)
            low, mask = d * width, (1 << width) - 1
            count[:] = 0
            for q in range(m):
                count[(((k1[q] & 0xFFFFFFFF) >> low) & mask) + 1] += 1
            for v in range(mask + 1):
                count[v + 1] += count[v]
            for q in range(m):
                v = ((k1[q] & 0xFFFFFFFF) >> low) & mask
                p = count[v]
                count[v] = p + 1
                k2[p], i2[p] = k1[q], i1[q]
            k1, k2, i1, i2 = k2, k1, i2, i1
        fill = start[r0:r1] - lo
        for q in range(m):  # then by rank a (stable): each at its place in the table
            ra = (k1[q] >> 32) - r0
            p = fill[ra]
            fill[ra] = p + 1
            k2[p], i2[p] = k1[q], i1[q]
        for p in range(m):
            kk, q = k2[p], i2[p]
            a[lo + p], b[lo + p] = order[kk >> 32], order[kk & 0xFFFFFFFF]
            tcpa[lo + p], dcpa[lo + p], t_in[lo + p], t_out[lo + p] = fig[q, 0], fig[q, 1], fig[q, 2], fig[q, 3]


@njit(cache=True, nogil=True)
def pair_order(ra, rb, n):  # type: ignore[no-untyped-def]
    """The permutation sorting pairs by (ra, rb), both below n (two counting-sort passes, O(rows + n))."""
    rows = len(ra)
    count = np.zeros(n + 1, dtype=np.int64)
    for k in range(rows):
        count[rb[k] + 1] += 1
    for v in range(n):
        count[v + 1] += count[v]
    by_b = np.empty(rows, dtype=np.int64)
    for k in range(rows):
        by_b[count[rb[k]]] = k
        count[rb[k]] += 1
    count[:] = 0
    for k in range(rows):
        count[ra[k] + 1] += 1
    for v in range(n):
        count[v + 1] += count[v]
    out = np.empty(rows, dtype=np.int64)
    for q in range(rows):
        k = by_b[q]
        out[count[ra[k]]] = k
        count[ra[k]] += 1
    return out
