"""Conformance: which track positions lie inside which volumes at one instant.

Used to find a party's track outside every volume its party notified (conformance) and
inside another party's active volume (intrusion). Positions and footprints are measured in
one :class:`~deconflict.geo.Frame`; horizontal distances are on the ellipsoid's surface.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import numpy as np
import shapely

from deconflict.errors import InvalidInput
from deconflict.geo import Frame, footprint_bounds
from deconflict.model import Volume

__all__ = ["tracks_in_volumes"]


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
    points = cast(np.ndarray, shapely.points(x, y))  # arrays in, an array of points out
    ti, vi = tree.query(points)
    floor = np.array([volumes[k].floor_m for k in live])
    ceiling = np.array([volumes[k].ceiling_m for k in live])
    ok = (alt[ti] >= floor[vi] - tolerance_m) & (alt[ti] <= ceiling[vi] + tolerance_m)
    ti, vi = ti[ok], vi[ok]
    if len(ti):
        # a point on or in its footprint is at 0 m (shapely's shortest line has no length): only the others
        # are measured. Most tracks fly well inside their volumes: a prepared point-in-polygon test is about
        # a third of measuring (3,000 tracks in a rectangle: 3.1 ms against 8.7 ms in all)
        shapely.prepare(geoms)
        ok = shapely.intersects(geoms[vi], points[ti])
        rest = np.flatnonzero(~ok)
        if len(rest):
            ok[rest] = frame.ground_distance(points[ti[rest]], 0.0, geoms[vi[rest]], radii[vi[rest]]) <= tolerance_m
        ti, vi = ti[ok], vi[ok]
    vi = np.asarray(live, dtype=np.int64)[vi]
    order = np.lexsort((vi, ti))
    return ti[order].astype(np.int64), vi[order]
