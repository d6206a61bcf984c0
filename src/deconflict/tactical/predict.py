"""Predicted loss of separation: straight-line extrapolated tracks, closest approach, and the conflict window.

The tracks' projection into a frame is in ``_motion``, the broad phase's grid in ``_grid``;
conformance of positions to notified volumes is :mod:`deconflict.tactical.conformance`.

State-based detection as air-traffic tools do it (BlueSky's ``StateBased``): each track
flies on from its current state, and two tracks *conflict* when at some moment of
``[0, T]`` their horizontal distance is below R **and** their vertical distance below H
at that same moment. For a pair the horizontal window ``|dp + dv t| < R`` and the
vertical window ``|dz + dvz t| < H`` are open intervals solved in closed form, then
intersected with each other and with the look-ahead.

**Motion.** A track flies the geodesic that leaves its position along its track angle
(degrees from true north) at constant ground speed, and climbs at constant vertical
speed. Positions are projected into a :class:`~deconflict.geo.Frame` (secant oblique
stereographic, conformal). There the track moves along the *chord* of its path over the
look-ahead: the velocity is the true velocity turned by the frame's meridian
convergence and scaled by its scale factor at the track, plus half the curvature term of
a geodesic in the conformal plane over ``T`` (second order), so the chord's ends are the
geodesic's at 0 and T. The gap to the geodesic is at most about ``c L²/8`` at mid-chord
(``c`` the geodesic's curvature in the plane, about ``ρ / 2R²`` at ``ρ`` from the frame's
centre, ``L`` the distance flown): 4 m at 450 km from the centre for 500 kt over 300 s,
and nearly the same for two close tracks, so their separation is off by much less.
Plane distances between a pair are divided by the frame's scale factor at the pair's
midpoint at closest approach (the scale varies by a few parts in 10⁵ over 10 km).
Horizontal distances are on the ellipsoid's surface (not at altitude).

**Reported figures** (``TrackConflictTable``):

- ``tcpa_s``: the moment of ``[0, T]`` when the two are horizontally closest: the
  closest approach of the extrapolated lines, ``-dp·dv/|dv|²``, clamped to ``[0, T]``
  (0 when the relative velocity is zero). Horizontal distance is convex in time, so this
  is the minimum over the look-ahead. BlueSky reports the same moment unclamped (it may be
  in the past or beyond T); a duty officer is told only what lies within the look-ahead.
- ``dcpa_m``: the horizontal distance at ``tcpa_s``, metres.
- ``t_in_s`` / ``t_out_s``: the conflict window within ``[0, T]``: both distances below
  the minima strictly inside it (``t_in_s`` 0 when separation is already lost).

"Below" is strict, by ``STRICT_M`` (1 µm): altitudes converted from whole feet exactly H
apart are not a conflict even where binary rounding leaves a residue of 10⁻¹² m.

The broad phase (``_grid._Grid``) cuts the look-ahead into time slices. In each slice,
each track's path is boxed (in x, y and altitude, grown by half the minima) and the boxes
are dropped into a uniform grid of cells and altitude bands; only pairs whose boxes share
a cell and overlap become candidates (each once, in the cell holding the low corner of
their overlap), and a conflict is kept from the slice that holds its ``t_in_s``. Slices
run in threads. Memory grows with the number of tracks and of candidates (in chunks of
``PAIR_CHUNK``), never with N². ``brute_force_track_conflicts`` runs the same exact test
on every pair and gives identical results.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from deconflict.errors import InvalidInput
from deconflict.tactical._grid import PAIR_CHUNK, _Grid
from deconflict.tactical._motion import MAX_FRAME_RADIUS_M, _frames, _Plane, _plane
from deconflict.tactical._refine import refine, screen_error_m
from deconflict.tactical.tracks import TrackConflictTable, Tracks
from deconflict.units import FT_M, NM_M

__all__ = [
    "DEFAULT_HPZ_M",
    "DEFAULT_LOOKAHEAD_S",
    "DEFAULT_RPZ_M",
    "SLICES",
    "STRICT_M",
    "THREADS",
    "THREADS_FROM",
    "brute_force_track_conflicts",
    "find_track_conflicts",
]

DEFAULT_RPZ_M = 5 * NM_M
"""Horizontal separation R, metres (5 NM: 9260 m)."""
DEFAULT_HPZ_M = 1000 * FT_M
"""Vertical separation H, metres (1000 ft: 304.8 m)."""
DEFAULT_LOOKAHEAD_S = 300.0
"""Look-ahead T, seconds."""
STRICT_M = 1e-6
"""Distances must be below the minima by more than this (metres) to count as a conflict."""
SLICES = 4
"""Time slices of the look-ahead in the broad phase."""
THREADS = min(os.cpu_count() or 1, 4)
"""Threads that work on time slices at once (numpy releases the GIL in its loops)."""
THREADS_FROM = 2000
"""Fewest tracks in a frame for which slices are worked on in threads."""


def _exact(
    p: _Plane,
    i: np.ndarray,
    j: np.ndarray,
    rpz_m: float,
    hpz_m: float,
    lookahead_s: float,
    error_m: Any = None,
) -> tuple[np.ndarray, ...]:
    """The frame's exact test on pairs (``i`` before ``j`` in id order), with the frame's error E (``error_m``).

    Returns (maybe, sure, tcpa, dcpa, t_in, t_out, t_in at R + E): ``maybe`` is the test with
    R + E (the pair may conflict), ``sure`` with R - E (it does, whatever the frame's error);
    the figures are the frame's, with R. E is each pair's own bound (``screen_error_m``)
    unless given.
    """
    x, y, vx, vy = p.x, p.y, p.vx, p.vy
    if error_m is None:  # the pair's own bound, from how far from the centre it flies
        far = np.maximum(p.rho[i], p.rho[j]) + np.maximum(p.flown[i], p.flown[j])
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
        k = p.frame.scale((x[i] + x[j] + (vx[i] + vx[j]) * tc) / 2, (y[i] + y[j] + (vy[i] + vy[j]) * tc) / 2)
        cross2 = np.where(moving, (dx * ey - dy * ex) ** 2, dx * dx + dy * dy)  # relative path to the origin, squared

        def window(r_m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            r = r_m * k - STRICT_M
            gap2 = r * r - cross2
            chord = np.sqrt(np.maximum(gap2, 0.0))  # half the relative path's length inside R
            h_in = np.where(moving, (-along - chord) / speed, -np.inf)
            h_out = np.where(moving, (-along + chord) / speed, np.inf)
            return gap2 > 0.0, h_in, h_out

        h = hpz_m - STRICT_M
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


def _check_minima(rpz_m: float, hpz_m: float, lookahead_s: float) -> None:
    for name, value in (("rpz_m", rpz_m), ("hpz_m", hpz_m), ("lookahead_s", lookahead_s)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"{name}: must be a number above 0, got {value!r}", field=name)


class _Found:
    """Conflicts gathered across frames and chunks, in rank numbering, and the pairs left to refine."""

    def __init__(self) -> None:
        self.cols: list[tuple[np.ndarray, ...]] = []
        self.doubt: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, members: np.ndarray, i: np.ndarray, j: np.ndarray, res: tuple[np.ndarray, ...]) -> None:
        """Rows of ``_exact``: sure pairs kept with the frame's figures, the others that may conflict set aside."""
        maybe, sure, *figures = res
        if np.any(sure):
            self.cols.append((members[i[sure]], members[j[sure]], *(c[sure] for c in figures[:4])))
        doubt = maybe & ~sure
        if np.any(doubt):
            self.doubt.append((members[i[doubt]], members[j[doubt]]))

    def table(
        self, tracks: Tracks, order: np.ndarray, rpz_m: float, hpz_m: float, lookahead_s: float
    ) -> TrackConflictTable:
        """The sorted table, once every pair in doubt has been decided on the ellipsoid (``_refine.refine``)."""
        if self.doubt:
            ra, rb = (np.concatenate(c) for c in zip(*self.doubt, strict=True))
            ok, *figures = refine(tracks, order[ra], order[rb], rpz_m, hpz_m, lookahead_s, STRICT_M)
            self.cols.append((ra[ok], rb[ok], *(c[ok] for c in figures)))
        if not self.cols:
            e = np.empty(0, dtype=np.int64)
            return TrackConflictTable(e, e, np.empty(0), np.empty(0), np.empty(0), np.empty(0))
        ra, rb, *rest = (np.concatenate(c) for c in zip(*self.cols, strict=True))
        key = ra * np.int64(len(order)) + rb
        s = np.argsort(key, kind="stable")
        return TrackConflictTable(order[ra[s]], order[rb[s]], *(c[s] for c in rest))


def _prepare(tracks: Tracks, rpz_m: float, hpz_m: float, lookahead_s: float) -> np.ndarray:
    _check_minima(rpz_m, hpz_m, lookahead_s)
    return np.array(sorted(range(len(tracks)), key=tracks.ids.__getitem__), dtype=np.int64)


def _margin_m(tracks: Tracks, rpz_m: float, lookahead_s: float) -> float:
    """Farthest apart (metres, generously) two tracks can be now and still conflict within the look-ahead.

    R is grown by the screen's error in the widest frame a split input can have.
    """
    gs = float(tracks.gs_mps.max())
    flown = gs * lookahead_s
    wide = rpz_m + float(screen_error_m(4 * MAX_FRAME_RADIUS_M + flown, flown, flown, rpz_m))
    return 1.01 * (wide + 2 * gs * lookahead_s) + 1.0


def _in_frames(
    tracks: Tracks, order: np.ndarray, rpz_m: float, lookahead_s: float
) -> Iterator[tuple[np.ndarray, np.ndarray, _Plane, float]]:
    """(members, home, plane, largest screen error E in metres) for each frame the input is measured in."""
    gs = float(tracks.gs_mps.max())
    for frame, members, home in _frames(tracks, order, _margin_m(tracks, rpz_m, lookahead_s)):
        p = _plane(frame, tracks.lat_deg, tracks.lon_deg, tracks, order[members], lookahead_s)
        flown = gs * lookahead_s
        far = max(frame.radius_m, float(p.rho.max())) + flown  # bounds every pair's own E (the grid's growth)
        yield members, home, p, float(screen_error_m(far, flown, flown, rpz_m))


def brute_force_track_conflicts(
    tracks: Tracks,
    *,
    rpz_m: float = DEFAULT_RPZ_M,
    hpz_m: float = DEFAULT_HPZ_M,
    lookahead_s: float = DEFAULT_LOOKAHEAD_S,
) -> TrackConflictTable:
    """The O(N²) reference: the exact test on every pair, no broad phase (one row of pairs at a time)."""
    order = _prepare(tracks, rpz_m, hpz_m, lookahead_s)
    found = _Found()
    if len(tracks) < 2:
        return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)
    for members, home, p, _ in _in_frames(tracks, order, rpz_m, lookahead_s):
        m = len(members)
        rows = max(1, PAIR_CHUNK // max(m, 1))
        for lo in range(0, m, rows):
            i = np.arange(lo, min(lo + rows, m))
            i = i[home[i]]
            ii = np.repeat(i, m)
            jj = np.tile(np.arange(m), len(i))
            keep = jj > ii
            ii, jj = ii[keep], jj[keep]
            found.add(members, ii, jj, _exact(p, ii, jj, rpz_m, hpz_m, lookahead_s)[:6])
    return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)


def find_track_conflicts(
    tracks: Tracks,
    *,
    rpz_m: float = DEFAULT_RPZ_M,
    hpz_m: float = DEFAULT_HPZ_M,
    lookahead_s: float = DEFAULT_LOOKAHEAD_S,
    slices: int = SLICES,
) -> TrackConflictTable:
    """Every pair of tracks predicted to lose separation within the look-ahead, id of a < id of b, sorted.

    ``rpz_m`` (R) and ``hpz_m`` (H) are the horizontal and vertical minima in metres,
    ``lookahead_s`` (T) the look-ahead in seconds; all must be above 0.

    Head-on at 400 m/s closing speed, 91.8 km apart: closest at 229.6 s, less than
    9260 m apart from 206.5 s to 252.8 s (9260 / 400 = 23.15 s either side).

    >>> t = Tracks.of(["E", "W"], [34.5, 34.5], [37.0, 38.0], [9000.0] * 2, [200.0] * 2, [90.0, 270.0], [0.0] * 2)
    >>> c = find_track_conflicts(t).conflicts(t)[0]
    >>> c.a, c.b, round(c.tcpa_s, 1), round(c.dcpa_m, 1), round(c.t_in_s, 1), round(c.t_out_s, 1)
    ('E', 'W', 229.6, 0.0, 206.5, 252.8)
    """
    order = _prepare(tracks, rpz_m, hpz_m, lookahead_s)
    found = _Found()
    if len(tracks) < 2:
        return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)
    for members, home, p, error_m in _in_frames(tracks, order, rpz_m, lookahead_s):
        grid = _Grid(p, rpz_m + error_m, hpz_m, lookahead_s, slices)

        def one_slice(s: int, p: _Plane = p, grid: _Grid = grid, home: np.ndarray = home) -> list[tuple[Any, ...]]:
            out = []
            for i, j in grid.pairs(s):
                keep = home[i]
                i, j = i[keep], j[keep]
                *res, t_wide = _exact(p, i, j, rpz_m, hpz_m, lookahead_s)
                mine = np.minimum(np.floor(t_wide * (slices / lookahead_s)), slices - 1) == s  # slice of t_in at R + E
                keep = res[0] & mine
                out.append((i[keep], j[keep], *(c[keep] for c in res)))
            return out

        if len(members) >= THREADS_FROM and slices > 1:
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                parts = list(pool.map(one_slice, range(slices)))
        else:
            parts = [one_slice(s) for s in range(slices)]
        for part in parts:
            for i, j, *res in part:
                found.add(members, i, j, tuple(res))
    return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)
