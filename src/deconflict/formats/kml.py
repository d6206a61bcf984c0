"""KML out: the picture one reader may see, for Google Earth and any GIS (OGC KML 2.2, written with fastkml).

One ``Document`` with a folder each for zones, activities, conflicts and tracks, and a style per zone
kind, per party, per conflict status. What goes in is exactly what the reader may see, shaped by
:mod:`deconflict.disclosure` (the one place that says it): notices it may see whole, one Placemark per
volume; another party's notice under ``conflicts-only``, one Placemark per overlap part it may see and
nothing more; conflicts as :func:`~deconflict.disclosure.conflict_for` gives them, each placed only from
geometry already in that view; tracks as ``Service.tracks(reader=...)`` gave them.

Volumes and zones are drawn as KML draws a block: the footprint at the ceiling (``altitudeMode``
absolute, metres above mean sea level), extruded, so a viewer draws its walls down to the ground; the
floor is in ``ExtendedData`` (``floor_m``, ``ceiling_m``) and the description. KML has no floating
solid: one polygon per wall from floor to ceiling, or a floor face beside the ceiling in a
``MultiGeometry``, made fastkml 6 to 30 times slower (its ``MultiGeometry`` rebuilds every member each
time it is tested: 25 s and 4.7 s for 200 circles, against 0.8 s this way). A circle is drawn as its
geodesic ring of :data:`~deconflict.geo.CIRCLE_SEGMENTS` vertices (on the circle: the chords lie inside
it by at most ``1 - cos(pi / 64)``, 0.12 % of the radius); its centre and radius go in ``ExtendedData``,
so :mod:`deconflict.formats.kml_read` restores the circle itself. Coordinates are written with
:data:`DECIMALS` decimals (1e-7 degree: about 1 cm), times as ISO 8601 UTC, windows as ``TimeSpan``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from deconflict.clock import iso
from deconflict.model import Activity, Disclosure, Member

__all__ = [
    "CONFLICT_ICON",
    "DECIMALS",
    "KML_MEDIA_TYPE",
    "KMZ_MEDIA_TYPE",
    "PARTY_COLOURS",
    "TRACK_ICON",
    "picture_kml",
    "to_kmz",
    "xml_text",
]

DECIMALS = 7
"""Decimals of every coordinate written (1e-7 degree is about 1.1 cm on the ground)."""
KML_MEDIA_TYPE = "application/vnd.google-earth.kml+xml"
KMZ_MEDIA_TYPE = "application/vnd.google-earth.kmz"

ZONE_COLOURS = {"red_line": "d62728", "restricted": "ff7f0e", "protected": "2ca02c", "air_defence": "9467bd"}
"""RGB of each zone kind (red lines red, restricted orange, protected green, air defence purple)."""
PARTY_COLOURS = ("c084fc", "38bdf8", "4ade80", "f472b6", "facc15", "2dd4bf")
"""RGB of the parties, in the order of their codes: the page's own ``PALETTE`` (web/js/main.js), so a party
has one colour in the page and in the KML (tests/formats/test_kml.py checks that the two lists agree)."""
STATUS_COLOURS = {"open": "d62728", "acknowledged": "ff7f0e", "resolved": "7f7f7f"}
TRACK_ICON = "http://maps.google.com/mapfiles/kml/shapes/airports.png"
CONFLICT_ICON = "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png"
"""Google's standard icons, which every KML viewer knows. An ``IconStyle`` needs its ``Icon``: without one
fastkml (1.4) writes no ``IconStyle`` at all, and the markers' colours would be lost."""


def xml_text(value: Any) -> str:
    """``value`` as text XML 1.0 may hold: C0 controls other than tab and line feed, and the
    non-characters, become U+FFFD (what members write could hold them; lxml would refuse the document)."""
    text = value if isinstance(value, str) else str(value)
    return "".join(
        ch
        if ch in "\t\n" or (0x20 <= ord(ch) < 0xD800 or 0xE000 <= ord(ch) <= 0xFFFD or ord(ch) > 0xFFFF)
        else "\ufffd"
        for ch in text
    )


def _abgr(rgb: str, alpha: int) -> str:
    """KML's colour order: alpha, blue, green, red."""
    return f"{alpha:02x}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}"


def _styles(parties: Sequence[str]) -> list[Any]:
    from fastkml import IconStyle, LabelStyle, LineStyle, PolyStyle, Style
    from fastkml.links import Icon

    def area(sid: str, rgb: str) -> Any:  # child order as the schema has it: Line before Poly
        return Style(id=sid, styles=[LineStyle(color=_abgr(rgb, 0xFF), width=2), PolyStyle(color=_abgr(rgb, 0x55))])

    def mark(sid: str, rgb: str, scale: float, icon: str) -> Any:
        style = IconStyle(color=_abgr(rgb, 0xFF), scale=scale, icon=Icon(href=icon))
        return Style(id=sid, styles=[style, LabelStyle(scale=0.8)])

    out = [area(f"zone-{kind}", rgb) for kind, rgb in ZONE_COLOURS.items()]
    for n, party in enumerate(parties):
        rgb = PARTY_COLOURS[n % len(PARTY_COLOURS)]
        out += [area(f"party-{party}", rgb), mark(f"track-{party}", rgb, 0.9, TRACK_ICON)]
    out += [mark(f"conflict-{status}", rgb, 1.3, CONFLICT_ICON) for status, rgb in STATUS_COLOURS.items()]
    return out


def _rings(geometry: dict[str, Any], radius_m: float | None) -> list[tuple[list[Any], list[list[Any]]]]:
    """A footprint's polygons as (exterior, holes) rings of (lon, lat), a circle as its geodesic ring; each
    exterior counterclockwise and each hole clockwise, as the KML reference asks of polygons (the
    right-hand rule: the face's normal points up, which viewers light)."""
    from shapely.geometry import Polygon, shape
    from shapely.geometry.polygon import orient

    from deconflict.geo import circle_ring

    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        polygons = [Polygon(circle_ring(float(lon), float(lat), float(radius_m or 0.0)).tolist())]
    else:
        geom = shape(geometry)
        polygons = list(getattr(geom, "geoms", [geom]))
    out = []
    for p in (orient(p, sign=1.0) for p in polygons):
        out.append(([c[:2] for c in p.exterior.coords], [[c[:2] for c in r.coords] for r in p.interiors]))
    return out


def _solid(geometry: dict[str, Any], radius_m: float | None, floor_m: float, ceiling_m: float) -> Any:
    """A volume as KML draws a block: its footprint at the ceiling, ``altitudeMode`` absolute (metres above
    mean sea level), extruded (a viewer draws the walls down to the ground); the floor is in ``ExtendedData``
    and the description. One Polygon (a MultiGeometry only for a footprint of several polygons)."""
    import pygeoif.geometry as geo
    from fastkml import MultiGeometry, Polygon
    from fastkml.enums import AltitudeMode

    faces = [
        Polygon(
            altitude_mode=AltitudeMode.absolute,
            extrude=True,
            geometry=geo.Polygon(
                [(x, y, ceiling_m) for x, y in outer], [[(x, y, ceiling_m) for x, y in h] for h in holes]
            ),
        )
        for outer, holes in _rings(geometry, radius_m)
    ]
    return faces[0] if len(faces) == 1 else MultiGeometry(kml_geometries=faces)


def _data(values: dict[str, Any]) -> Any:
    from fastkml import Data, ExtendedData

    def text(v: Any) -> str:
        return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)

    return ExtendedData(elements=[Data(name=k, value=xml_text(text(v))) for k, v in values.items() if v is not None])


def _span(start: str | None, end: str | None) -> Any:
    from fastkml.times import KmlDateTime, TimeSpan

    from deconflict.clock import parse_utc

    if start is None and end is None:
        return None
    begin = KmlDateTime(parse_utc(start, field="start")) if start else None
    return TimeSpan(begin=begin, end=KmlDateTime(parse_utc(end, field="end")) if end else None)


def _placemark(name: str, style: str, *, description: str = "", **kwargs: Any) -> Any:
    from fastkml import Placemark
    from fastkml.styles import StyleUrl

    text = xml_text(description) if description else None
    return Placemark(name=xml_text(name), description=text, style_url=StyleUrl(url=f"#{style}"), **kwargs)


def _zone(z: dict[str, Any]) -> Any:
    keys = ("id", "owner", "kind", "name", "forbids", "valid_from", "valid_to", "floor_m", "ceiling_m")
    data = {k: z.get(k) for k in keys}
    data["applies_to_owner"] = str(bool(z.get("applies_to_owner"))).lower()
    if z.get("radius_m"):
        data |= {"centre": z["geometry"]["coordinates"][:2], "radius_m": z["radius_m"]}
    band = f"{z['floor_m']:g}–{z['ceiling_m']:g} m AMSL"
    return _placemark(
        f"{z['name']} ({z['id']})",
        f"zone-{z['kind']}",
        description=f"{z['kind']} of {z['owner']}; forbids {', '.join(z['forbids'])}; {band}",
        times=_span(z.get("valid_from"), z.get("valid_to")),
        extended_data=_data(data),
        kml_geometry=_solid(z["geometry"], z.get("radius_m"), z["floor_m"], z["ceiling_m"]),
    )


def _volume(head: dict[str, Any], v: dict[str, Any], *, partial: bool) -> Any:
    data = head | {k: v.get(k) for k in ("floor_m", "ceiling_m", "start", "end")}
    if partial:
        data["partial"] = "true"  # the part of another party's notice this reader may see, no more
        name = f"{head['activity']} {head['kind']} (part seen)"
    else:
        data["volume"] = v["id"]
        name = f"{head['activity']} {head['kind']} {v['id']}"
    if v.get("radius_m"):
        data |= {"centre": v["geometry"]["coordinates"][:2], "radius_m": v["radius_m"]}
    band = f"{v['floor_m']:g}–{v['ceiling_m']:g} m AMSL"
    return _placemark(
        name,
        f"party-{head['party']}",
        description=f"{head['party']} {head['kind']} v{head['version']} ({head['state']}); {band}",
        times=_span(v.get("start"), v.get("end")),
        extended_data=_data(data),
        kml_geometry=_solid(v["geometry"], v.get("radius_m"), v["floor_m"], v["ceiling_m"]),
    )


def _conflict_place(c: dict[str, Any], seen: dict[str, list[dict[str, Any]]]) -> tuple[float, float] | None:
    """Where a conflict is, from what its reader sees only: its overlap parts, its tracks' positions, or
    the volumes it names of the notices the reader sees whole (the centre of their union)."""
    import shapely
    from shapely.geometry import Point, shape

    parts = [shape(p["geometry"]) for side in ("overlap_a", "overlap_b") for p in c.get(side, ())]
    if not parts:
        parts = [Point(t["lon"], t["lat"]) for t in c.get("track_states", ())]
    if not parts:
        named = {str(v) for pair in c.get("volume_pairs", ()) for v in pair} | {str(v) for v in c.get("volumes", ())}
        for aid in (c.get("activity"), c.get("other_activity")):
            for v in seen.get(str(aid), ()):
                if not named or v["id"] in named:
                    parts.append(shape(v["geometry"]))
    if not parts:
        return None
    centre = shapely.union_all(parts).centroid
    return round(float(centre.x), DECIMALS), round(float(centre.y), DECIMALS)


def _conflict(c: dict[str, Any], seen: dict[str, list[dict[str, Any]]]) -> Any:
    import pygeoif.geometry as geo
    from fastkml import Point
    from fastkml.times import KmlDateTime, TimeStamp

    from deconflict.clock import parse_utc

    keys = ("id", "kind", "status", "resolution", "parties", "awaiting", "deadline", "detected_at", "distance_m")
    data = {k: c.get(k) for k in (*keys, "activity", "other_activity", "zone", "start", "end")}
    if c.get("start") or c.get("end"):
        times = _span(c.get("start"), c.get("end"))
    else:
        times = TimeStamp(timestamp=KmlDateTime(parse_utc(c["detected_at"], field="detected_at")))
    place = _conflict_place(c, seen)
    about = " and ".join(str(x) for x in (c.get("activity"), c.get("other_activity") or c.get("zone")) if x)
    awaiting = f"; awaiting {', '.join(c['awaiting'])} by {c.get('deadline')}" if c.get("status") == "open" else ""
    return _placemark(
        f"{c['id']} {c['kind']} ({c['status']})",
        f"conflict-{c['status']}",
        description=f"{c['kind']} conflict: {about}; {c['status']}{awaiting}",
        times=times,
        extended_data=_data(data),
        kml_geometry=None if place is None else Point(geometry=geo.Point(*place)),
    )


def _track(t: dict[str, Any], at: datetime) -> Any:
    import pygeoif.geometry as geo
    from fastkml import Point
    from fastkml.enums import AltitudeMode
    from fastkml.times import KmlDateTime, TimeStamp

    data = {k: t.get(k) for k in ("track", "party", "reported_at", "alt_m", "gs_mps", "trk_deg", "vs_mps")}
    return _placemark(
        t["track"],
        f"track-{t['party']}",
        description=f"{t['track']}: {t['alt_m']:g} m AMSL, {t['gs_mps']:.0f} m/s on {t['trk_deg']:.0f}°, "
        f"flown on to {iso(at)}",
        times=TimeStamp(timestamp=KmlDateTime(at)),
        extended_data=_data(data),
        kml_geometry=Point(altitude_mode=AltitudeMode.absolute, geometry=geo.Point(t["lon"], t["lat"], t["alt_m"])),
    )


def picture_kml(
    *,
    mechanism_id: str,
    reader: Member,
    disclosure: Disclosure,
    activities: Sequence[Activity],
    zones: Sequence[dict[str, Any]],
    conflicts: Sequence[dict[str, Any]],
    tracks: Sequence[dict[str, Any]] = (),
    at: datetime,
) -> str:
    """The picture ``reader`` may see at ``at``, as a KML 2.2 document (text, UTF-8 declared).

    ``activities``, ``zones`` and ``conflicts`` are the mechanism's, whole: this function shows of them only
    what :mod:`deconflict.disclosure` lets ``reader`` see (``sees_whole_notices``, ``partial_activity``,
    ``conflict_for``, as the API's views do). ``tracks`` must already be the reader's
    (``Service.tracks(reader=...)``), flown on to ``at``.
    """
    from fastkml import KML, Document, Folder

    from deconflict.disclosure import conflict_for, partial_activity, sees_whole_notices
    from deconflict.formats.docs import activity_to_doc

    visible = [v for c in conflicts if (v := conflict_for(reader, dict(c), disclosure)) is not None]
    seen: dict[str, list[dict[str, Any]]] = {}
    marks: list[Any] = []
    for a in activities:
        doc = activity_to_doc(a)
        head = {k: doc[k] for k in ("party", "kind", "state", "version")} | {"activity": doc["id"]}
        if sees_whole_notices(reader, disclosure, a.party):
            seen[a.id] = doc["volumes"]
            marks += [_volume(head | {"title": doc["title"] or None}, v, partial=False) for v in doc["volumes"]]
        else:
            marks += [_volume(head, p, partial=True) for p in partial_activity(doc, visible, reader)["overlap"]]
    parties = sorted(
        {reader.party} | {z["owner"] for z in zones} | {a.party for a in activities} | {t["party"] for t in tracks}
    )
    folders = [
        Folder(name="Zones", features=[_zone(z) for z in zones]),
        Folder(name="Activities", features=marks),
        Folder(name="Conflicts", features=[_conflict(c, seen) for c in visible]),
        Folder(name="Tracks", features=[_track(t, at) for t in tracks]),
    ]
    document = Document(
        name=xml_text(f"{mechanism_id} as {reader.id} ({reader.party}) may see it at {iso(at)}"),
        styles=_styles(parties),
        features=folders,
    )
    body = KML(features=[document]).to_string(prettyprint=True, precision=DECIMALS)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def to_kmz(kml_text: str) -> bytes:
    """A KMZ: the document as ``doc.kml``, the first entry of a deflated ZIP archive (as viewers expect)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as kmz:
        kmz.writestr("doc.kml", kml_text.encode("utf-8"))
    return buffer.getvalue()
