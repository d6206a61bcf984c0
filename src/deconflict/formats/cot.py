"""Cursor on Target (CoT 2.0) out, for TAK (ATAK, WinTAK, iTAK, TAK Server): the picture a member may see
as CoT events, written with pytak's helpers (``pytak.cot_event``, ``cot_point``, ``add_remarks``,
``serialize_cot``), and read back (:func:`parse_cot`) to check them.

========================= ============== ============================================================
what                      CoT type       shape
========================= ============== ============================================================
zone, activity (circle)   ``u-d-c-c``    ``<shape><ellipse major minor/>``: the radius in metres
zone, activity (polygon)  ``u-d-f``      one ``<link point="lat,lon"/>`` per vertex, closed
conflict                  ``b-m-p-s-p-i`` a marker with ``<remarks>`` in words and a ``<link uid>`` to
                                         each shape it concerns
track                     ``a-f-A``      a position report with ``<track course speed>`` (speed m/s);
                          ``a-n-A``      ``a-f`` the reader's own party's, ``a-n`` another party's
========================= ============== ============================================================

Each event is built from what the member's API answers (``GET .../zones``, ``activities``, ``conflicts``,
``tracks``), which already applies the disclosure rules: another party's notice seen in part is sent as
its overlap parts only (``partial``), so a TAK feed never carries more than its reader may see.

Times: ``time`` and ``start`` are when the event is written; ``stale`` is when it stops holding: the end of
a volume's window, a zone's ``valid_to`` (or a day on, re-sent before then), a track's report time plus
the mechanism's ``track_stale_s``; a conflict no longer open, an activity cancelled or ended is sent once
more with ``stale`` now, which takes it off the TAK map. Heights: a track's ``hae`` is its altitude above
mean sea level (the geoid lies some 20-30 m above the ellipsoid over the Levant: within a track's
precision); a volume's band is in its remarks, its point's ``hae`` unknown (``9999999.0``).
"""

from __future__ import annotations

import logging
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from deconflict.clock import parse_utc
from deconflict.errors import InvalidInput

__all__ = [
    "UNKNOWN",
    "CotError",
    "CotEvent",
    "activity_events",
    "conflict_event",
    "parse_cot",
    "picture_events",
    "to_xml",
    "track_event",
    "withdrawn",
    "zone_events",
]

UNKNOWN = 9999999.0
"""CoT's value for an unknown height or error."""
ZONE_STALE = timedelta(days=1)
TACTICAL_STALE = timedelta(minutes=10)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _argb(rgb: int, alpha: int = 0xFF) -> int:
    """A colour as TAK writes it: ARGB as a signed 32-bit integer."""
    value = (alpha << 24) | rgb
    return value - (1 << 32) if value >= 1 << 31 else value


_RED, _OWN, _OTHER, _ZONE = 0xFF0000, 0x0080FF, 0xFF9900, 0xFFFF00


class CotError(InvalidInput):
    """CoT that cannot be read; the message names the element and attribute."""


@dataclass(frozen=True)
class CotEvent:
    """One CoT event as this module writes and reads it (angles in degrees, lengths in metres)."""

    uid: str
    type: str
    time: datetime
    start: datetime
    stale: datetime
    lat: float
    lon: float
    how: str = "h-e"
    hae: float = UNKNOWN
    ce: float = UNKNOWN
    le: float = UNKNOWN
    callsign: str = ""
    remarks: str = ""
    radius_m: float | None = None
    vertices: tuple[tuple[float, float], ...] = ()
    links: tuple[str, ...] = ()
    course: float | None = None
    speed: float | None = None
    stroke: int | None = None
    fill: int | None = None


def _pytak() -> Any:
    with warnings.catch_warnings():  # pytak warns about its optional extras (TLS enrolment, websockets)
        warnings.simplefilter("ignore")
        import pytak  # type: ignore[import-untyped]
    logging.getLogger("pytak.classes").setLevel(logging.WARNING)  # not a line per worker started
    return pytak


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13)) | {0x7F: None}


def _text(value: str) -> str:
    """Member-written text (a zone's name) as XML 1.0 can carry it: control characters left out."""
    return value.translate(_CONTROL)


def _num(x: float) -> str:
    return f"{x:.7f}".rstrip("0").rstrip(".") if x != UNKNOWN else "9999999.0"


def to_xml(ev: CotEvent) -> bytes:
    """The event as CoT XML (UTF-8, with the XML declaration), built with pytak."""
    pytak = _pytak()
    detail = pytak.cot_detail(flow_tag=False)
    if ev.callsign:
        ET.SubElement(detail, "contact", callsign=_text(ev.callsign))
    if ev.radius_m is not None:
        shape = ET.SubElement(detail, "shape")
        r = _num(ev.radius_m)
        ET.SubElement(shape, "ellipse", major=r, minor=r, angle="360")
    for lat, lon in ev.vertices:
        ET.SubElement(detail, "link", point=f"{_num(lat)},{_num(lon)}")
    for uid in ev.links:
        ET.SubElement(detail, "link", uid=uid, relation="p-p", type="u-d")
    if ev.course is not None or ev.speed is not None:
        ET.SubElement(detail, "track", course=_num(ev.course or 0.0), speed=_num(ev.speed or 0.0))
    if ev.stroke is not None:
        ET.SubElement(detail, "strokeColor", value=str(ev.stroke))
        ET.SubElement(detail, "strokeWeight", value="3.0")
    if ev.fill is not None:
        ET.SubElement(detail, "fillColor", value=str(ev.fill))
    if ev.radius_m is not None or ev.vertices:
        ET.SubElement(detail, "labels_on", value="true")
    if ev.remarks:
        pytak.add_remarks(detail, [_text(ev.remarks)])
    point = pytak.cot_point(lat=_num(ev.lat), lon=_num(ev.lon), hae=_num(ev.hae), ce=_num(ev.ce), le=_num(ev.le))
    point.set("lat", _num(ev.lat))  # full precision (pytak truncates to 4 places: 11 m)
    point.set("lon", _num(ev.lon))
    event = pytak.cot_event(uid=ev.uid, cot_type=ev.type, how=ev.how, point=point, detail=detail)
    for name in ("time", "start", "stale"):
        event.set(name, getattr(ev, name).astimezone(UTC).strftime(TIME_FORMAT))
    return bytes(pytak.serialize_cot(event))


def withdrawn(ev: CotEvent, now: datetime) -> CotEvent:
    """The same event sent once more with ``stale`` now: a TAK client takes it off the map."""
    return replace(ev, time=now, start=now, stale=now)


# --- reading --------------------------------------------------------------------------------------


def _float(el: Any, name: str, where: str, low: float = -1e12, high: float = 1e12) -> float:
    raw = el.get(name)
    if raw is None:
        raise CotError(f"{where}: missing attribute {name!r}", field=name)
    try:
        x = float(raw)
    except ValueError:
        raise CotError(f"{where} {name}: {raw!r} is not a number", field=name) from None
    if not low <= x <= high:
        raise CotError(f"{where} {name}: {raw!r} is out of range ({low:g} to {high:g})", field=name)
    return x


def _time(el: Any, name: str) -> datetime:
    raw = el.get(name)
    if raw is None:
        raise CotError(f"event: missing attribute {name!r}", field=name)
    try:
        return parse_utc(raw, field=name)
    except InvalidInput:
        raise CotError(f"event {name}: {raw!r} is not a UTC time (e.g. 2025-04-09T06:00:00.000Z)", field=name) from None


def parse_cot(data: bytes | str) -> CotEvent:
    """One CoT event read back: what :func:`to_xml` writes, and what a TAK server relays of it.

    Raises:
        CotError: not XML (naming the line), not an ``event``, or a required attribute of the CoT 2.0
            event schema missing or out of range (naming the element and attribute).
    """
    from lxml import etree  # type: ignore[import-untyped]

    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    try:
        root = etree.fromstring(data.encode() if isinstance(data, str) else data, parser=parser)
    except etree.XMLSyntaxError as e:
        raise CotError(f"CoT line {e.lineno}: not XML ({e.msg})") from None
    if root.tag != "event":
        raise CotError(f"<{root.tag}>: a CoT message is an <event> element", field="event")
    for name in ("version", "uid", "type", "how"):
        if not root.get(name):
            raise CotError(f"event: missing attribute {name!r}", field=name)
    point = root.find("point")
    if point is None:
        raise CotError("event: missing element <point>", field="point")
    detail = root.find("detail")
    found: dict[str, Any] = {}
    if detail is not None and detail.get("remarks"):  # FreeTAKServer relays <remarks> as this attribute
        found["remarks"] = detail.get("remarks")
    for el in detail if detail is not None else []:
        if not isinstance(el.tag, str):
            continue  # a comment
        where = f"detail/{el.tag}"
        if el.tag == "contact":
            found["callsign"] = el.get("callsign", "")
        elif el.tag == "remarks":
            found["remarks"] = el.text or ""
        elif el.tag == "shape" and (ellipse := el.find("ellipse")) is not None:
            found["radius_m"] = _float(ellipse, "major", f"{where}/ellipse", 0)
        elif el.tag == "link" and el.get("point"):
            lat, _, lon = str(el.get("point")).partition(",")
            fake = {"lat": lat, "lon": lon.split(",")[0]}
            vertex = (_float(fake, "lat", where, -90, 90), _float(fake, "lon", where, -180, 180))
            found["vertices"] = (*found.get("vertices", ()), vertex)
        elif el.tag == "link" and el.get("uid"):
            found["links"] = (*found.get("links", ()), str(el.get("uid")))
        elif el.tag == "track":
            found["course"] = _float(el, "course", where)
            found["speed"] = _float(el, "speed", where)
        elif el.tag in ("strokeColor", "fillColor"):
            found["stroke" if el.tag == "strokeColor" else "fill"] = int(_float(el, "value", where))
    return CotEvent(
        uid=str(root.get("uid")),
        type=str(root.get("type")),
        how=str(root.get("how")),
        time=_time(root, "time"),
        start=_time(root, "start"),
        stale=_time(root, "stale"),
        lat=_float(point, "lat", "event/point", -90, 90),
        lon=_float(point, "lon", "event/point", -180, 180),
        hae=_float(point, "hae", "event/point"),
        ce=_float(point, "ce", "event/point"),
        le=_float(point, "le", "event/point"),
        **found,
    )


# --- the picture as CoT ---------------------------------------------------------------------------


def _uid(mechanism: str, *parts: str) -> str:
    return ".".join(("deconflict", mechanism, *parts))


def _shapes(
    geometry: dict[str, Any], radius_m: float | None
) -> list[tuple[float, float, float | None, tuple[tuple[float, float], ...]]]:
    """(lat, lon, radius, vertices) of each shape of a GeoJSON geometry: a circle, or polygons' outer rings."""
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Point" and radius_m:
        return [(float(coords[1]), float(coords[0]), float(radius_m), ())]
    rings = [coords[0]] if kind == "Polygon" else [p[0] for p in coords] if kind == "MultiPolygon" else []
    out: list[tuple[float, float, float | None, tuple[tuple[float, float], ...]]] = []
    for ring in rings:
        vertices = tuple((float(y), float(x)) for x, y, *_ in ring)
        lat = sum(v[0] for v in vertices[:-1]) / max(1, len(vertices) - 1)
        lon = sum(v[1] for v in vertices[:-1]) / max(1, len(vertices) - 1)
        out.append((round(lat, 7), round(lon, 7), None, vertices))
    return out


def _time_of(value: Any, default: datetime) -> datetime:
    return parse_utc(value, field="time") if value else default


def zone_events(zone: dict[str, Any], *, mechanism: str, now: datetime) -> list[CotEvent]:
    """A zone as CoT shapes: its name, kind, owner, what it forbids, its band and when it is in force in the
    remarks (a zone valid from tomorrow is on the map now, as a planned activity is: its remarks say from when)."""
    if zone.get("withdrawn_at"):
        return []
    stale = _time_of(zone.get("valid_to"), now + ZONE_STALE)
    forbids = ", ".join(zone.get("forbids") or []) or "nothing"
    valid_from = _time_of(zone.get("valid_from"), now)
    if valid_from > now:
        when = f"in force from {zone.get('valid_from')}" + (f" to {zone['valid_to']}" if zone.get("valid_to") else "")
    else:
        when = f"in force until {zone['valid_to']}" if zone.get("valid_to") else "in force"
    remarks = (
        f"{zone.get('name') or zone['id']}: {str(zone.get('kind', '')).replace('_', ' ')} of {zone.get('owner')}; "
        f"forbids {forbids}; {float(zone.get('floor_m', -500)):g}–{float(zone.get('ceiling_m', 30000)):g} m; {when}"
    )
    colour = _RED if zone.get("kind") == "red_line" else _ZONE
    return [
        CotEvent(
            uid=_uid(mechanism, "zone", zone["id"], str(n)),
            type="u-d-c-c" if radius else "u-d-f",
            time=now,
            start=now,
            stale=max(stale, now),
            lat=lat,
            lon=lon,
            callsign=f"{zone['id']}",
            remarks=remarks,
            radius_m=radius,
            vertices=vertices,
            stroke=_argb(colour),
            fill=_argb(colour, 0x30),
        )
        for n, (lat, lon, radius, vertices) in enumerate(_shapes(zone["geometry"], zone.get("radius_m")), 1)
    ]


def activity_events(activity: dict[str, Any], *, mechanism: str, reader_party: str, now: datetime) -> list[CotEvent]:
    """An activity as CoT shapes, one per volume (or, seen in part, one per overlap part: nothing more)."""
    partial = bool(activity.get("partial"))
    if activity.get("state") in ("cancelled", "ended"):
        return []
    parts = activity.get("overlap") or [] if partial else activity.get("volumes") or []
    own = activity.get("party") == reader_party
    events = []
    for n, v in enumerate(parts, 1):
        end = _time_of(v.get("end"), now + ZONE_STALE)
        if end <= now:
            continue
        band = f"{float(v['floor_m']):g}–{float(v['ceiling_m']):g} m"
        window = f"{v.get('start', '')}–{v.get('end') or 'open'}"
        head = f"{activity['id']} {str(activity.get('kind', '')).replace('_', ' ')} ({activity.get('party')})"
        said = " (only the part in conflict with yours)" if partial else f" v{activity.get('version')}"
        for k, (lat, lon, radius, vertices) in enumerate(_shapes(v["geometry"], v.get("radius_m")), 1):
            vid = f"part{n}" if partial else str(v.get("id", n))
            events.append(
                CotEvent(
                    uid=_uid(mechanism, "activity", activity["id"], vid, str(k)),
                    type="u-d-c-c" if radius else "u-d-f",
                    time=now,
                    start=now,
                    stale=end,
                    lat=lat,
                    lon=lon,
                    callsign=activity["id"],
                    remarks=f"{head}{said}: {window}, {band}",
                    radius_m=radius,
                    vertices=vertices,
                    stroke=_argb(_OWN if own else _OTHER),
                )
            )
    return events


def conflict_event(
    conflict: dict[str, Any], *, mechanism: str, now: datetime, shapes: dict[str, list[CotEvent]]
) -> CotEvent | None:
    """An open conflict as a marker at what it concerns (its tracks, else the shapes of its activities or
    zone the reader may see), linked to those shapes; None when it is closed or has no place to show."""
    if conflict.get("status") not in ("open", "acknowledged", None):
        return None
    states = conflict.get("track_states") or []
    names = [str(conflict[k]) for k in ("activity", "other_activity", "zone") if conflict.get(k)]
    linked = [e for name in names for e in shapes.get(name, [])]
    if states:
        lat = sum(float(s["lat"]) for s in states) / len(states)
        lon = sum(float(s["lon"]) for s in states) / len(states)
    elif linked:
        lat = sum(e.lat for e in linked) / len(linked)
        lon = sum(e.lon for e in linked) / len(linked)
    else:
        return None
    kind = str(conflict.get("kind", "")).replace("_", " ")
    waiting = [p for p in conflict.get("awaiting") or [] if p not in (conflict.get("acknowledged") or {})]
    words = f"{conflict['id']} {kind}: {' and '.join(names)}"
    if conflict.get("distance_m") is not None:
        words += f", {float(conflict['distance_m']) / 1000:.1f} km apart"
    if waiting:
        words += f"; awaiting {', '.join(waiting)}"
        words += f", acknowledge by {conflict['deadline']}" if conflict.get("deadline") else ""
    end = _time_of(conflict.get("end"), now + TACTICAL_STALE) if not states else now + TACTICAL_STALE
    return CotEvent(
        uid=_uid(mechanism, "conflict", conflict["id"]),
        type="b-m-p-s-p-i",
        how="m-f",
        time=now,
        start=now,
        stale=max(end, now + timedelta(minutes=1)),
        lat=round(lat, 7),
        lon=round(lon, 7),
        callsign=f"{conflict['id']} {kind}",
        remarks=words,
        links=tuple(e.uid for e in linked),
        stroke=_argb(_RED),
    )


def track_event(track: dict[str, Any], *, mechanism: str, reader_party: str, stale_s: float, now: datetime) -> CotEvent:
    """A track as a CoT position report (``a-f-A`` the reader's party's, ``a-n-A`` another's), where the
    API flew it on to ``now``; stale when the service drops it (``stale_s`` after its last report)."""
    at = parse_utc(track["reported_at"], field="reported_at")
    own = track.get("party") == reader_party
    return CotEvent(
        uid=_uid(mechanism, "track", str(track["party"]), str(track["id"])),
        type="a-f-A" if own else "a-n-A",
        how="m-g",
        time=now,
        start=now,
        stale=max(now, at + timedelta(seconds=stale_s)),
        lat=float(track["lat"]),
        lon=float(track["lon"]),
        hae=round(float(track["alt_m"]), 1),
        callsign=str(track["track"]),
        remarks=f"{track['track']} reported {track['reported_at']}",
        course=float(track["trk_deg"]),
        speed=round(float(track["gs_mps"]), 2),
    )


def picture_events(picture: dict[str, Any], *, mechanism: str, reader_party: str, now: datetime) -> list[CotEvent]:
    """Every CoT event of a member's picture: ``picture`` holds the API's answers (``zones``,
    ``activities``, ``conflicts``, ``tracks``) and ``track_stale_s``; zones first, tracks last."""
    shapes: dict[str, list[CotEvent]] = {}
    for z in picture.get("zones", []):
        shapes[z["id"]] = zone_events(z, mechanism=mechanism, now=now)
    for a in picture.get("activities", []):
        shapes[a["id"]] = activity_events(a, mechanism=mechanism, reader_party=reader_party, now=now)
    events = [e for group in shapes.values() for e in group]
    for c in picture.get("conflicts", []):
        if (marker := conflict_event(c, mechanism=mechanism, now=now, shapes=shapes)) is not None:
            events.append(marker)
    stale_s = float(picture.get("track_stale_s", 60.0))
    for t in picture.get("tracks", []):
        events.append(track_event(t, mechanism=mechanism, reader_party=reader_party, stale_s=stale_s, now=now))
    return events
