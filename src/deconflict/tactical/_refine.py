"""Exact refinement of one pair in a frame of its own, and the error budget of the shared frame's screen.

The broad phase and the first exact test measure every track in one frame fitted to the
whole input (``_motion``). That frame's distances are off by a few metres, and by how much
depends on where the pair lies in it, so on the *other* tracks. Two things keep a pair's
answer its own:

- :func:`screen_error_m` bounds, for a frame, how far the frame's horizontal distance
  between two tracks may be from the distance on the ellipsoid at any moment of the
  look-ahead (both tracks' chord errors, which add when they cross, plus the scale
  factor's change along the pair). A pair whose verdict is the same with R - E and
  R + E has that verdict on the ellipsoid too.
- :func:`refine` decides every other pair on the ellipsoid itself, from the pair's own
  two states only: positions come from :data:`~deconflict.geo.WGS84` (``Geod.fwd`` along
  each track's geodesic), and at each step the pair is put in the tangent frame of the
  geodesic joining the two (``Geod.inv``: the distance and both ends' azimuths; each
  velocity keeps its angle to that geodesic), where the relative motion is a straight
  line to first order. Closest approach and the moments at distance R are found by
  Newton steps in that frame, a fixed number of them, started from the pair's own state
  (never from the shared frame's estimate), so the answer is a function of the pair
  alone. Over the look-ahead the steps converge to well under a millimetre and a
  microsecond.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deconflict.geo import WGS84
from deconflict.tactical.tracks import Tracks

__all__ = ["CPA_STEPS", "ROOT_STEPS", "refine", "screen_error_m"]

CPA_STEPS = 6
"""Newton steps towards the closest approach, from the pair's state now."""
ROOT_STEPS = 5
"""Newton steps towards each moment at distance R, from the closest approach."""
_RE_MIN_M = 6_335_000.0
"""Smallest radius of curvature of the WGS84 ellipsoid (meridian, at the equator), metres."""
_SAFETY = 1.5
"""Factor on the analytic bound (it leaves out third-order terms)."""


def screen_error_m(rho_m: Any, flown_a_m: Any, flown_b_m: Any, rpz_m: float) -> Any:
    """Largest error (metres) of a pair's horizontal distance measured in a frame, at any moment of the look-ahead.

    ``rho_m`` is the farthest from the frame's centre either track gets, ``flown_*_m`` the
    distance each flies over the look-ahead (numbers or arrays). A track's chord strays
    from its geodesic by at most ``c L² / 8`` (``L`` the distance flown, ``c = ρ / 2 Re²``
    the geodesic's curvature in the plane at ``ρ`` from the centre); the two tracks' errors
    add when they cross. The distance is divided by the scale factor at the pair's midpoint
    at closest approach, which may lie ``L + R`` from the midpoint at another moment:
    ``R ρ (L + R) / 2 Re²`` more.
    """
    flown = np.maximum(flown_a_m, flown_b_m)
    chord = rho_m * (flown_a_m * flown_a_m + flown_b_m * flown_b_m) / (16.0 * _RE_MIN_M**2)
    scale = (rpz_m + 1.0) * rho_m * (flown + rpz_m) / (2.0 * _RE_MIN_M**2)
    return _SAFETY * (chord + scale) + 0.5


def _local(
    t: np.ndarray, i: tuple[np.ndarray, ...], j: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At moments ``t``: the pair's distance on the ellipsoid, and its relative velocity along and across it.

    ``i``/``j`` are (lon, lat, track, ground speed) of each pair's two tracks.
    """
    lon_i, lat_i, az_i = WGS84.fwd(i[0], i[1], i[2], i[3] * t, return_back_azimuth=False)
    lon_j, lat_j, az_j = WGS84.fwd(j[0], j[1], j[2], j[3] * t, return_back_azimuth=False)
    az12, az2, s = WGS84.inv(lon_i, lat_i, lon_j, lat_j, return_back_azimuth=False)
    a_i, a_j = np.radians(np.asarray(az_i) - az12), np.radians(np.asarray(az_j) - az2)
    along = j[3] * np.cos(a_j) - i[3] * np.cos(a_i)
    across = j[3] * np.sin(a_j) - i[3] * np.sin(a_i)
    return np.asarray(s), along, across


def _step_to_cpa(s: np.ndarray, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    uu = along * along + across * across
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(uu > 0.0, -s * along / uu, 0.0)


def _step_to_r(s: np.ndarray, along: np.ndarray, across: np.ndarray, r: float, sign: float) -> np.ndarray:
    """Step to where the straight relative path is at distance r: the earlier root (sign -1) or the later (+1)."""
    uu = along * along + across * across
    disc = np.maximum(uu * r * r - (s * across) ** 2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(uu > 0.0, (-s * along + sign * np.sqrt(disc)) / uu, 0.0)


def refine(
    tracks: Tracks, a: np.ndarray, b: np.ndarray, rpz_m: float, hpz_m: float, lookahead_s: float, strict_m: float
) -> tuple[np.ndarray, ...]:
    """The exact test on the ellipsoid for pairs (``a``, ``b`` track indices): (conflict, tcpa, dcpa, t_in, t_out).

    Same definitions as the frame's exact test (``predict._exact``), with distances measured
    by ``Geod.inv`` between positions given by ``Geod.fwd``. Each row depends on its own
    two tracks only.
    """
    cols = (tracks.lon_deg, tracks.lat_deg, tracks.trk_deg, tracks.gs_mps)
    i = tuple(c[a] for c in cols)
    j = tuple(c[b] for c in cols)
    n = len(a)
    t = np.zeros(n)
    s, along, across = _local(t, i, j)
    s0 = s
    for _ in range(CPA_STEPS):
        t = np.clip(t + _step_to_cpa(s, along, across), 0.0, lookahead_s)
        s, along, across = _local(t, i, j)
    tcpa, dcpa = t, s
    r = rpz_m - strict_m
    close = np.flatnonzero(dcpa < r)
    h_in, h_out = np.full(n, np.inf), np.full(n, -np.inf)
    if len(close):
        ic, jc = tuple(c[close] for c in i), tuple(c[close] for c in j)
        tc = tcpa[close]
        s_end = _local(np.full(len(close), lookahead_s), ic, jc)[0]
        for sign, low, high in ((-1.0, np.zeros_like(tc), tc), (1.0, tc, np.full_like(tc, lookahead_s))):
            u, sc, al, ac = tc, dcpa[close], along[close], across[close]
            for _ in range(ROOT_STEPS):
                u = np.clip(u + _step_to_r(sc, al, ac, r, sign), low, high)
                sc, al, ac = _local(u, ic, jc)
            if sign < 0:
                h_in[close] = np.where(s0[close] < r, -np.inf, u)
            else:
                h_out[close] = np.where(s_end < r, np.inf, u)
    dz = tracks.alt_m[b] - tracks.alt_m[a]
    uz = tracks.vs_mps[b] - tracks.vs_mps[a]
    h = hpz_m - strict_m
    with np.errstate(divide="ignore", invalid="ignore"):
        v1, v2 = (-h - dz) / uz, (h - dz) / uz
    climbing, level_in = uz != 0.0, np.abs(dz) < h
    v_in = np.where(climbing, np.minimum(v1, v2), np.where(level_in, -np.inf, np.inf))
    v_out = np.where(climbing, np.maximum(v1, v2), np.where(level_in, np.inf, -np.inf))
    lo, hi = np.maximum(h_in, v_in), np.minimum(h_out, v_out)
    ok = (dcpa < r) & (lo < hi) & (lo < lookahead_s) & (hi > 0.0)
    return ok, tcpa, dcpa, np.maximum(lo, 0.0), np.minimum(hi, lookahead_s)
