"""Geodesy: footprints on the WGS84 ellipsoid, local conformal frames, ground distances in metres.

A footprint is either a polygon whose edges are straight lines in longitude/latitude
(RFC 7946, 3.1.1) or a geodesic circle (centre and radius in metres). Distances are
measured in a *frame*: a secant oblique stereographic projection centred on the area
of interest. Planar distances are corrected back to the ground with the frame's scale
factor along the measured segment (Simpson's rule on 1/k), which keeps the error far
below 0.1 % over areas of several hundred kilometres.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Polygon, mapping, shape

from deconflict.errors import InvalidInput

WGS84 = Geod(ellps="WGS84")
MAX_RADIUS_M = 500_000.0
"""Largest circle radius accepted, in metres."""
DENSIFY_DEG = 0.1
"""Longest polygon edge (degrees) before projection; keeps chord error under 2 m."""
CIRCLE_SEGMENTS = 64
"""Vertices used when a circle has to be drawn as a polygon (display, area checks)."""
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)


def _gaussian_radius_m(lat_deg: float) -> float:
    """Radius of the conformal sphere at a latitude: sqrt(M N), in metres."""
    s = math.sin(math.radians(lat_deg))
    w = 1 - _E2 * s * s
    m = _A * (1 - _E2) / w**1.5
    n = _A / math.sqrt(w)
    return math.sqrt(m * n)


@dataclass(frozen=True)
class Footprint:
    """Where an activity or zone is on the ground.

    ``geometry`` is a shapely Polygon or MultiPolygon in (lon, lat) degrees, or the
    centre Point of a geodesic circle of ``radius_m`` metres (``radius_m`` is 0 for
    polygons).
    """

    geometry: Any
    radius_m: float = 0.0

    @property
    def is_circle(self) -> bool:
        return self.radius_m > 0

    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) in degrees, circles included (see ``footprint_bounds``)."""
        lon_min, lat_min, lon_max, lat_max = footprint_bounds([self])[0].tolist()
        return lon_min, lat_min, lon_max, lat_max

    def to_geojson(self) -> dict[str, Any]:
        """The GeoJSON geometry (a Point for circles; pair it with ``radius_m``)."""
        return mapping(self.geometry)

    def as_polygon(self) -> Any:
        """The footprint as a lon/lat polygon (circles drawn with CIRCLE_SEGMENTS vertices)."""
        if self.is_circle:
            return Polygon(circle_ring(self.geometry.x, self.geometry.y, self.radius_m))
        return self.geometry


def circle_ring(lon: float, lat: float, radius_m: float, segments: int = CIRCLE_SEGMENTS) -> np.ndarray:
    """Closed ring of (lon, lat) points on the geodesic circle around a centre."""
    az = np.linspace(0.0, 360.0, segments, endpoint=False)
    lons, lats, _ = WGS84.fwd(np.full(segments, lon), np.full(segments, lat), az, np.full(segments, radius_m))
    ring = np.column_stack([lons, lats])
    return np.vstack([ring, ring[:1]])


BOUNDS_MARGIN = 1.001
"""Circles are bounded at this multiple of their radius (a margin for the frame and broad phase)."""
_EXTENT_STEP_DEG = 1.0
"""Azimuth step of the three samples that locate a circle's eastmost and westmost points."""
_BOUND_SLACK = 1.0 + 1e-6
"""Widens :func:`clear_of_antimeridian`'s bound beyond any rounding of its few operations."""


def _unwrap(lon: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Longitudes moved by whole turns to within 180° of ``centre`` (so they may leave -180..180)."""
    unwrapped: np.ndarray = centre + (lon - centre + 180.0) % 360.0 - 180.0
    return unwrapped


def _parabola_vertex(f_minus: np.ndarray, f_0: np.ndarray, f_plus: np.ndarray) -> np.ndarray:
    """Abscissa of the vertex of the parabola through (-1, f_minus), (0, f_0), (1, f_plus), clipped to -1..1."""
    curvature = f_minus - 2.0 * f_0 + f_plus
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(curvature != 0.0, 0.5 * (f_minus - f_plus) / curvature, 0.0)
    vertex: np.ndarray = np.clip(np.nan_to_num(x), -1.0, 1.0)
    return vertex


def circle_extents(lon: Any, lat: Any, radius_m: Any) -> np.ndarray:
    """True extent (west, south, east, north) in degrees of geodesic circles, one row per circle.

    Longitudes are unwrapped relative to each centre: a circle over the antimeridian has
    east > 180 or west < -180. The northmost and southmost points lie on the centre's
    meridian (azimuths 0° and 180°). The eastmost and westmost points, where the radius
    arrives heading due east or west, are located from the spherical azimuth
    ``acos(tan(r/a) tan(lat))``, refined on the ellipsoid by a parabola through three
    azimuths 1° apart, and measured with ``Geod.fwd`` (error below a millimetre).
    The circles must not reach a pole.

    >>> w, s, e, n = circle_extents(179.5, 0.0, 50_000.0)[0]
    >>> bool(e > 179.94 and e < 180.0 and abs(n + s) < 1e-9)
    True
    """
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    r = np.broadcast_to(np.asarray(radius_m, dtype=float), lon.shape)
    n = len(lon)
    if n == 0:
        return np.empty((0, 4))
    cos_az = np.clip(np.tan(r / _A) * np.tan(np.radians(lat)), -1.0, 1.0)
    east = np.degrees(np.arccos(cos_az))
    step = _EXTENT_STEP_DEG
    az = np.concatenate([np.zeros(n), np.full(n, 180.0)] + [east + k * step for k in (-1, 0, 1)])
    az = np.concatenate([az] + [-east + k * step for k in (-1, 0, 1)])
    lons, lats, _ = WGS84.fwd(np.tile(lon, 8), np.tile(lat, 8), az, np.tile(r, 8))
    lons = _unwrap(np.asarray(lons), np.tile(lon, 8)).reshape(8, n)
    lats = np.asarray(lats).reshape(8, n)
    e3, w3 = lons[2:5], lons[5:8]
    az2 = np.concatenate([east + step * _parabola_vertex(*e3), -east + step * _parabola_vertex(*(-w3))])
    lons2, _, _ = WGS84.fwd(np.tile(lon, 2), np.tile(lat, 2), az2, np.tile(r, 2))
    lons2 = _unwrap(np.asarray(lons2), np.tile(lon, 2)).reshape(2, n)
    return np.column_stack(
        [
            np.minimum(w3.min(axis=0), lons2[1]),
            lats[1],
            np.maximum(e3.max(axis=0), lons2[0]),
            lats[0],
        ]
    )


def clear_of_antimeridian(lon: Any, lat: Any, radius_m: Any) -> np.ndarray:
    """Whether each geodesic circle certainly stays clear of the antimeridian and the poles, from a bound
    that needs no geodesic (False: it may reach them; :func:`circle_extents` tells).

    Along a geodesic of length ``r`` the latitude moves at most ``r / M`` (``M``, the meridian's radius of
    curvature, is least at the equator: ``a (1 - e²)``), so every point of the circle lies within
    ``|lat| + r / a(1 - e²)`` of the equator; there a parallel's radius is at least ``a cos(that latitude)``
    (the prime vertical's radius is at least ``a``), so the longitude moves at most ``r / (a cos(...))``.
    A circle whose centre is further than that from ±180° (with a margin for rounding) cannot cross.

    >>> clear_of_antimeridian([38.0, 179.95, 0.0], [34.0, 0.0, 89.9], [8_000.0, 8_000.0, 8_000.0]).tolist()
    [True, False, False]
    """
    lon = np.abs(np.asarray(lon, dtype=float))
    lat = np.abs(np.asarray(lat, dtype=float))
    r = np.asarray(radius_m, dtype=float)
    lat_max = np.radians(lat) + r / (_A * (1.0 - _E2)) * _BOUND_SLACK
    clear = lat_max < np.radians(89.0)
    dlon = np.degrees(r / (_A * np.cos(np.minimum(lat_max, np.radians(89.0))))) * _BOUND_SLACK
    out: np.ndarray = clear & (lon + dlon < 179.999)
    return out


def footprint_bounds(footprints: Any) -> np.ndarray:
    """(min lon, min lat, max lon, max lat) in degrees of each footprint, one row per footprint.

    A circle is bounded by its true extent at ``BOUNDS_MARGIN`` × its radius (less where that
    would reach a pole), clamped to -180..180: a valid circle stops short of the antimeridian,
    so the clamp only trims the margin and never wraps round the globe.
    """
    n = len(footprints)
    out = np.empty((n, 4))
    if n == 0:
        return out
    radii = np.fromiter((f.radius_m for f in footprints), dtype=float, count=n)
    geoms = np.empty(n, dtype=object)
    geoms[:] = [f.geometry for f in footprints]
    circle = radii > 0
    if not np.all(circle):
        out[~circle] = shapely.bounds(geoms[~circle])
    if np.any(circle):
        centre = shapely.get_coordinates(geoms[circle])
        lat = centre[:, 1]
        r = radii[circle]
        to_pole_m = np.radians(90.0 - np.abs(lat)) * _A
        grown = np.minimum(r * BOUNDS_MARGIN, np.maximum(r, to_pole_m * (1.0 - 1e-9)))
        ext = circle_extents(centre[:, 0], lat, grown)
        out[circle] = np.column_stack(
            [
                np.maximum(ext[:, 0], -180.0),
                np.maximum(ext[:, 1], -90.0),
                np.minimum(ext[:, 2], 180.0),
                np.minimum(ext[:, 3], 90.0),
            ]
        )
    return out


def finite(value: Any, where: str) -> float:
    """``value`` as a float: a JSON number that is not NaN, infinite or beyond a double's range (an integer
    of hundreds of digits is refused by name, not turned into an overflow).

    Raises:
        InvalidInput: anything else, naming ``where``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where}: expected a number, got {value!r}", field=where)
    try:
        found = float(value)
    except OverflowError:  # an integer beyond 1.8e308 (its repr may itself be refused: over 4,300 digits)
        raise InvalidInput(f"{where}: expected a number, got one too large to use", field=where) from None
    if not math.isfinite(found):
        raise InvalidInput(f"{where}: expected a number, got {value!r}", field=where)
    return found


def _position(pos: Any, where: str) -> tuple[float, float]:
    if not isinstance(pos, (list, tuple)) or not 2 <= len(pos) <= 3:
        raise InvalidInput(f"{where}: a position is [longitude, latitude], got {pos!r}", field=where)
    lon = finite(pos[0], where)
    lat = finite(pos[1], where)
    if len(pos) == 3:  # GeoJSON's optional altitude: a number, unused (the band gives altitudes)
        finite(pos[2], where)
    if not -180.0 <= lon <= 180.0:
        raise InvalidInput(f"{where}: longitude {lon} is outside -180..180", field=where)
    if not -90.0 <= lat <= 90.0:
        raise InvalidInput(f"{where}: latitude {lat} is outside -90..90", field=where)
    return lon, lat


def _ring(coords: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(coords, list) or not coords:
        raise InvalidInput(f"{where}: the ring is empty", field=where)
    ring = [_position(p, f"{where}[{i}]") for i, p in enumerate(coords)]
    if len(ring) < 4:
        raise InvalidInput(
            f"{where}: a ring needs at least 4 positions (3 corners and the first repeated), got {len(ring)}",
            field=where,
        )
    if ring[0] != ring[-1]:
        raise InvalidInput(f"{where}: the ring is not closed; its last position must repeat the first", field=where)
    for (lon1, _), (lon2, _) in zip(ring, ring[1:], strict=False):
        if abs(lon2 - lon1) > 180.0:
            raise InvalidInput(
                f"{where}: the footprint crosses the antimeridian (180° longitude); split it in two", field=where
            )
    return ring


def parse_footprint(geometry: Any, radius_m: Any = None, *, where: str = "geometry") -> Footprint:
    """Validate a GeoJSON geometry (Polygon, MultiPolygon, or Point with a radius) into a Footprint.

    Every error names ``where`` and says what is wrong, for example
    ``volume 'v1' geometry.coordinates[0]: the ring is not closed``. To validate many
    footprints at once, use ``draft_footprint`` on each and ``build_footprints`` on all.
    """
    (built,) = build_footprints([draft_footprint(geometry, radius_m, where=where)])
    if isinstance(built, InvalidInput):
        raise built
    return built


@dataclass(frozen=True)
class FootprintDraft:
    """A footprint whose structure is checked; ``build_footprints`` checks the geometry and builds it."""

    where: str
    kind: str
    """Point, Polygon or MultiPolygon (the GeoJSON type)."""
    centre: tuple[float, float] = (0.0, 0.0)
    """(lon, lat) of a circle, degrees."""
    radius_m: float = 0.0
    polygons: tuple[list[list[tuple[float, float]]], ...] = ()
    """Each polygon's rings (shell first), each a closed list of (lon, lat)."""


def draft_footprint(geometry: Any, radius_m: Any = None, *, where: str = "geometry") -> FootprintDraft:
    """Check a GeoJSON geometry's structure (types, positions, rings, radius); errors as ``parse_footprint``."""
    if not isinstance(geometry, dict):
        raise InvalidInput(f"{where}: expected a GeoJSON geometry object", field=where)
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Point":
        lon, lat = _position(coords, f"{where}.coordinates")
        if radius_m is None:
            raise InvalidInput(f"{where}: a Point footprint needs radius_m (metres)", field="radius_m")
        r = finite(radius_m, "radius_m")
        if r <= 0:
            raise InvalidInput(f"radius_m: must be more than 0 m, got {r:g}", field="radius_m")
        if r > MAX_RADIUS_M:
            raise InvalidInput(f"radius_m: must be at most 500 km (500000 m), got {r:g}", field="radius_m")
        return FootprintDraft(where, "Point", centre=(lon, lat), radius_m=r)
    if kind == "Polygon":
        polygons: tuple[list[list[tuple[float, float]]], ...] = (_polygon_rings(coords, f"{where}.coordinates"),)
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise InvalidInput(f"{where}.coordinates: a MultiPolygon needs at least one polygon", field=where)
        polygons = tuple(_polygon_rings(p, f"{where}.coordinates[{i}]") for i, p in enumerate(coords))
    else:
        raise InvalidInput(
            f"{where}.type: expected Polygon, MultiPolygon or Point (with radius_m), got {kind!r}", field=where
        )
    if radius_m not in (None, 0):
        raise InvalidInput("radius_m: only a Point footprint takes a radius", field="radius_m")
    return FootprintDraft(where, kind, polygons=polygons)


def _polygon_rings(coords: Any, where: str) -> list[list[tuple[float, float]]]:
    """A polygon's rings, checked: the quick path for well-formed rings, ``_ring`` for the error message."""
    if not isinstance(coords, list) or not coords:
        raise InvalidInput(f"{where}: a polygon needs at least one ring", field=where)
    rings = []
    for i, r in enumerate(coords):
        ring = _quick_ring(r)
        rings.append(ring if ring is not None else _ring(r, f"{where}[{i}]"))
    return rings


def _quick_ring(coords: Any) -> list[tuple[float, float]] | None:
    """The ring when every check of ``_ring`` passes on plain [lon, lat] JSON numbers; None to let ``_ring`` explain.

    Each check is one pass of a builtin over the ring (types, finiteness, ranges, 180° jumps, closure).
    """
    if type(coords) is not list or len(coords) < 4 or set(map(type, coords)) != {list} or set(map(len, coords)) != {2}:
        return None
    lons, lats = zip(*coords, strict=True)
    if not set(map(type, lons)) | set(map(type, lats)) <= {float, int}:
        return None
    if min(lons) < -180.0 or max(lons) > 180.0 or min(lats) < -90.0 or max(lats) > 90.0:
        return None  # (first: an integer of hundreds of digits is out of range, and would overflow a sum)
    if not (math.isfinite(sum(lons)) and math.isfinite(sum(lats))):
        return None
    if max(map(abs, map(operator.sub, lons[1:], lons[:-1]))) > 180.0:
        return None
    ring = list(zip(map(float, lons), map(float, lats), strict=True))
    return ring if ring[0] == ring[-1] else None


def build_footprints(drafts: Any) -> list[Footprint | InvalidInput]:
    """Finish many drafts at once: circles against the antimeridian and the poles (by their true
    extent), polygons for validity and area. One result per draft: its Footprint or its error."""
    out: list[Footprint | InvalidInput | None] = [None] * len(drafts)
    circles = [k for k, d in enumerate(drafts) if d.kind == "Point"]
    if circles:
        lon = np.array([drafts[k].centre[0] for k in circles])
        lat = np.array([drafts[k].centre[1] for k in circles])
        r = np.array([drafts[k].radius_m for k in circles])
        pole = np.abs(lat) + np.degrees(r / _A) >= 90.0
        crosses = pole.copy()
        near = ~pole & ~clear_of_antimeridian(lon, lat, r)  # the others cannot cross: no need to measure
        if np.any(near):
            ext = circle_extents(lon[near], lat[near], r[near])
            crosses[near] = (ext[:, 0] < -180.0) | (ext[:, 2] > 180.0)
        points = np.asarray(shapely.points(lon, lat)).tolist()  # an array for array input (the stubs say maybe a Point)
        for k, point, radius, bad in zip(circles, points, r.tolist(), crosses.tolist(), strict=True):
            where = drafts[k].where
            out[k] = (
                InvalidInput(
                    f"{where}: the circle crosses the antimeridian or a pole; split it into polygons", field=where
                )
                if bad
                else Footprint(point, radius)
            )
    shapes = [k for k, d in enumerate(drafts) if d.kind != "Point"]
    if shapes:
        geoms = _polygons_of([drafts[k] for k in shapes])
        valid = shapely.is_valid(geoms)
        flat = shapely.area(geoms) == 0
        for k, geom, ok, no_area in zip(shapes, geoms.tolist(), valid.tolist(), flat.tolist(), strict=True):
            where = drafts[k].where
            if not ok:
                reason = shapely.is_valid_reason(geom)
                out[k] = InvalidInput(f"{where}: the polygon is not valid ({_explain(reason)})", field=where)
            elif no_area:
                out[k] = InvalidInput(f"{where}: the polygon has no area", field=where)
            else:
                out[k] = Footprint(geom, 0.0)
    return out  # type: ignore[return-value]


def _polygons_of(drafts: list[FootprintDraft]) -> np.ndarray:
    """Polygon and MultiPolygon geometries of polygon drafts, built in a few vectorised shapely calls."""
    coords: list[tuple[float, float]] = []
    ring_sizes: list[int] = []
    ring_polygon: list[int] = []
    polygon_owner: list[int] = []
    for m, draft in enumerate(drafts):
        for rings in draft.polygons:
            for ring in rings:
                coords.extend(ring)
                ring_sizes.append(len(ring))
                ring_polygon.append(len(polygon_owner))
            polygon_owner.append(m)
    ring_index = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
    # shapely returns arrays for array input (np.asarray says so to the type checker)
    all_rings = np.asarray(shapely.linearrings(np.array(coords, dtype=float), indices=ring_index))
    polygons = np.asarray(shapely.polygons(all_rings, indices=np.array(ring_polygon)))
    owner = np.array(polygon_owner)
    multi = np.array([d.kind == "MultiPolygon" for d in drafts])
    geoms = np.empty(len(drafts), dtype=object)
    single = ~multi[owner]
    geoms[owner[single]] = polygons[single]
    if np.any(multi):
        slot = np.cumsum(multi) - 1
        grouped = shapely.multipolygons(polygons[~single], indices=slot[owner[~single]])
        geoms[multi] = grouped
    return geoms


def _explain(reason: str) -> str:
    if reason.startswith("Self-intersection") or reason.startswith("Ring Self-intersection"):
        return "its edges cross each other: " + reason
    return reason


def footprint_from_geojson(geometry: dict[str, Any], radius_m: float = 0.0) -> Footprint:
    """Rebuild a stored, already validated footprint."""
    return Footprint(shape(geometry), float(radius_m or 0.0))


class Frame:
    """A secant oblique stereographic projection (metres) fitted to an area.

    The scale factor ``k`` is 1 - e at the centre and 1 + e at ``radius_m`` from it,
    and distances measured in the plane are divided by ``k`` along the segment.
    """

    def __init__(self, lon0: float, lat0: float, radius_m: float) -> None:
        self.lon0 = lon0 = float(lon0)
        self.lat0 = lat0 = float(lat0)
        self.radius_m = max(float(radius_m), 1000.0)
        self.r_m = _gaussian_radius_m(lat0)
        half = self.radius_m / self.r_m / 2
        self.k0 = 2.0 / (1.0 + 1.0 / math.cos(half) ** 2)
        self.proj = proj = (
            f"+proj=sterea +lat_0={lat0!r} +lon_0={lon0!r} +k_0={self.k0!r} +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
        )
        # A PROJ pipeline (degrees in, metres out) builds in under a millisecond; from_crs("EPSG:4326", ...)
        # gives the same projection but looks both systems up in PROJ's database (~50 ms per frame).
        deg = "+step +proj=unitconvert +xy_in=deg +xy_out=rad"
        self._fwd = Transformer.from_pipeline(f"+proj=pipeline {deg} +step {proj}")
        self._inv = Transformer.from_pipeline(f"+proj=pipeline +step +inv {proj} {deg} +inv")

    @classmethod
    def for_bounds(cls, bounds: tuple[float, float, float, float]) -> Frame:
        """The frame centred on a (min lon, min lat, max lon, max lat) box, covering all of it."""
        lon_min, lat_min, lon_max, lat_max = bounds
        lon0 = (lon_min + lon_max) / 2
        lat0 = (lat_min + lat_max) / 2
        corners_lon = [lon_min, lon_min, lon_max, lon_max, lon0, lon0, lon_min, lon_max]
        corners_lat = [lat_min, lat_max, lat_min, lat_max, lat_min, lat_max, lat0, lat0]
        _, _, dist = WGS84.inv([lon0] * 8, [lat0] * 8, corners_lon, corners_lat)
        return cls(round(lon0, 6), round(lat0, 6), float(np.max(dist)))

    def to_xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        """Project longitudes and latitudes (degrees) to frame metres."""
        x, y = self._fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)

    def to_lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Frame metres back to longitudes and latitudes (degrees)."""
        lon, lat = self._inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon), np.asarray(lat)

    def scale(self, x: Any, y: Any) -> np.ndarray:
        """Point scale factor k at frame coordinates (ground metres × k = plane metres)."""
        rho2 = np.asarray(x, dtype=float) ** 2 + np.asarray(y, dtype=float) ** 2
        k: np.ndarray = self.k0 * (1.0 + rho2 / (4.0 * self.r_m**2 * self.k0**2))
        return k

    def _transform_coords(self, coords: np.ndarray) -> np.ndarray:
        x, y = self._fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def project(self, geometries: Any) -> Any:
        """Project lon/lat shapely geometries (array or one) into the frame, densifying edges first."""
        dense = shapely.segmentize(geometries, DENSIFY_DEG)
        return shapely.transform(dense, self._transform_coords)

    def project_footprints(self, footprints: list[Footprint]) -> tuple[np.ndarray, np.ndarray]:
        """Frame geometries and radii (ground metres) for a list of footprints."""
        geoms = np.empty(len(footprints), dtype=object)
        geoms[:] = [f.geometry for f in footprints]
        radii = np.array([f.radius_m for f in footprints], dtype=float)
        return self.project(geoms), radii

    def envelopes(self, geoms: np.ndarray, radii: np.ndarray) -> np.ndarray:
        """Bounding boxes (xmin, ymin, xmax, ymax) in frame metres, circles grown to their radius."""
        b = shapely.bounds(geoms)
        if np.any(radii > 0):
            cx = (b[:, 0] + b[:, 2]) / 2
            cy = (b[:, 1] + b[:, 3]) / 2
            pad = radii * self.scale(cx, cy) * 1.001
            b = b + np.column_stack([-pad, -pad, pad, pad])
        return b

    def ground_distance(self, ga: Any, ra: Any, gb: Any, rb: Any) -> np.ndarray:
        """Ground distance in metres between footprints (0 when they touch or overlap), element-wise.

        ``ga``/``gb`` are frame geometries (circle centres for circles), ``ra``/``rb`` radii in
        ground metres. The planar length of shapely's shortest line between each pair is divided
        by the scale factor averaged along it (Simpson's rule on 1/k).
        """
        ga = np.atleast_1d(np.asarray(ga, dtype=object))
        gb = np.atleast_1d(np.asarray(gb, dtype=object))
        (n,) = np.broadcast_shapes(ga.shape, gb.shape)
        ra = np.broadcast_to(np.asarray(ra, dtype=float), (n,))
        rb = np.broadcast_to(np.asarray(rb, dtype=float), (n,))
        out = np.zeros(n)
        if n == 0:
            return out
        # one call for every pair (measured faster than splitting point pairs off to numpy)
        lines = shapely.shortest_line(ga, gb)
        xa, ya, xb, yb = shapely.get_coordinates(lines).reshape(-1, 4).T
        measured: slice | np.ndarray = slice(None)
        if len(xa) < n:  # missing or empty geometries have no shortest line: distance 0, as before
            measured = shapely.get_num_coordinates(lines) == 2
        dx, dy = xb - xa, yb - ya
        planar = np.sqrt(dx * dx + dy * dy)
        m = len(planar)
        k = self.scale(np.concatenate([xa, (xa + xb) / 2, xb]), np.concatenate([ya, (ya + yb) / 2, yb]))
        inv_k = (1.0 / k[:m] + 4.0 / k[m : 2 * m] + 1.0 / k[2 * m :]) / 6.0
        out[measured] = planar * inv_k
        distance: np.ndarray = np.maximum(out - ra - rb, 0.0)
        return distance
