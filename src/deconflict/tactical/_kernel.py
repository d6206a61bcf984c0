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

__all__ = ["brute_force", "count_rows", "grid_slice", "pair_order", "pair_test", "place_rows", "sort_rows"]

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
def pair_test(st, i, j, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m):  # type: ignore[no-untyped-def]
    """(code, tcpa, dcpa, t_in, t_out, t_in at R + E) of tracks i < j; code 0 none, 1 sure, 2 in doubt.

    ``st`` has a row per track (one cache line): x, y, vx, vy, z, vz, rho, flown. ``kd`` is ``4 r² k0²`` of the frame.
    """
    xi, yi, vxi, vyi, zi, vzi = st[i, 0], st[i, 1], st[i, 2], st[i, 3], st[i, 4], st[i, 5]
    xj, yj, vxj, vyj, zj, vzj = st[j, 0], st[j, 1], st[j, 2], st[j, 3], st[j, 4], st[j, 5]
    dx, dy, ux, uy = xj - xi, yj - yi, vxj - vxi, vyj - vyi
    dz, uz = zj - zi, vzj - vzi
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
    h = hpz_m - strict_m
    if uz != 0.0:
        v1, v2 = (-h - dz) / uz, (h - dz) / uz
        v_in, v_out = min(v1, v2), max(v1, v2)
    elif abs(dz) < h:
        v_in, v_out = -_INF, _INF
    else:
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    e = pair_error_m(st[i, 6], st[j, 6], st[i, 7], st[j, 7], rpz_m)
    # with R + E: may the pair conflict at all?
    r = (rpz_m + e) * k - strict_m
    gap2 = r * r - cross2
    if gap2 <= 0.0:
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    chord = math.sqrt(gap2)
    h_in, h_out = ((-along - chord) / speed, (-along + chord) / speed) if moving else (-_INF, _INF)
    lo_wide, hi = max(h_in, v_in), min(h_out, v_out)
    if not (lo_wide < hi and lo_wide < lookahead_s and hi > 0.0):
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    code = 2
    if rpz_m > e:  # with R - E: does it, whatever the frame's error?
        r = (rpz_m - e) * k - strict_m
        gap2 = r * r - cross2
        if gap2 > 0.0:
            chord = math.sqrt(gap2)
            h_in, h_out = ((-along - chord) / speed, (-along + chord) / speed) if moving else (-_INF, _INF)
            lo, hi = max(h_in, v_in), min(h_out, v_out)
            if lo < hi and lo < lookahead_s and hi > 0.0:
                code = 1
    if code == 2:
        return 2, 0.0, 0.0, 0.0, 0.0, max(lo_wide, 0.0)
    r = rpz_m * k - strict_m
    chord = math.sqrt(max(r * r - cross2, 0.0))
    h_in, h_out = ((-along - chord) / speed, (-along + chord) / speed) if moving else (-_INF, _INF)
    lo, hi = max(h_in, v_in), min(h_out, v_out)
    dcpa = math.hypot(dx + ux * tc, dy + uy * tc) / k
    return 1, tc, dcpa, max(lo, 0.0), min(hi, lookahead_s), max(lo_wide, 0.0)


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
            code, tc, dcpa, t_in, t_out, _ = pair_test(st, i, j, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m)
            if code:
                if n == buf.shape[1]:
                    buf, fig = _grow(buf, fig)
                buf[0, n], buf[1, n], buf[2, n] = i, j, code
                fig[0, n], fig[1, n], fig[2, n], fig[3, n] = tc, dcpa, t_in, t_out
                n += 1
    return buf[:, :n], fig[:, :n]


@njit(cache=True, nogil=True)
def _boxes_meet(st, i, j, t0, t1, grow_xy, grow_z):  # type: ignore[no-untyped-def]
    """Whether the boxes of tracks i and j over ``[t0, t1]`` overlap (computed as :func:`grid_slice` computes them)."""
    for d in range(3):
        p, v = (0, 2) if d == 0 else ((1, 3) if d == 1 else (4, 5))
        g = grow_z if d == 2 else grow_xy
        a, b = st[i, p] + st[i, v] * t0, st[i, p] + st[i, v] * t1
        c, e = st[j, p] + st[j, v] * t0, st[j, p] + st[j, v] * t1
        if min(a, b) - g > max(c, e) + g or min(c, e) - g > max(a, b) + g:
            return False
    return True


@njit(cache=True, nogil=True)
def grid_slice(st, home, s, slices, cell, grow_xy, grow_z, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m):  # type: ignore[no-untyped-def]
    """The pairs tested in time slice ``s``, through a grid of square cells: rows (i, j, code) and figures.

    Each track's path over the slice is boxed (grown by half of R + E and of H) and put in
    every cell its box touches; in a cell, entries are swept in order of their box's floor,
    and a pair is tested only in the cell holding the low corner of the two boxes' overlap
    (so once in the slice), only when the boxes overlap, and only when they overlap in no
    earlier slice (so once over the slices: in the first where they meet). A pair that may
    conflict has overlapping boxes in the slice where its conflict at R + E starts.
    """
    m = st.shape[0]
    step = lookahead_s / slices
    t0, t1 = s * step, (s + 1) * step
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
    buf, fig, n = np.empty((3, 1024), dtype=np.int64), np.empty((4, 1024), dtype=np.float64), 0
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
            end = a + 1
            while end < size and loc[2, end] <= top:
                end += 1
            k = 0
            for b in range(a + 1, end):  # without branches: the boxes that overlap a's, in this cell
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
            for q in range(k):
                b = cand[q]
                i, j = own[0, a], own[0, b]
                lo_i, hi_j, la, lb = (i, j, a, b) if i < j else (j, i, b, a)
                if not home[lo_i]:
                    continue
                seen = False
                for r in range(s):  # tested in an earlier slice where the boxes overlap
                    if _boxes_meet(lst, la, lb, r * step, (r + 1) * step, grow_xy, grow_z):
                        seen = True
                        break
                if seen:
                    continue
                code, tc, dcpa, t_in, t_out, _ = pair_test(lst, la, lb, k0, kd, rpz_m, hpz_m, lookahead_s, strict_m)
                if code:
                    if n == buf.shape[1]:
                        buf, fig = _grow(buf, fig)
                    buf[0, n], buf[1, n], buf[2, n] = lo_i, hi_j, code
                    fig[0, n], fig[1, n], fig[2, n], fig[3, n] = tc, dcpa, t_in, t_out
                    n += 1
    return buf[:, :n], fig[:, :n]


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


@njit(cache=True, nogil=True)
def count_rows(rows, members, count):  # type: ignore[no-untyped-def]
    """Count the sure rows (code 1) of each lower track: ``count[rank + 1]``, ``members`` mapping rows to ranks."""
    for k in range(rows.shape[1]):
        if rows[2, k] == 1:
            count[members[rows[0, k]] + 1] += 1


@njit(cache=True, nogil=True)
def place_rows(rows, fig, members, fill, rec):  # type: ignore[no-untyped-def]
    """Put each sure row in ``rec`` at ``fill[rank of its lower track]`` (then one on): the other's rank, the figures.

    ``rec`` has a row of five (the other's rank, tcpa, dcpa, t_in, t_out) per conflict, so
    that placing a row touches one cache line.
    """
    for k in range(rows.shape[1]):
        if rows[2, k] == 1:
            ra = members[rows[0, k]]
            p = fill[ra]
            fill[ra] += 1
            rec[p, 0] = members[rows[1, k]]
            rec[p, 1], rec[p, 2], rec[p, 3], rec[p, 4] = fig[0, k], fig[1, k], fig[2, k], fig[3, k]


@njit(cache=True, nogil=True)
def sort_rows(start, rec, order, first, last, a, b, tcpa, dcpa, t_in, t_out):  # type: ignore[no-untyped-def]
    """Rows of the lower tracks ranked ``first`` to ``last``, each track's by the other's rank, into the columns.

    ``a`` and ``b`` are track indices (``order`` maps ranks to them).
    """
    for r in range(first, last):
        lo, hi = start[r], start[r + 1]
        if hi - lo > 32:
            s = np.argsort(rec[lo:hi, 0], kind="mergesort") + lo
            rec[lo:hi] = rec[s]
        else:
            for q in range(lo + 1, hi):  # insertion: most tracks have a few
                v, f1, f2, f3, f4 = rec[q, 0], rec[q, 1], rec[q, 2], rec[q, 3], rec[q, 4]
                p = q
                while p > lo and rec[p - 1, 0] > v:
                    for d in range(5):
                        rec[p, d] = rec[p - 1, d]
                    p -= 1
                rec[p, 0], rec[p, 1], rec[p, 2], rec[p, 3], rec[p, 4] = v, f1, f2, f3, f4
        for p in range(lo, hi):
            a[p], b[p] = order[r], order[int(rec[p, 0])]
            tcpa[p], dcpa[p], t_in[p], t_out[p] = rec[p, 1], rec[p, 2], rec[p, 3], rec[p, 4]
