"""KML in: zones and activity footprints from KML or KMZ (fastkml reads each Placemark).

Each Placemark is one footprint: a ``Polygon``; a ``MultiGeometry`` of polygons (their union on the
ground; vertical faces, which cover no ground, are walls and are left out, so a solid written by
:mod:`deconflict.formats.kml` reads back as its footprint); or a ``Point`` with ``radius_m`` in its
``ExtendedData`` (a circle). ``ExtendedData`` with ``centre`` (lon,lat) and ``radius_m`` beside a polygon
says the polygon draws that circle, and the circle is read.

Altitudes, in this order: ``floor_m``/``ceiling_m`` in ``ExtendedData``; the lowest and highest
altitude of the coordinates when ``altitudeMode`` is ``absolute`` (an extruded flat polygon reaches down
to the ground: its floor is the lowest accepted, -500 m); otherwise the caller's defaults.
``relativeToGround`` altitudes are not read: without a terrain model they say nothing above sea level.
Windows come from the Placemark's ``TimeSpan`` (or ``start``/``end``, ``valid_from``/``valid_to`` in
``ExtendedData``). Every error names the Placemark (its number, from 1 in document order, and its name)
and what was wrong, and is raised before anything is stored.
"""

from __future__ import annotations

import io
import logging
import math
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.model import ALT_MIN_M

__all__ = ["MAX_KML_BYTES", "Mark", "read_kml", "volume_docs", "zone_docs"]

MAX_KML_BYTES = 20 * 1024 * 1024
"""The largest KML document read (a KMZ's ``doc.kml`` uncompressed, too): 20 MiB."""
NAMESPACES = (
    "{http://www.opengis.net/kml/2.2}",
    "{http://earth.google.com/kml/2.2}",
    "{http://earth.google.com/kml/2.1}",
)


@dataclass(frozen=True)
class Mark:
    """One Placemark as read: where it is in the file, its footprint (GeoJSON, lon/lat), and what it says
    of altitudes and times (None: it says nothing)."""

    where: str
    name: str | None
    geometry: dict[str, Any]
    radius_m: float | None
    floor_m: float | None
    ceiling_m: float | None
    start: datetime | None
    end: datetime | None
    data: dict[str, str] = field(default_factory=dict)


@contextmanager
def _quiet() -> Iterator[None]:
    """fastkml logs each fault it raises; the fault is reported once, by us, with the Placemark named."""
    log = logging.getLogger("fastkml")
    before = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = before


def _document(data: bytes, source: str) -> bytes:
    """The KML text of a KML or KMZ file (a KMZ's first ``.kml`` entry, ``doc.kml`` preferred)."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as kmz:
                names = [i for i in kmz.infolist() if i.filename.lower().endswith(".kml")]
                if not names:
                    raise InvalidInput(f"{source}: a KMZ without a .kml document inside")
                entry = next((i for i in names if i.filename.lower() == "doc.kml"), names[0])
                with kmz.open(entry) as f:  # read no more than the limit, whatever the header claims
                    text = f.read(MAX_KML_BYTES + 1)
                if len(text) > MAX_KML_BYTES:
                    raise InvalidInput(f"{source}: {entry.filename} is over {MAX_KML_BYTES // 2**20} MiB")
                return text
        except zipfile.BadZipFile as e:
            raise InvalidInput(f"{source}: not a readable KMZ (ZIP) file: {e}") from None
    if len(data) > MAX_KML_BYTES:
        raise InvalidInput(f"{source}: over {MAX_KML_BYTES // 2**20} MiB")
    return data


def _root(data: bytes, source: str) -> Any:
    from lxml import etree  # type: ignore[import-untyped]

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidInput(f"{source}: holds a DOCTYPE or entity declaration; KML has none, so it is not read")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as e:
        raise InvalidInput(f"{source}: not well-formed XML at line {e.lineno}: {e.msg}") from None
    ns = next((n for n in NAMESPACES if root.tag == f"{n}kml"), None)
    if ns is None:
        raise InvalidInput(f"{source}: the root element is {root.tag!r}, not a KML 2.2 <kml>")
    return root, ns


def _short(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 240 else text[:237] + "..."


def _polygons(kml_geometry: Any, where: str) -> list[tuple[Any, Any]]:
    """(pygeoif polygon, its fastkml element) of a geometry, through nested MultiGeometry."""
    from fastkml import MultiGeometry, Polygon

    if isinstance(kml_geometry, Polygon):
        if kml_geometry.geometry is None:
            raise InvalidInput(f"{where} Polygon: no outer boundary coordinates", field="geometry")
        return [(kml_geometry.geometry, kml_geometry)]
    if isinstance(kml_geometry, MultiGeometry):
        return [p for g in kml_geometry.kml_geometries for p in _polygons(g, where)]
    kind = type(kml_geometry).__name__
    raise InvalidInput(
        f"{where} {kind}: encloses no area; give a Polygon, a MultiGeometry of polygons, "
        "or a Point with radius_m in ExtendedData",
        field="geometry",
    )


def _number(data: dict[str, str], key: str, where: str) -> float | None:
    raw = data.get(key)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInput(f"{where} ExtendedData {key}: {raw!r} is not a number", field=key)
    return value


def _instant(value: Any, key: str, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(
            f"{where} {key}: {value!s} is not a time with its zone; write it like 2026-12-02T08:00:00Z", field=key
        )
    return parse_utc(value, field=key)


_ZONED = re.compile(r".*T.*(?:Z|[+-]\d{2}:\d{2})")
"""A KML dateTime with its zone (``2026-12-02T08:00:00Z``, ``...+03:00``)."""


def _zoned_span(element: Any, ns: str, where: str) -> None:
    """A TimeSpan's times as written carry their zone: fastkml reads ``2026-12-08T10:00:00`` as UTC without a
    word, where the officer who wrote it may have meant local time (KML's dateTime has its ``Z`` or offset).

    Raises:
        InvalidInput: a time of day without its zone, named."""
    for span in element.iter(f"{ns}TimeSpan"):
        for key in ("begin", "end"):
            text = (span.findtext(f"{ns}{key}") or "").strip()
            if "T" in text.upper() and not _ZONED.fullmatch(text):
                raise InvalidInput(
                    f"{where} TimeSpan {key}: {text!r} is not a time with its zone as KML writes it; write it like "
                    "2026-12-02T08:00:00Z or 2026-12-02T11:00:00+03:00",
                    field=key,
                )


def _positions(element: Any, ns: str, where: str) -> None:
    """Each position of each ``coordinates`` is ``lon,lat`` or ``lon,lat,alt``, numbers: said here by position,
    where fastkml's own words were Python's ("Point.__init__() takes from 3 to 4 positional arguments but 5 were
    given") or the element's raw XML.

    Raises:
        InvalidInput: the first position that is not, named."""
    for coordinates in element.iter(f"{ns}coordinates"):
        for k, position in enumerate((coordinates.text or "").split(), start=1):
            values = position.split(",")
            try:
                ok = len(values) in (2, 3) and all(math.isfinite(float(v)) for v in values)
            except ValueError:
                ok = False
            if not ok:
                raise InvalidInput(
                    f"{where} coordinates: position {k}, {position[:60]!r}, is not longitude,latitude or "
                    "longitude,latitude,altitude (numbers, no spaces inside a position)",
                    field="coordinates",
                )


def _data(placemark: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    ext = placemark.extended_data
    for element in ext.elements if ext else ():
        if hasattr(element, "data"):  # SchemaData: SimpleData fields, as GIS tools write them
            out |= {d.name: d.value or "" for d in element.data if d.name}
        elif element.name:
            out[element.name] = element.value or ""
    return out


def _mark(placemark: Any, n: int, where: str) -> Mark:
    import shapely
    from fastkml import Point
    from fastkml.enums import AltitudeMode
    from fastkml.times import TimeSpan
    from shapely.geometry import mapping, shape

    data = _data(placemark)
    span = placemark.times if isinstance(placemark.times, TimeSpan) else None
    start = _instant(span.begin.dt if span and span.begin else None, "TimeSpan begin", where)
    end = _instant(span.end.dt if span and span.end else None, "TimeSpan end", where)
    floor, ceiling = _number(data, "floor_m", where), _number(data, "ceiling_m", where)
    radius = _number(data, "radius_m", where)
    geom = placemark.kml_geometry
    if geom is None:
        raise InvalidInput(f"{where}: has no geometry", field="geometry")
    centre = data.get("centre")
    if isinstance(geom, Point) or (centre and radius):
        if not radius:
            raise InvalidInput(
                f"{where} Point: a point needs radius_m (metres) in its ExtendedData to be a circle", field="radius_m"
            )
        if isinstance(geom, Point):
            if geom.geometry is None:
                raise InvalidInput(f"{where} Point: no coordinates", field="geometry")
            lon, lat = float(geom.geometry.x), float(geom.geometry.y)
        else:
            try:
                lon, lat = (float(x) for x in str(centre).split(","))
            except ValueError:
                raise InvalidInput(f"{where} ExtendedData centre: {centre!r} is not lon,lat", field="centre") from None
        return Mark(
            where,
            placemark.name,
            {"type": "Point", "coordinates": [lon, lat]},
            radius,
            floor,
            ceiling,
            start,
            end,
            data,
        )
    faces, heights, extruded = [], [], False
    for polygon, element in _polygons(geom, where):
        plan = shape(polygon.__geo_interface__)
        if element.altitude_mode == AltitudeMode.absolute:
            heights += [c[2] for c in polygon.exterior.coords if len(c) > 2]
            extruded = extruded or bool(element.extrude)
        if plan.area > 0:
            faces.append(shapely.force_2d(plan))
        elif len({c[2] for c in polygon.exterior.coords if len(c) > 2}) < 2:  # flat and empty: not a wall
            raise InvalidInput(f"{where} Polygon: its outer ring encloses no area", field="geometry")
    if not faces:
        raise InvalidInput(f"{where}: its polygons cover no ground (only vertical walls)", field="geometry")
    if heights and floor is None and ceiling is None:
        low, high = min(heights), max(heights)
        if low < high:
            floor, ceiling = low, high
        elif extruded:
            floor, ceiling = ALT_MIN_M, high
    union = faces[0] if len(faces) == 1 else shapely.union_all(faces)
    footprint = mapping(shapely.normalize(union))
    return Mark(where, placemark.name, _lists(footprint), None, floor, ceiling, start, end, data)


def _lists(geometry: Any) -> Any:
    """GeoJSON with lists, not tuples (as the domain's validators read it)."""
    if isinstance(geometry, dict):
        return {k: _lists(v) for k, v in geometry.items()}
    if isinstance(geometry, (list, tuple)):
        return [_lists(v) for v in geometry]
    return geometry


def read_kml(data: bytes, *, source: str, folder: str | None = None) -> list[Mark]:
    """Every Placemark of a KML or KMZ file, in document order (with ``folder``: only those inside a
    Folder or Document of that name, such as the ``Zones`` of a picture this service wrote).

    Raises:
        InvalidInput: the file is not KML, or a Placemark is malformed (named: number and name, and what).
    """
    from fastkml import Placemark, config
    from fastkml.exceptions import KMLParseError

    root, ns = _root(_document(data, source), source)
    marks: list[Mark] = []
    name_spaces = {**config.NAME_SPACES, "kml": ns}
    for n, element in enumerate(root.iter(f"{ns}Placemark"), start=1):
        if folder is not None and not any(
            a.tag in (f"{ns}Folder", f"{ns}Document") and (a.findtext(f"{ns}name") or "").strip() == folder
            for a in element.iterancestors()
        ):
            continue
        name = element.findtext(f"{ns}name")
        where = f"Placemark {n}" + (f" ({name.strip()!r})" if name and name.strip() else "")
        _zoned_span(element, ns, where)
        _positions(element, ns, where)
        try:
            with _quiet():
                placemark = Placemark.class_from_element(ns=ns, name_spaces=name_spaces, element=element, strict=True)
        except (KMLParseError, ValueError, TypeError) as e:
            raise InvalidInput(f"{where}: {_short(e)}") from None
        marks.append(_mark(placemark, n, where))
    if not marks:
        inside = f" inside a folder named {folder!r}" if folder is not None else " in the document"
        raise InvalidInput(f"{source}: no Placemark{inside}; nothing to read")
    return marks


def _common(m: Mark, defaults: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"geometry": m.geometry}
    if m.radius_m is not None:
        doc["radius_m"] = m.radius_m
    floor = m.floor_m if m.floor_m is not None else defaults.get("floor_m")
    ceiling = m.ceiling_m if m.ceiling_m is not None else defaults.get("ceiling_m")
    return doc | {k: v for k, v in (("floor_m", floor), ("ceiling_m", ceiling)) if v is not None}


def _when(m: Mark, key: str, span: datetime | None, default: datetime | None) -> str | None:
    if span is not None:
        return iso(span)
    if m.data.get(key):
        try:
            return iso(parse_utc(m.data[key], field=key))
        except InvalidInput as e:
            raise InvalidInput(f"{m.where} ExtendedData {e.message}", field=key) from None
    return iso(default) if default is not None else None


def zone_docs(
    marks: list[Mark], *, mechanism: str, party: str, parties: set[str], defaults: dict[str, Any]
) -> list[dict[str, Any]]:
    """Zone declarations of ``party``, one a Placemark, as the service's ``declare_zone`` takes them, each
    checked with the service's own reading (``formats.docs.parse_zone``) and ids unique in the file.

    ``defaults``: ``kind``, ``forbids`` (list), ``valid_from``, ``valid_to`` (datetimes), ``floor_m``,
    ``ceiling_m``, ``applies_to_owner``, ``id_prefix``; a Placemark's own ``ExtendedData`` (``id``,
    ``kind``, ``forbids`` comma-separated, ``name``, ``applies_to_owner``) and ``TimeSpan`` come first.
    """
    from deconflict.formats.docs import parse_zone

    out: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for n, m in enumerate(marks, start=1):
        d = m.data
        doc = _common(m, defaults)
        doc["id"] = d.get("id") or f"{defaults.get('id_prefix') or party + '-KML'}-{n}"
        doc["kind"] = d.get("kind") or defaults.get("kind")
        forbids = [k.strip() for k in d["forbids"].split(",") if k.strip()] if d.get("forbids") else None
        doc["forbids"] = forbids or list(defaults.get("forbids") or ())
        doc["name"] = d.get("name") or (m.name or "").strip() or doc["id"]
        doc["valid_from"] = _when(m, "valid_from", m.start, defaults.get("valid_from"))
        doc["valid_to"] = _when(m, "valid_to", m.end, defaults.get("valid_to"))
        owner_too = d.get("applies_to_owner", "").strip().lower()
        doc["applies_to_owner"] = (
            owner_too in ("true", "1", "yes") if owner_too else bool(defaults.get("applies_to_owner"))
        )
        if doc["id"] in seen:
            raise InvalidInput(f"{m.where} id: {doc['id']!r} is used twice (also by {seen[doc['id']]})", field="id")
        seen[doc["id"]] = m.where
        try:
            parse_zone(doc, mechanism=mechanism, owner=party, parties=parties, where=m.where)
        except InvalidInput as e:  # the footprint's own checks do not always say where
            raise (
                e if e.message.startswith(m.where) else InvalidInput(f"{m.where} {e.message}", field=e.field)
            ) from None
        out.append(doc)
    return out


def volume_docs(marks: list[Mark], *, party: str, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """The volumes of one notice, one a Placemark, as the service's ``notify`` takes them, each checked
    with the service's own reading (``formats.geojson.parse_volume``: window and band required).

    ``defaults``: ``start``, ``end`` (datetimes), ``floor_m``, ``ceiling_m``; the Placemark's ``TimeSpan``
    and ``ExtendedData`` (``volume``, ``start``, ``end``, ``floor_m``, ``ceiling_m``) come first.
    """
    from deconflict.formats.geojson import parse_volume

    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, m in enumerate(marks, start=1):
        doc = _common(m, defaults)
        vid = m.data.get("volume") or f"v{n}"
        doc["id"] = vid if vid not in seen else f"v{n}"
        seen.add(doc["id"])
        doc["start"] = _when(m, "start", m.start, defaults.get("start"))
        doc["end"] = _when(m, "end", m.end, defaults.get("end"))
        parse_volume(doc, doc["geometry"], where=m.where, require_window=True, party=party)
        out.append(doc)
    return out
