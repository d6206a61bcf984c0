"""Tactical detection: straight-line extrapolated tracks, closest approach and predicted loss of separation;
conformance of positions to notified volumes (``tracks_in_volumes``).

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

The broad phase (:class:`_Grid`) cuts the look-ahead into time slices. In each slice,
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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely

from deconflict.errors import InvalidInput
from deconflict.geo import WGS84, Frame, footprint_bounds
from deconflict.model import Volume

DEFAULT_RPZ_M = 9260.0
"""Horizontal separation R, metres (5 NM)."""
DEFAULT_HPZ_M = 304.8
"""Vertical separation H, metres (1000 ft)."""
DEFAULT_LOOKAHEAD_S = 300.0
"""Look-ahead T, seconds."""
STRICT_M = 1e-6
"""Distances must be below the minima by more than this (metres) to count as a conflict."""
MAX_FRAME_RADIUS_M = 1_000_000.0
"""Widest area measured in one frame; wider inputs are split into cells with a frame each."""
CELL_DEG = 8.0
"""Size of the cells (degrees) that own tracks when an input is split into several frames."""
SLICES = 4
"""Time slices of the look-ahead in the broad phase."""
CELL_SPEED = 1.0
"""Grid cell side, in distance flown in one slice at the 90th percentile of speed (plus R)."""
BAND_FACTOR = 2.0
"""Altitude band height, in multiples of H."""
THREADS = min(os.cpu_count() or 1, 4)
"""Threads that work on time slices at once (numpy releases the GIL in its loops)."""
THREADS_FROM = 2000
"""Fewest tracks in a frame for which slices are worked on in threads."""
PAIR_CHUNK = 500_000
"""Most candidate pairs formed at once (bounds the broad phase's working memory)."""
_DLAT_DEG = 1e-4
"""Latitude step used to measure the frame's north direction and scale at each track."""
_E2 = WGS84.es


@dataclass(frozen=True)
class Tracks:
    """Track states at one instant, as columns (one row per track).

    ``ids`` are strings; positions WGS84 degrees; ``alt_m`` metres above mean sea level;
    ``gs_mps`` ground speed and ``vs_mps`` vertical speed in metres per second;
    ``trk_deg`` track angle in degrees clockwise from true north.
    """

    ids: list[str]
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    alt_m: np.ndarray
    gs_mps: np.ndarray
    trk_deg: np.ndarray
    vs_mps: np.ndarray

    @classmethod
    def of(
        cls, ids: Sequence[Any], lat_deg: Any, lon_deg: Any, alt_m: Any, gs_mps: Any, trk_deg: Any, vs_mps: Any
    ) -> Tracks:
        """Columns checked: same lengths, finite numbers, positions on the globe, speeds not negative, ids unique.

        >>> t = Tracks.of(["A"], [34.5], [37.6], [3000.0], [100.0], [90.0], [0.0])
        >>> len(t), t.ids
        (1, ['A'])
        """
        names = [str(i) for i in ids]
        cols = {
            "lat_deg": lat_deg,
            "lon_deg": lon_deg,
            "alt_m": alt_m,
            "gs_mps": gs_mps,
            "trk_deg": trk_deg,
            "vs_mps": vs_mps,
        }
        arrays = {}
        for name, value in cols.items():
            a = np.atleast_1d(np.asarray(value, dtype=float))
            if a.shape != (len(names),):
                raise InvalidInput(f"{name}: expected {len(names)} values, one per track, got {a.shape}", field=name)
            bad = np.flatnonzero(~np.isfinite(a))
            if len(bad):
                raise InvalidInput(f"track {names[bad[0]]!r}: {name} is not a finite number", field=name)
            arrays[name] = a
        checks = (
            ("lat_deg", np.abs(arrays["lat_deg"]) > 90.0, "latitude is outside -90..90"),
            ("lon_deg", np.abs(arrays["lon_deg"]) > 180.0, "longitude is outside -180..180"),
            ("gs_mps", arrays["gs_mps"] < 0.0, "ground speed is negative"),
        )
        for name, wrong, why in checks:
            if np.any(wrong):
                raise InvalidInput(f"track {names[int(np.argmax(wrong))]!r}: {why}", field=name)
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
            raise InvalidInput(f"track {dup!r} appears more than once", field="id")
        return cls(names, **arrays)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class TrackConflict:
    """Two tracks predicted to lose separation within the look-ahead (times in seconds from now)."""

    a: str
    b: str
    tcpa_s: float
    """Moment of horizontal closest approach within ``[0, T]``."""
    dcpa_m: float
    """Horizontal distance at ``tcpa_s``, metres."""
    t_in_s: float
    """Start of the loss of separation (0 when already lost)."""
    t_out_s: float
    """End of the loss of separation, capped at T."""

    def to_json(self) -> dict[str, Any]:
        """The object ``deconflict tracks`` prints for it."""
        return {
            "a": self.a,
            "b": self.b,
            "tcpa_s": self.tcpa_s,
            "dcpa_m": self.dcpa_m,
            "t_in_s": self.t_in_s,
            "t_out_s": self.t_out_s,
        }


@dataclass(frozen=True)
class TrackConflictTable:
    """Track conflicts as columns, one row per pair; ``a``/``b`` index the tracks, id of a < id of b, sorted."""

    a: np.ndarray
    b: np.ndarray
    tcpa_s: np.ndarray
    dcpa_m: np.ndarray
    t_in_s: np.ndarray
    t_out_s: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def conflicts(self, tracks: Tracks) -> list[TrackConflict]:
        """The rows as TrackConflict objects."""
        ids = tracks.ids
        rows = zip(
            self.a.tolist(),
            self.b.tolist(),
            self.tcpa_s.tolist(),
            self.dcpa_m.tolist(),
            self.t_in_s.tolist(),
            self.t_out_s.tolist(),
            strict=True,
        )
        return [TrackConflict(ids[a], ids[b], tc, dc, ti, to) for a, b, tc, dc, ti, to in rows]


@dataclass(frozen=True)
class _Plane:
    """Tracks (in id order) moving in straight lines in one frame: plane metres and metres per second."""

    frame: Frame
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    z: np.ndarray
    vz: np.ndarray


def _meridian_radius_m(lat_deg: np.ndarray) -> np.ndarray:
    s = np.sin(np.radians(lat_deg))
    return WGS84.a * (1 - _E2) / (1 - _E2 * s * s) ** 1.5


def _plane(frame: Frame, lat: np.ndarray, lon: np.ndarray, t: Tracks, k: np.ndarray, lookahead_s: float) -> _Plane:
    """Project tracks ``k`` (indices into ``t``) into ``frame`` as chords of their geodesics over the look-ahead."""
    lat, lon = lat[k], lon[k]
    x, y = frame.to_xy(lon, lat)
    step = np.where(lat + _DLAT_DEG > 90.0, -_DLAT_DEG, _DLAT_DEG)
    xn, yn = frame.to_xy(lon, lat + step)
    ground = _meridian_radius_m(lat + step / 2) * np.radians(step)
    nx, ny = (xn - x) / ground, (yn - y) / ground  # plane metres per ground metre northwards
    trk = np.radians(t.trk_deg[k])
    ve, vn = t.gs_mps[k] * np.sin(trk), t.gs_mps[k] * np.cos(trk)
    vx, vy = ve * ny + vn * nx, -ve * nx + vn * ny  # east is north turned 90° clockwise (conformal)
    # geodesic in the metric ds = |dp| / k: p'' = 2 (∇k·v / k) v - |v|² ∇k / k, with k from Frame.scale
    kk = frame.scale(x, y)
    gx, gy = x / (2 * frame.r_m**2 * frame.k0 * kk), y / (2 * frame.r_m**2 * frame.k0 * kk)
    gv = 2 * (gx * vx + gy * vy)
    vv = vx * vx + vy * vy
    half_t = lookahead_s / 2
    vx, vy = vx + half_t * (gv * vx - vv * gx), vy + half_t * (gv * vy - vv * gy)
    return _Plane(frame, x, y, vx, vy, t.alt_m[k], t.vs_mps[k])


def _frames(t: Tracks, order: np.ndarray, margin_m: float) -> list[tuple[Frame, np.ndarray, np.ndarray]]:
    """(frame, member ranks, home mask over members) groups; a pair is measured in the frame of its lower id's cell.

    ``order`` lists track indices in id order (rank → index). One frame when the area fits
    in ``MAX_FRAME_RADIUS_M``; otherwise cells of ``CELL_DEG`` own the tracks whose positions
    fall in them, and each cell's frame holds every track within ``margin_m`` of its own.
    """
    lat, lon = t.lat_deg[order], t.lon_deg[order]
    n = len(order)
    whole = Frame.for_bounds((lon.min(), lat.min(), lon.max(), lat.max()))
    if whole.radius_m <= MAX_FRAME_RADIUS_M:
        return [(whole, np.arange(n), np.ones(n, dtype=bool))]
    cells = np.floor((lat + 90.0) / CELL_DEG).astype(np.int64) * 1000 + np.floor((lon + 180.0) / CELL_DEG).astype(
        np.int64
    )
    dlat = margin_m / 110_000.0 * 1.01 + 1e-6
    groups = []
    for cell in np.unique(cells):
        home = cells == cell
        lat_min, lat_max = lat[home].min() - dlat, lat[home].max() + dlat
        near_lat = (lat >= lat_min) & (lat <= lat_max)
        c_lon = float(np.mean(lon[home]))
        rel = (lon - c_lon + 180.0) % 360.0 - 180.0
        rel_home = rel[home]
        if lat_min <= -89.0 or lat_max >= 89.0:
            near = near_lat
        else:
            coslat = math.cos(math.radians(max(abs(lat_min), abs(lat_max))))
            dlon = margin_m / (111_000.0 * coslat) * 1.01 + 1e-6
            near = near_lat & (rel >= rel_home.min() - dlon) & (rel <= rel_home.max() + dlon)
        members = np.flatnonzero(near)
        unwrapped = c_lon + rel[members]
        b = (unwrapped.min(), lat[members].min(), unwrapped.max(), lat[members].max())
        f = Frame.for_bounds(b)
        f = Frame((f.lon0 + 180.0) % 360.0 - 180.0, f.lat0, f.radius_m)
        groups.append((f, members, home[members]))
    return groups


def _exact(
    p: _Plane, i: np.ndarray, j: np.ndarray, rpz_m: float, hpz_m: float, lookahead_s: float
) -> tuple[np.ndarray, ...]:
    """The exact test on pairs (``i`` before ``j`` in id order): (conflict mask, tcpa, dcpa, t_in, t_out)."""
    x, y, vx, vy = p.x, p.y, p.vx, p.vy
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
        r = rpz_m * k - STRICT_M
        cross = dx * ey - dy * ex  # distance of the relative path from the origin
        gap2 = r * r - np.where(moving, cross * cross, dx * dx + dy * dy)
        chord = np.sqrt(np.maximum(gap2, 0.0))  # half the relative path's length inside R
        h_in = np.where(moving, (-along - chord) / speed, -np.inf)
        h_out = np.where(moving, (-along + chord) / speed, np.inf)
        h = hpz_m - STRICT_M
        climbing = uz != 0.0
        v1, v2 = (-h - dz) / uz, (h - dz) / uz
        level_in = np.abs(dz) < h
        v_in = np.where(climbing, np.minimum(v1, v2), np.where(level_in, -np.inf, np.inf))
        v_out = np.where(climbing, np.maximum(v1, v2), np.where(level_in, np.inf, -np.inf))
    lo, hi = np.maximum(h_in, v_in), np.minimum(h_out, v_out)
    ok = (gap2 > 0.0) & (lo < hi) & (lo < lookahead_s) & (hi > 0.0)
    dcpa = np.hypot(dx + ux * tc, dy + uy * tc) / k
    return ok, tc, dcpa, np.maximum(lo, 0.0), np.minimum(hi, lookahead_s)


def _check_minima(rpz_m: float, hpz_m: float, lookahead_s: float) -> None:
    for name, value in (("rpz_m", rpz_m), ("hpz_m", hpz_m), ("lookahead_s", lookahead_s)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"{name}: must be a number above 0, got {value!r}", field=name)


class _Found:
    """Conflicts gathered across frames and chunks, in rank numbering."""

    def __init__(self) -> None:
        self.cols: list[tuple[np.ndarray, ...]] = []

    def add(self, members: np.ndarray, i: np.ndarray, j: np.ndarray, res: tuple[np.ndarray, ...]) -> None:
        ok = res[0]
        if np.any(ok):
            self.cols.append((members[i[ok]], members[j[ok]], *(c[ok] for c in res[1:])))

    def table(self, order: np.ndarray) -> TrackConflictTable:
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
    """Farthest apart (metres, generously) two tracks can be now and still conflict within the look-ahead."""
    return 1.01 * (rpz_m + 2 * float(tracks.gs_mps.max()) * lookahead_s) + 1.0


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
        return found.table(order)
    for frame, members, home in _frames(tracks, order, _margin_m(tracks, rpz_m, lookahead_s)):
        p = _plane(frame, tracks.lat_deg, tracks.lon_deg, tracks, order[members], lookahead_s)
        m = len(members)
        rows = max(1, PAIR_CHUNK // max(m, 1))
        for lo in range(0, m, rows):
            i = np.arange(lo, min(lo + rows, m))
            i = i[home[i]]
            ii = np.repeat(i, m)
            jj = np.tile(np.arange(m), len(i))
            keep = jj > ii
            ii, jj = ii[keep], jj[keep]
            found.add(members, ii, jj, _exact(p, ii, jj, rpz_m, hpz_m, lookahead_s))
    return found.table(order)


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
        return found.table(order)
    for frame, members, home in _frames(tracks, order, _margin_m(tracks, rpz_m, lookahead_s)):
        p = _plane(frame, tracks.lat_deg, tracks.lon_deg, tracks, order[members], lookahead_s)
        grid = _Grid(p, rpz_m, hpz_m, lookahead_s, slices)

        def one_slice(s: int, p: _Plane = p, grid: _Grid = grid, home: np.ndarray = home) -> list[tuple[Any, ...]]:
            out = []
            for i, j in grid.pairs(s):
                keep = home[i]
                i, j = i[keep], j[keep]
                ok, *res = _exact(p, i, j, rpz_m, hpz_m, lookahead_s)
                ok &= np.minimum(np.floor(res[2] * (slices / lookahead_s)), slices - 1) == s  # slice of t_in
                out.append((i[ok], j[ok], *(c[ok] for c in res)))
            return out

        if len(members) >= THREADS_FROM and slices > 1:
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                parts = list(pool.map(one_slice, range(slices)))
        else:
            parts = [one_slice(s) for s in range(slices)]
        for part in parts:
            for i, j, *res in part:
                found.add(members, i, j, (np.ones(len(i), dtype=bool), *res))
    return found.table(order)


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


def tracks_in_volumes(
    lon_deg: Any, lat_deg: Any, alt_m: Any, at: datetime, volumes: Sequence[Volume], *, tolerance_m: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Conformance: (track index, volume index) pairs where a position at ``at`` is inside a volume, sorted.

    Inside, with ``tolerance_m`` metres of slack: the window holds ``at`` (``start <= at < end``,
    None unbounded), ``floor_m - tolerance_m <= alt_m <= ceiling_m + tolerance_m``, and the
    ground distance to the footprint is at most ``tolerance_m`` (0 inside).
    Positions are WGS84 degrees and metres above mean sea level; ``at`` is aware UTC.

    >>> from datetime import UTC, datetime
    >>> from deconflict.geo import parse_footprint
    >>> circle = parse_footprint({"type": "Point", "coordinates": [37.63, 34.52]}, 10_000)
    >>> v = Volume("v", circle, 0.0, 3000.0, None, None)
    >>> now = datetime(2025, 4, 9, tzinfo=UTC)
    >>> t, _ = tracks_in_volumes([37.63, 37.75, 37.63], [34.52, 34.52, 34.52], [1000.0, 1000.0, 3100.0], now, [v])
    >>> t.tolist(), tracks_in_volumes([37.63], [34.52], [3100.0], now, [v], tolerance_m=150)[0].tolist()
    ([0], [0])
    """
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=float))
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=float))
    alt = np.atleast_1d(np.asarray(alt_m, dtype=float))
    if not (math.isfinite(tolerance_m) and tolerance_m >= 0):
        raise InvalidInput(f"tolerance_m: must be 0 or more, got {tolerance_m!r}", field="tolerance_m")
    live = [k for k, v in enumerate(volumes) if (v.start is None or v.start <= at) and (v.end is None or at < v.end)]
    none = np.empty(0, dtype=np.int64)
    if len(lon) == 0 or not live:
        return none, none
    fb = footprint_bounds([volumes[k].footprint for k in live])
    bounds = (
        min(fb[:, 0].min(), lon.min()),
        min(fb[:, 1].min(), lat.min()),
        max(fb[:, 2].max(), lon.max()),
        max(fb[:, 3].max(), lat.max()),
    )
    frame = Frame.for_bounds(bounds)
    geoms, radii = frame.project_footprints([volumes[k].footprint for k in live])
    env = frame.envelopes(geoms, radii)
    pad = tolerance_m * float(np.max(frame.scale(env[:, [0, 2, 0, 2]].ravel(), env[:, [1, 1, 3, 3]].ravel())))
    pad = pad * 1.001 + 1.0
    tree = shapely.STRtree(shapely.box(env[:, 0] - pad, env[:, 1] - pad, env[:, 2] + pad, env[:, 3] + pad))
    x, y = frame.to_xy(lon, lat)
    points = shapely.points(x, y)
    ti, vi = tree.query(points)
    floor = np.array([volumes[k].floor_m for k in live])
    ceiling = np.array([volumes[k].ceiling_m for k in live])
    ok = (alt[ti] >= floor[vi] - tolerance_m) & (alt[ti] <= ceiling[vi] + tolerance_m)
    ti, vi = ti[ok], vi[ok]
    if len(ti):
        ok = frame.ground_distance(points[ti], 0.0, geoms[vi], radii[vi]) <= tolerance_m
        ti, vi = ti[ok], vi[ok]
    vi = np.asarray(live, dtype=np.int64)[vi]
    order = np.lexsort((vi, ti))
    return ti[order].astype(np.int64), vi[order]
