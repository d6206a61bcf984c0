"""The numpy engine of tactical detection, for inputs too small to pay for loading numba.

The same grid and exact test as :mod:`~deconflict.tactical._kernel`, written with numpy
arrays: each track's path over a time slice is boxed, the boxes are dropped into a
uniform grid of cells and altitude bands, and only pairs whose boxes overlap become
candidates for the exact test, each once, in chunks of ``PAIR_CHUNK``. :func:`exact`
computes what ``_kernel.pair_test`` computes, operation for operation, so both engines
give the same answer to the last bit (``tests/domain/test_tactical_kernel.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from deconflict.tactical._motion import _Plane
from deconflict.tactical._refine import screen_error_m

__all__ = ["BAND_FACTOR", "CELL_SPEED", "PAIR_CHUNK", "brute_rows", "exact", "grid_rows"]

CELL_SPEED = 1.0
"""Grid cell side, in distance flown in one slice at the 90th percentile of speed (plus R + E); both engines."""
BAND_FACTOR = 2.0
"""Altitude band height, in multiples of H."""
PAIR_CHUNK = 500_000
"""Most candidate pairs formed at once (bounds the broad phase's working memory)."""


class _Grid:
    """The broad phase's grid: square cells in the plane, altitude bands, time slices.

    In slice ``s`` every track's path is boxed and grown by half of R (at the frame's
    largest scale factor) and half of H; the box goes into every cell and band it touches.
    A pair of boxes is formed only in the cell holding the low corner of their overlap
    (``max`` of the two low corners): in that cell, on each of x and y, one of the two boxes
    starts. Entries whose box starts in the cell on neither axis (mask 0), on x only (1),
    on both (3) and on y only (2) are sorted in that order, so each entry's valid partners
    are one contiguous range. Bands are deduplicated the same way after the overlap test.
    """

    def __init__(self, p: _Plane, rpz_m: float, hpz_m: float, lookahead_s: float, slices: int) -> None:
        self.p = p
        x1, y1 = p.x + p.vx * lookahead_s, p.y + p.vy * lookahead_s
        kmax = float(np.max(p.frame.scale(np.concatenate([p.x, x1]), np.concatenate([p.y, y1]))))
        self.grow_xy = rpz_m * kmax / 2 * (1 + 1e-9) + 1e-3
        self.grow_z = hpz_m / 2 * (1 + 1e-9) + 1e-3
        self.step = lookahead_s / slices
        speed = np.hypot(p.vx, p.vy)
        self.cell = max(float(np.percentile(speed, 90)) * self.step * CELL_SPEED + 2 * self.grow_xy, 1.0)
        self.band = 2 * self.grow_z * BAND_FACTOR
        self.origin = np.array(
            [
                float(np.min(np.minimum(p.x, x1))) - self.grow_xy - 1.0,
                float(np.min(np.minimum(p.y, y1))) - self.grow_xy - 1.0,
                float(np.min(np.minimum(p.z, p.z + p.vz * lookahead_s))) - self.grow_z - 1.0,
            ]
        )
        self.size = np.array([self.cell, self.cell, self.band])

    def pairs(self, s: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (i, j), i < j, of tracks whose boxes overlap in slice ``s``, each pair once."""
        p, n = self.p, len(self.p.x)
        t0, t1 = s * self.step, (s + 1) * self.step
        a = np.stack([p.x + p.vx * t0, p.y + p.vy * t0, p.z + p.vz * t0], axis=1)
        b = np.stack([p.x + p.vx * t1, p.y + p.vy * t1, p.z + p.vz * t1], axis=1)
        grow = np.array([self.grow_xy, self.grow_xy, self.grow_z])
        box = np.concatenate([np.minimum(a, b) - grow, np.maximum(a, b) + grow], axis=1)  # (n, 6): lows, highs
        c0 = np.floor((box[:, :3] - self.origin) / self.size).astype(np.int64)
        c1 = np.floor((box[:, 3:] - self.origin) / self.size).astype(np.int64)
        span = c1 - c0 + 1
        dims = c1.max(axis=0) + 1
        count = span[:, 0] * span[:, 1] * span[:, 2]
        owner = np.repeat(np.arange(n), count)
        local = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        sy, sz = span[owner, 1], span[owner, 2]
        dx, dy, dz = local // (sy * sz), (local // sz) % sy, local % sz
        cz = c0[owner, 2] + dz
        mask = (dx == 0).astype(np.int64) + 2 * (dy == 0)
        rank = mask ^ (mask >> 1)  # masks 0, 1, 3, 2 -> ranks 0, 1, 2, 3
        key = (((c0[owner, 0] + dx) * dims[1] + c0[owner, 1] + dy) * dims[2] + cz) * 4 + rank
        srt = np.argsort(key, kind="stable")
        key, owner, rank, cz = key[srt], owner[srt], rank[srt], cz[srt]
        cell_key = key - rank
        m = len(key)
        g2 = np.searchsorted(key, cell_key + 2)
        g3 = np.searchsorted(key, cell_key + 3)
        end = np.searchsorted(key, cell_key + 4)
        start = np.where(rank == 2, np.arange(1, m + 1), g2)
        stop = np.where(rank == 0, g3, np.where(rank == 3, start, end))
        cnt = stop - start
        ebox = [np.ascontiguousarray(box[owner, d]) for d in range(6)]  # box edges in entry order
        cum = np.cumsum(cnt)
        pos = 0
        while pos < m:
            last = max(int(np.searchsorted(cum, (cum[pos - 1] if pos else 0) + PAIR_CHUNK, side="right")), pos + 1)
            c = cnt[pos:last]
            first = np.repeat(np.arange(pos, last), c)
            second = np.arange(len(first)) + np.repeat(start[pos:last] - (np.cumsum(c) - c), c)
            pos = last
            for d in range(3):  # overlap on x, then y, then z, keeping survivors only
                lo, hi = ebox[d], ebox[d + 3]
                keep = (lo[first] <= hi[second]) & (lo[second] <= hi[first])
                first, second = first[keep], second[keep]
            zlow = np.maximum(ebox[2][first], ebox[2][second])
            keep = np.floor((zlow - self.origin[2]) / self.band).astype(np.int64) == cz[first]
            i, j = owner[first[keep]], owner[second[keep]]
            yield np.minimum(i, j), np.maximum(i, j)


def exact(
    p: _Plane,
    i: np.ndarray,
    j: np.ndarray,
    rpz_m: float,
    hpz_m: float,
    lookahead_s: float,
    strict_m: float,
) -> tuple[np.ndarray, ...]:
    """The frame's exact test on pairs (``i`` before ``j`` in id order), with the frame's error E (``error_m``).

    Returns (maybe, sure, tcpa, dcpa, t_in, t_out, t_in at R + E): ``maybe`` is the test with
    R + E (the pair may conflict), ``sure`` with R - E (it does, whatever the frame's error);
    the figures are the frame's, with R. E is each pair's own bound (``screen_error_m``).
    """
    x, y, vx, vy = p.x, p.y, p.vx, p.vy
    far = np.maximum(p.rho[i], p.rho[j]) + np.maximum(p.flown[i], p.flown[j])  # how far from the centre it flies
    error_m = screen_error_m(far, p.flown[i], p.flown[j], rpz_m)
    dx, dy = x[j] - x[i], y[j] - y[i]
    ux, uy = vx[j] - vx[i], vy[j] - vy[i]
    dz, uz = p.z[j] - p.z[i], p.vz[j] - p.vz[i]
    speed = np.hypot(ux, uy)
    moving = speed > 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ex, ey = np.where(moving, ux / speed, 0.0), np.where(moving, uy / speed, 0.0)  # unit relative velocity
        along = dx * ex + dy * ey  # metres, in the plane
        tcpa = np.where(moving, -along / speed, 0.0)
        tc = np.clip(tcpa, 0.0, lookahead_s)
        mx, my = (x[i] + x[j] + (vx[i] + vx[j]) * tc) / 2, (y[i] + y[j] + (vy[i] + vy[j]) * tc) / 2
        k = p.frame.k0 * (1.0 + (mx * mx + my * my) / (4.0 * p.frame.r_m**2 * p.frame.k0**2))
        c = dx * ey - dy * ex
        cross2 = np.where(moving, c * c, dx * dx + dy * dy)  # relative path to the origin, squared

        def window(r_m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            r = r_m * k - strict_m
            gap2 = r * r - cross2
            chord = np.sqrt(np.maximum(gap2, 0.0))  # half the relative path's length inside R
            h_in = np.where(moving, (-along - chord) / speed, -np.inf)
            h_out = np.where(moving, (-along + chord) / speed, np.inf)
            return gap2 > 0.0, h_in, h_out

        h = hpz_m - strict_m
        climbing = uz != 0.0
        v1, v2 = (-h - dz) / uz, (h - dz) / uz
        level_in = np.abs(dz) < h
        v_in = np.where(climbing, np.minimum(v1, v2), np.where(level_in, -np.inf, np.inf))
        v_out = np.where(climbing, np.maximum(v1, v2), np.where(level_in, np.inf, -np.inf))

    def verdict(r_m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        inside, h_in, h_out = window(r_m)
        lo, hi = np.maximum(h_in, v_in), np.minimum(h_out, v_out)
        return inside & (lo < hi) & (lo < lookahead_s) & (hi > 0.0), lo, hi

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        maybe, lo_wide, _ = verdict(rpz_m + error_m)
        sure = verdict(rpz_m - error_m)[0] & (rpz_m > error_m)
        _, lo, hi = verdict(rpz_m)
    dcpa = np.hypot(dx + ux * tc, dy + uy * tc) / k
    return maybe, sure, tc, dcpa, np.maximum(lo, 0.0), np.minimum(hi, lookahead_s), np.maximum(lo_wide, 0.0)


def _rows(i: np.ndarray, j: np.ndarray, res: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows (i, j, code) and figures (tcpa, dcpa, t_in, t_out) as the kernel gives them: code 1 sure, 2 in doubt."""
    maybe, sure, *figures = res
    code = np.where(sure, 1, 2)[maybe]
    return np.stack([i[maybe], j[maybe], code]), np.stack([f[maybe] for f in figures[:4]])


def brute_rows(
    p: _Plane, home: np.ndarray, rpz_m: float, hpz_m: float, lookahead_s: float, strict_m: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every pair i < j (i at home) through :func:`exact`, one block of rows at a time."""
    m = len(p.x)
    rows = max(1, PAIR_CHUNK // max(m, 1))
    out = []
    for lo in range(0, m, rows):
        i = np.arange(lo, min(lo + rows, m))
        i = i[home[i]]
        ii = np.repeat(i, m)
        jj = np.tile(np.arange(m), len(i))
        keep = jj > ii
        ii, jj = ii[keep], jj[keep]
        out.append(_rows(ii, jj, exact(p, ii, jj, rpz_m, hpz_m, lookahead_s, strict_m)))
    return out


def grid_rows(
    p: _Plane,
    home: np.ndarray,
    want: np.ndarray,
    s: int,
    slices: int,
    error_m: float,
    rpz_m: float,
    hpz_m: float,
    lookahead_s: float,
    strict_m: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The pairs whose conflict (at R + E, ``error_m`` the frame's largest E) starts in slice ``s``, of those
    with a track in ``want``."""
    grid = _Grid(p, rpz_m + error_m, hpz_m, lookahead_s, slices)
    out = []
    for i, j in grid.pairs(s):
        keep = home[i] & (want[i] | want[j])
        i, j = i[keep], j[keep]
        *res, t_wide = exact(p, i, j, rpz_m, hpz_m, lookahead_s, strict_m)
        mine = np.minimum(np.floor(t_wide * (slices / lookahead_s)), slices - 1) == s  # slice of t_in at R + E
        res[0] = res[0] & mine
        out.append(_rows(i, j, tuple(res)))
    return out
