"""The broad phase of tactical detection: which pairs of tracks may conflict in one slice of the look-ahead.

Described in :mod:`deconflict.tactical.predict`: each track's path over a time slice is boxed,
the boxes are dropped into a uniform grid of cells and altitude bands, and only pairs whose
boxes overlap become candidates for the exact test, each once, in chunks of ``PAIR_CHUNK``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from deconflict.tactical._motion import _Plane

__all__ = ["BAND_FACTOR", "CELL_SPEED", "PAIR_CHUNK", "_Grid"]

CELL_SPEED = 1.0
"""Grid cell side, in distance flown in one slice at the 90th percentile of speed (plus R)."""
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
