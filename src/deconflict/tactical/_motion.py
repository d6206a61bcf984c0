"""Tracks in the plane: each track's geodesic as a chord in a conformal frame, and frames for wide inputs.

The motion model is described in :mod:`deconflict.tactical.predict`. :func:`_plane` projects
tracks into a :class:`~deconflict.geo.Frame` as straight lines (position and velocity in plane
metres); :func:`_frames` chooses one frame, or one per cell when the input is too wide for one.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from deconflict.geo import WGS84, Frame
from deconflict.tactical.tracks import Tracks

__all__ = ["CELL_DEG", "MAX_FRAME_RADIUS_M", "_Plane", "_frames", "_plane"]

MAX_FRAME_RADIUS_M = 1_000_000.0
"""Widest area measured in one frame; wider inputs are split into cells with a frame each."""
CELL_DEG = 8.0
"""Size of the cells (degrees) that own tracks when an input is split into several frames."""
_DLAT_DEG = 1e-4
"""Latitude step used to measure the frame's north direction and scale at each track."""
_E2 = WGS84.es


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
    rho: np.ndarray
    """Each track's distance from the frame's centre now, ground metres (generously)."""
    flown: np.ndarray
    """Distance each track flies over the look-ahead, metres."""


def _meridian_radius_m(lat_deg: np.ndarray) -> np.ndarray:
    """The ellipsoid's radius of curvature along the meridian at each latitude, metres."""
    s = np.sin(np.radians(lat_deg))
    radius: np.ndarray = WGS84.a * (1 - _E2) / (1 - _E2 * s * s) ** 1.5
    return radius


def _plane(
    frame: Frame,
    lat: np.ndarray,
    lon: np.ndarray,
    t: Tracks,
    k: np.ndarray,
    lookahead_s: float,
    pool: Executor | None = None,
) -> _Plane:
    """Project tracks ``k`` (indices into ``t``) into ``frame`` as chords of their geodesics over the look-ahead.

    With a ``pool``, the two projections (each position, and a point just north of it) run at once (PROJ
    releases the GIL; pyproj's transformers are safe across threads).
    """
    lat, lon = lat[k], lon[k]
    step = np.where(lat + _DLAT_DEG > 90.0, -_DLAT_DEG, _DLAT_DEG)
    north = pool.submit(frame.to_xy, lon, lat + step) if pool is not None else None
    x, y = frame.to_xy(lon, lat)
    xn, yn = north.result() if north is not None else frame.to_xy(lon, lat + step)
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
    rho = np.hypot(x, y) / (frame.k0 * 0.999)
    return _Plane(frame, x, y, vx, vy, t.alt_m[k], t.vs_mps[k], rho, t.gs_mps[k] * lookahead_s)


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
