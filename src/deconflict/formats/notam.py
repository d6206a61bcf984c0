"""NOTAM out: a draft NOTAM in ICAO format for a notified activity or a declared zone.

A draft is what a party's NOTAM office would publish: one NOTAM per activity (its volumes together) or
zone. The Q-line's area is the smallest circle about a centre rounded to the minute that holds every
footprint (its radius rounded *up* to whole NM), its levels the lowest floor and highest ceiling in flight
levels (rounded outward), items B and C the first start and last end (rounded outward to the minute), item
D each window when there are several, items F and G the levels in feet AMSL (rounded outward). The
published NOTAM thus covers at least the notice; item E says, in plain text, each volume exactly (centre
to 0.01 second, radius and altitudes to the metre and tenth, polygons vertex by vertex), so that
``deconflict import notam`` (formats/_notam_read) reads the notice back as it was, and a reader with no
deconflict at all reads what it is.

Precision, read back: positions 0.01 second (about 0.3 m), radii and altitudes 0.1 m, times to the minute
(a window with seconds is widened outward to whole minutes), a polygon's holes not kept (its exterior
only: the NOTAM covers more, never less); the member-written title as upper-case ASCII (:func:`plain`).

The NOTAM code follows the activity's or zone's kind (:data:`ACTIVITY_CODES`, :data:`ZONE_CODES`);
traffic IV, purpose BO, scope W (a navigation warning). Item A is the FIR holding the centre
(formats/_notam_firs: a centre outside every FIR known is refused, not guessed).

The NOTAM number is the office's to give: a draft takes the digits of the activity's id (``TR-0003`` →
``A0003/25``), or 0001.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from deconflict.clock import parse_utc
from deconflict.errors import InvalidState
from deconflict.formats._notam_firs import fir_at
from deconflict.formats._notam_text import QLine, format_dms, format_minutes, format_stamp
from deconflict.model import ALT_MAX_M, ALT_MIN_M, Activity, ActivityKind, ActivityState, Disclosure, Member, ZoneKind
from deconflict.units import FT_M, NM_M

__all__ = [
    "ACTIVITY_CODES",
    "ZONE_CODES",
    "activity_notam",
    "covering_circle",
    "item_f",
    "item_g",
    "not_live",
    "plain",
    "reader_activity_notam",
    "zone_notam",
]

ACTIVITY_CODES: dict[ActivityKind, str] = {
    ActivityKind.AIR_SORTIE: "QRTCA",  # temporary restricted area activated
    ActivityKind.UAV_PATROL: "QWULW",  # unmanned aircraft will take place
    ActivityKind.GROUND_MOVEMENT: "QRTCA",
    ActivityKind.DEPLOYMENT: "QRTCA",
    ActivityKind.AIR_DEFENCE_ACTIVATION: "QWMLW",  # missile, gun or rocket firing will take place
    ActivityKind.EXERCISE: "QWELW",  # exercises will take place
}
"""The NOTAM code (ICAO Doc 8126) a notice of each kind is published under."""

ZONE_CODES: dict[ZoneKind, str] = {
    ZoneKind.RED_LINE: "QRRCA",  # restricted area activated
    ZoneKind.RESTRICTED: "QRRCA",
    ZoneKind.PROTECTED: "QRPCA",  # prohibited area activated
    ZoneKind.AIR_DEFENCE: "QRDCA",  # danger area activated
}
"""The NOTAM code a zone of each kind is published under (restricted, prohibited or danger area)."""

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def plain(text: str, *, limit: int = 200) -> str:
    """Member-written text as NOTAM text: upper-case ASCII letters, digits and ``.,-/:'`` only (every script
    transliterated to Latin letters by anyascii, anything else a space), so nothing in it reads as an item marker
    or breaks a NOTAM office's character set. Dropping what is not ASCII lost Turkish's dotless i (Akıncı became
    AKNC) and every Hebrew or Arabic word.

    >>> plain("Patrol (Hama) — Şam; Akıncı üssü")
    'PATROL HAMA - SAM AKINCI USSU'
    >>> plain("Medevac 🚁 Hama")
    'MEDEVAC HAMA'
    """
    from anyascii import anyascii  # type: ignore[import-untyped]

    # pictographs (emoji) are left out: anyascii names them, ':helicopter:', which is no NOTAM text
    folded = anyascii("".join(ch for ch in text if unicodedata.category(ch) != "So")).upper()
    return " ".join(re.sub(r"[^A-Z0-9.,\-/:']", " ", folded).split())[:limit]


def _footprint_points(geometry: dict[str, Any], radius_m: float | None) -> list[tuple[float, float]]:
    from shapely.geometry import shape

    from deconflict.geo import circle_ring

    if geometry.get("type") == "Point" and radius_m:
        lon, lat = geometry["coordinates"][:2]
        return [(float(x), float(y)) for x, y in circle_ring(float(lon), float(lat), float(radius_m))]
    geom = shape(geometry)
    polygons = list(getattr(geom, "geoms", [geom]))
    return [(float(x), float(y)) for p in polygons for x, y in p.exterior.coords]


def covering_circle(footprints: Sequence[tuple[dict[str, Any], float | None]]) -> tuple[float, float, int]:
    """(lon, lat, radius NM) of the Q-line's circle: its centre the smallest enclosing circle's rounded to
    the minute, its radius the greatest geodesic distance from that rounded centre to the footprints,
    rounded up to whole NM (at least 1). Every footprint lies inside it (a circle's, drawn with
    ``geo.CIRCLE_SEGMENTS`` vertices on it, to within a few millimetres)."""
    import numpy as np
    import shapely
    from pyproj import Transformer

    from deconflict.geo import WGS84

    points = np.array([p for g, r in footprints for p in _footprint_points(g, r)])
    lon0, lat0 = float(points[:, 0].mean()), float(points[:, 1].mean())
    aeqd = f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m"
    to_frame = Transformer.from_crs("EPSG:4326", aeqd, always_xy=True)
    x, y = to_frame.transform(points[:, 0], points[:, 1])
    centre = shapely.minimum_bounding_circle(shapely.MultiPoint(np.column_stack([x, y]))).centroid
    lon, lat = Transformer.from_crs(aeqd, "EPSG:4326", always_xy=True).transform(centre.x, centre.y)
    _, lon_q, lat_q = format_minutes(lon, lat)
    _, _, dist = WGS84.inv(np.full(len(points), lon_q), np.full(len(points), lat_q), points[:, 0], points[:, 1])
    radius_nm = max(1, math.ceil(float(np.max(dist)) / NM_M - 1e-6))
    return lon_q, lat_q, radius_nm


def _flight_levels(floor_m: float, ceiling_m: float) -> tuple[int, int]:
    lower = max(0, math.floor(floor_m / FT_M / 100))
    upper = 999 if ceiling_m >= ALT_MAX_M else min(999, math.ceil(ceiling_m / FT_M / 100))
    return lower, max(upper, lower)


def item_f(floor_m: float) -> str:
    """A NOTAM's item F for a floor: SFC, or whole feet AMSL rounded down (outward)."""
    return "SFC" if floor_m <= max(ALT_MIN_M, 0.0) else f"{math.floor(floor_m / FT_M)}FT AMSL"


def item_g(ceiling_m: float) -> str:
    """A NOTAM's item G for a ceiling: UNL, or whole feet AMSL rounded up (outward)."""
    return "UNL" if ceiling_m >= ALT_MAX_M else f"{math.ceil(ceiling_m / FT_M)}FT AMSL"


def _day(t: datetime) -> str:
    return f"{_MONTHS[t.month - 1]} {t.day:02d}"


def _schedule(windows: Sequence[tuple[datetime, datetime]]) -> str:
    """Item D: each window, ``APR 09 0800-1000``, or ``APR 09 2200-APR 10 0200`` across midnight."""
    parts = []
    for start, end in sorted(set(windows)):
        a, b = format_stamp(start), format_stamp(end, up=True)
        same_day = a[:6] == b[:6]
        parts.append(f"{_day(start)} {a[6:]}-{b[6:]}" if same_day else f"{_day(start)} {a[6:]}-{_day(end)} {b[6:]}")
    return ", ".join(parts)


def _metres(value: float) -> str:
    return f"{round(float(value), 1):g}M"


def _area_text(geometry: dict[str, Any], radius_m: float | None) -> str:
    """A footprint in item E: ``CIRCLE RADIUS 10000M CENTRE 343121.36N 0373747.28E`` or ``POLYGON a - b - c``."""
    from shapely.geometry import shape

    if geometry.get("type") == "Point" and radius_m:
        lon, lat = geometry["coordinates"][:2]
        return f"CIRCLE RADIUS {_metres(radius_m)} CENTRE {format_dms(float(lon), float(lat))}"
    geom = shape(geometry)
    rings = [list(p.exterior.coords)[:-1] for p in getattr(geom, "geoms", [geom])]
    return " AND ".join("POLYGON " + " - ".join(format_dms(x, y) for x, y in ring) for ring in rings)


def _notam(
    *, number: int, year: int, q: QLine, start: datetime, end: datetime | None, d: str, e: str, f: str, g: str
) -> str:
    c = format_stamp(end, up=True) if end is not None else "PERM"
    lines = [
        f"A{number:04d}/{year % 100:02d} NOTAMN",
        f"Q) {q.text()}",
        f"A) {q.fir} B) {format_stamp(start)} C) {c}",
    ]
    if d:
        lines.append(f"D) {d}")
    lines += [f"E) {e}", f"F) {f} G) {g}"]
    return "\n".join(lines) + "\n"


def _number(ident: str) -> int:
    digits = re.findall(r"\d+", ident)
    return int(digits[-1]) % 10_000 or 1 if digits else 1


def activity_notam(doc: dict[str, Any], *, number: int | None = None) -> str:
    """The draft NOTAM of one activity (a document as ``formats.docs.activity_to_doc`` gives it, whole).

    Raises:
        InvalidInput: its centre is in no FIR known (formats/_notam_firs).
    """
    vols = doc["volumes"]
    kind = ActivityKind(doc["kind"])
    lon, lat, radius_nm = covering_circle([(v["geometry"], v.get("radius_m")) for v in vols])
    fir = fir_at(lon, lat, where=f"activity {doc['id']} centre")
    floor = min(float(v["floor_m"]) for v in vols)
    ceiling = max(float(v["ceiling_m"]) for v in vols)
    lower, upper = _flight_levels(floor, ceiling)
    windows = [(parse_utc(v["start"], field="start"), parse_utc(v["end"], field="end")) for v in vols]
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    q = QLine(fir.code, ACTIVITY_CODES[kind], "IV", "BO", "W", lower, upper, lon, lat, radius_nm)
    title = plain(doc.get("title") or "").replace(".", ",").rstrip(",")  # a full stop ends the head
    head = f"{plain(kind.value)} BY {plain(doc['party'])} (DECONFLICT ACTIVITY {doc['id']} VERSION {doc['version']})"
    body = [head + (f": {title}." if title else ".")]
    for v in vols:
        t0, t1 = parse_utc(v["start"], field="start"), parse_utc(v["end"], field="end")
        when = f"{format_stamp(t0)}-{format_stamp(t1, up=True)}"
        body.append(
            f"VOLUME {v['id']}: {_area_text(v['geometry'], v.get('radius_m'))}, "
            f"FROM {_metres(v['floor_m'])} TO {_metres(v['ceiling_m'])} AMSL, {when}."
        )
    d = _schedule(windows) if len(set(windows)) > 1 else ""
    year = start.year
    return _notam(
        number=number or _number(doc["id"]),
        year=year,
        q=q,
        start=start,
        end=end,
        d=d,
        e="\n".join(body),
        f=item_f(floor),
        g=item_g(ceiling),
    )


def zone_notam(doc: dict[str, Any], *, number: int | None = None) -> str:
    """The draft NOTAM of one zone (a document as ``Service.zones`` gives it); item C is ``PERM`` for a
    zone with no end.

    Raises:
        InvalidInput: its centre is in no FIR known.
    """
    kind = ZoneKind(doc["kind"])
    lon, lat, radius_nm = covering_circle([(doc["geometry"], doc.get("radius_m"))])
    fir = fir_at(lon, lat, where=f"zone {doc['id']} centre")
    floor, ceiling = float(doc["floor_m"]), float(doc["ceiling_m"])
    lower, upper = _flight_levels(floor, ceiling)
    q = QLine(fir.code, ZONE_CODES[kind], "IV", "BO", "W", lower, upper, lon, lat, radius_nm)
    forbids = ", ".join(plain(k) for k in doc["forbids"])
    binds = " BINDS ITS OWNER TOO." if doc.get("applies_to_owner") else ""
    body = [
        f"{plain(kind.value)} {plain(doc.get('name') or '')} DECLARED BY {plain(doc['owner'])} "
        f"(DECONFLICT ZONE {doc['id']}). FORBIDS {forbids}.{binds}",
        f"AREA: {_area_text(doc['geometry'], doc.get('radius_m'))}, FROM {_metres(floor)} TO {_metres(ceiling)} AMSL.",
    ]
    start = parse_utc(doc["valid_from"], field="valid_from")
    end = parse_utc(doc["valid_to"], field="valid_to") if doc.get("valid_to") else None
    return _notam(
        number=number or _number(doc["id"]),
        year=start.year,
        q=q,
        start=start,
        end=end,
        d="",
        e="\n".join(body),
        f=item_f(floor),
        g=item_g(ceiling),
    )


def not_live(activity: Activity, now: datetime | None = None) -> str | None:
    """Why ``activity`` has no NOTAM (``"cancelled"``, ``"ended"``), or None while it is still to come or under
    way. With ``now``, an activity whose every window ended by then counts as ended even if its state was not
    yet moved on (the duty loop ends it a little later)."""
    if activity.state in (ActivityState.CANCELLED, ActivityState.ENDED):
        return activity.state.value
    ends = [v.end for v in activity.volumes]
    if now is not None and ends and all(e is not None and e <= now for e in ends):
        return ActivityState.ENDED.value
    return None


def reader_activity_notam(
    activity: Activity,
    reader: Member,
    disclosure: Disclosure,
    *,
    number: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """The draft NOTAM of ``activity`` if ``reader`` may see it whole, else None (a NOTAM carries the whole
    notice: under conflicts-only another party's activity has none for the reader, and is answered as one
    that does not exist). The one rule is :func:`deconflict.disclosure.sees_whole_notices`.

    Raises:
        InvalidState: the activity is cancelled or ended (:func:`not_live`, with ``now`` when given; asked
            only once the reader may see it).
    """
    from deconflict.disclosure import sees_whole_notices
    from deconflict.formats.docs import activity_to_doc

    if not sees_whole_notices(reader, disclosure, activity.party):
        return None
    if why := not_live(activity, now):
        raise InvalidState(
            f"activity {activity.id} is {why}: a NOTAM is drafted for an activity still to come or under way",
            field="activity",
        )
    return activity_notam(activity_to_doc(activity), number=number)
