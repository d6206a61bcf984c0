"""NOTAM in: NOTAM text (one or several) read into drafts of notices and zones, for the service's own use
cases (``Service.notify``, ``Service.declare_zone``) to check and store.

A NOTAM drafted by deconflict (formats/notam) is read back from item E, which says each volume exactly.
Any other NOTAM is read from its items: the area from item E's polygon (three or more positions) or the
Q-line's circle (centre to the minute, radius in whole NM), the window from items B and C (or each window
of item D), the levels from items F and G (or the Q-line's flight levels), the kind from the NOTAM code
(:data:`ACTIVITY_SUBJECTS`, :data:`ZONE_SUBJECTS`). A restricted, prohibited or danger area NOTAM (codes
QRR, QRP, QRD) becomes a zone; every other known code a notice.

Only new NOTAMs (NOTAMN) are read; errors name the NOTAM and the item (``NOTAM 2 item C: ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.formats._notam_firs import fir_named
from deconflict.formats._notam_text import (
    NotamError,
    RawNotam,
    fail,
    parse_dms_pair,
    parse_level,
    parse_qline,
    parse_stamp,
    split_notams,
)
from deconflict.formats.notam import item_f, item_g, plain
from deconflict.model import ALT_MAX_M, ALT_MIN_M, ActivityKind, ZoneKind
from deconflict.units import FT_M, NM_M

__all__ = ["ACTIVITY_SUBJECTS", "ZONE_SUBJECTS", "NoticeDraft", "ZoneDraft", "read_notams"]

ACTIVITY_SUBJECTS: dict[str, ActivityKind] = {
    "RT": ActivityKind.AIR_SORTIE,  # temporary restricted area
    "WT": ActivityKind.AIR_SORTIE,  # mass movement of aircraft
    "WU": ActivityKind.UAV_PATROL,  # unmanned aircraft
    "WM": ActivityKind.AIR_DEFENCE_ACTIVATION,  # missile, gun or rocket firing
    "WE": ActivityKind.EXERCISE,  # exercises
}
"""The activity kind a NOTAM code's subject (its 2nd and 3rd letters) is read as."""

ZONE_SUBJECTS: dict[str, ZoneKind] = {
    "RR": ZoneKind.RESTRICTED,
    "RP": ZoneKind.PROTECTED,
    "RD": ZoneKind.AIR_DEFENCE,
}
"""The zone kind a restricted (RR), prohibited (RP) or danger area (RD) NOTAM is read as."""

AIRBORNE = ("air_sortie", "exercise", "uav_patrol")
"""What a zone read from a NOTAM that does not say forbids: flying in it."""

_ACTIVITY_HEAD = re.compile(
    r"^(?P<kind>[A-Z ]+?) BY (?P<party>\S+) \(DECONFLICT ACTIVITY (?P<id>\S+) VERSION \d+\)"
    r"(?::\s*(?P<title>.*?))?\.\s*(?=VOLUME |$)"
)
_ZONE_HEAD = re.compile(
    r"^(?P<kind>RED LINE|RESTRICTED|PROTECTED|AIR DEFENCE) (?P<name>.*?)\s*DECLARED BY (?P<owner>\S+) "
    r"\(DECONFLICT ZONE (?P<id>\S+)\)\. FORBIDS (?P<forbids>[A-Z ,]+)\.(?P<binds> BINDS ITS OWNER TOO\.)?"
)
_VOLUME = re.compile(r"VOLUME (?P<id>\S+): (?P<body>.*?)(?=\s*VOLUME \S+:|$)")
_CIRCLE = re.compile(r"CIRCLE RADIUS (?P<r>\d+(?:\.\d+)?)M CENTRE (?P<centre>[0-9.]+[NS] [0-9.]+[EW])")
_BAND = re.compile(r"FROM (?P<floor>-?\d+(?:\.\d+)?)M TO (?P<ceiling>-?\d+(?:\.\d+)?)M AMSL")
_WINDOW = re.compile(r"(?<!\d)(\d{10})-(\d{10})(?!\d)")
_D_WINDOW = re.compile(r"^([A-Z]{3}) (\d{2}) (\d{4})-(?:([A-Z]{3}) (\d{2}) )?(\d{4})$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class NoticeDraft:
    """A notice read from NOTAM ``n``: what ``Service.notify`` takes."""

    n: int
    ident: str
    kind: str
    title: str
    volumes: list[dict[str, Any]]
    activity: str | None = None
    """The deconflict activity a draft of deconflict's own names (item E's head), else None."""


@dataclass(frozen=True)
class ZoneDraft:
    """A zone read from NOTAM ``n``: what ``Service.declare_zone`` takes (owned by the importing party)."""

    n: int
    ident: str
    zone: dict[str, Any]


def read_notams(text: str, *, party: str) -> list[NoticeDraft | ZoneDraft]:
    """Every NOTAM in ``text`` read into a draft, in order, for ``party`` (a zone's ids are in its namespace).

    Raises:
        NotamError: the first NOTAM that cannot be read, naming it and its item.
    """
    return [_named(raw, party) for raw in split_notams(text)]


def _named(raw: RawNotam, party: str) -> NoticeDraft | ZoneDraft:
    """:func:`_read`, a refusal naming the NOTAM by its identifier and line too (``NOTAM 2 item E: ... (NOTAM 2
    is A0123/26, from line 9)``): in a file of a civil authority's NOTAMs, "NOTAM 2" alone sent the officer
    counting."""
    try:
        return _read(raw, party)
    except NotamError as e:
        if not e.message.startswith(f"NOTAM {raw.n} "):
            raise
        raise NotamError(f"{e.message} (NOTAM {raw.n} is {raw.ident}, from line {raw.line})", field=e.field) from None


def _read(raw: RawNotam, party: str) -> NoticeDraft | ZoneDraft:
    n = raw.n
    if raw.kind != "N":
        word = "replaces" if raw.kind == "R" else "cancels"
        raise fail(n, "1", f"{raw.ident} NOTAM{raw.kind} {word} another NOTAM; only new NOTAMs (NOTAMN) are read")
    q = parse_qline(raw.item("Q"), n)
    a = raw.item("A").split()[0]
    try:
        fir_named(a)
    except InvalidInput as e:
        raise fail(n, "A", e.message.removeprefix("item A: ")) from None
    if q.fir != a:
        raise fail(n, "A", f"{a} is not the Q-line's FIR {q.fir}")
    start = parse_stamp(raw.item("B"), n, "B")
    c = raw.item("C").removesuffix("EST").strip()
    end = None if c in ("PERM", "PERMANENT") else parse_stamp(c, n, "C")
    if end is not None and not end > start:
        raise fail(n, "C", f"{iso(end)} is not after item B {iso(start)}")
    subject = q.code[1:3]
    body = raw.items.get("E", "")
    floor, ceiling = _levels(raw, q.lower_fl, q.upper_fl)
    if subject in ZONE_SUBJECTS:
        return _zone(raw, party, ZONE_SUBJECTS[subject], q, start, end, body, floor, ceiling)
    if subject not in ACTIVITY_SUBJECTS:
        known = ", ".join(f"Q{s}" for s in [*ACTIVITY_SUBJECTS, *ZONE_SUBJECTS])
        raise fail(n, "Q", f"NOTAM code {q.code}: no activity or zone is read from it (known: {known}...)")
    if end is None:
        raise fail(n, "C", "PERM: an activity needs an end (a permanent NOTAM can only be a zone)")
    head = _ACTIVITY_HEAD.match(body)
    kind = ACTIVITY_SUBJECTS[subject].value
    named = None
    if head is not None:
        _own(raw, party, head["party"], f"activity {head['id']}")
        kind = _kind_named(head["kind"], ActivityKind, n)
        title = head["title"] or ""
        volumes = [_volume(raw, m) for m in _VOLUME.finditer(body, head.end())]
        if not volumes:
            raise fail(n, "E", "names a deconflict activity but gives no VOLUME")
        _inside(raw, volumes, start, end)
        _levels_inside(raw, volumes)
        named = head["id"]
    else:
        title = f"NOTAM {raw.ident}: {plain(body, limit=150)}".strip().rstrip(":")
        area = _area(raw, q, body)
        volumes = [
            {**area, "id": f"v{k + 1}", "floor_m": floor, "ceiling_m": ceiling, "start": iso(t0), "end": iso(t1)}
            for k, (t0, t1) in enumerate(_windows(raw, start, end))
        ]
    return NoticeDraft(n, raw.ident, kind, title[:200], volumes, named)


def _own(raw: RawNotam, party: str, drafted_by: str, what: str) -> None:
    """A NOTAM deconflict drafted of another party's activity or zone is that party's: imported by this one, it
    became this party's own (an Israeli sortie notified as Türkiye's, Israel's red line declared as Türkiye's)."""
    if drafted_by.upper() != party.upper():
        raise fail(
            raw.n,
            "E",
            f"it is the NOTAM deconflict drafted of {drafted_by}'s {what}, not of {party}'s: a party imports its "
            f"own notices and zones ({drafted_by}'s are in the record already, as {drafted_by} gave them)",
        )


def _kind_named(words: str, enum: Any, n: int) -> Any:
    value = words.strip().lower().replace(" ", "_")
    try:
        return enum(value).value
    except ValueError:
        raise fail(n, "E", f"{words.strip()!r} is not a kind deconflict knows") from None


def _levels(raw: RawNotam, lower_fl: int, upper_fl: int) -> tuple[float, float]:
    """(floor, ceiling) in metres AMSL from items F and G, else from the Q-line's flight levels."""
    n = raw.n
    if "F" in raw.items:
        floor = parse_level(raw.item("F"), n, "F", surface_m=ALT_MIN_M, unlimited_m=ALT_MAX_M).metres
    else:
        floor = ALT_MIN_M if lower_fl == 0 else round(lower_fl * 100 * FT_M, 1)
    if "G" in raw.items:
        ceiling = parse_level(raw.item("G"), n, "G", surface_m=ALT_MIN_M, unlimited_m=ALT_MAX_M).metres
    else:
        ceiling = ALT_MAX_M if upper_fl == 999 else round(upper_fl * 100 * FT_M, 1)
    if not floor < ceiling:
        raise fail(
            n, "F" if "F" in raw.items else "Q", f"the lower limit {floor:g} m is not below the upper {ceiling:g} m"
        )
    return floor, ceiling


def _area(raw: RawNotam, q: Any, body: str) -> dict[str, Any]:
    """A footprint from item E's polygon (3 or more positions), else the Q-line's circle."""
    points = parse_dms_pair(body)
    if len(points) >= 3:
        ring = [list(p) for p in points]
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        return {"geometry": {"type": "Polygon", "coordinates": [ring]}}
    if q.radius_nm == 0:
        raise fail(raw.n, "Q", "radius 000: give the area as a radius, or as a polygon in item E")
    return {"geometry": {"type": "Point", "coordinates": [q.lon, q.lat]}, "radius_m": q.radius_nm * NM_M}


def _windows(raw: RawNotam, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Item D's windows (``APR 09 0800-1000``, ``APR 09 2200-APR 10 0200``, comma-separated; or a schedule by
    day, :func:`_by_day`), else B to C."""
    d = raw.items.get("D", "").strip()
    if not d:
        return [(start, end)]
    if d.split()[0].rstrip(",") in ("DAILY", *_WEEKDAYS) or d.split("-")[0] in _WEEKDAYS:
        return _by_day(raw, d, start, end)
    out = []
    for part in (p.strip() for p in d.split(",")):
        m = _D_WINDOW.match(part)
        if m is None or m[1] not in _MONTHS or (m[4] and m[4] not in _MONTHS):
            raise fail(raw.n, "D", f"{part!r}: expected windows such as 'APR 09 0800-1000, APR 10 2200-APR 11 0200'")
        t0 = _on_day(raw, m[1], m[2], m[3], start)
        t1 = _on_day(raw, m[4] or m[1], m[5] or m[2], m[6], t0)
        if not start <= t0 < t1 <= end:
            raise fail(raw.n, "D", f"{part!r} is not a window within items B to C")
        out.append((t0, t1))
    return out


_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_HOURS = re.compile(r"^(\d{2})(\d{2})-(\d{2})(\d{2})$")


def _by_day(raw: RawNotam, d: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Item D as a schedule by day, each day from item B's to item C's: ``DAILY 0600-1200``, ``MON-FRI
    0700-1500``, ``MON WED FRI 0800-1000 1400-1600``, ``SAT SUN 0900-1100, MON-FRI 0600-0800`` (days, then one
    or more hour ranges, UTC; a range that ends at or before it starts runs into the next day); each window held
    to items B to C."""
    groups: list[tuple[set[int], list[tuple[int, int, int, int]]]] = []
    days: set[int] = set()
    hours: list[tuple[int, int, int, int]] = []
    for token in d.replace(",", " ").split():
        m = _HOURS.match(token)
        if m is not None:
            if not days:
                raise fail(raw.n, "D", f"{token!r} comes before the days it is for (e.g. 'DAILY 0600-1200')")
            h0, m0, h1, m1 = (int(x) for x in m.groups())
            if h0 > 24 or h1 > 24 or m0 > 59 or m1 > 59 or (h0 == 24 and m0) or (h1 == 24 and m1):
                raise fail(raw.n, "D", f"{token!r}: hours and minutes as HHMM-HHMM, UTC")
            hours.append((h0, m0, h1, m1))
            continue
        if hours:  # a new group of days begins
            groups.append((days, hours))
            days, hours = set(), []
        if token == "DAILY":
            days |= set(range(7))
            continue
        first, _, last = token.partition("-")
        if first not in _WEEKDAYS or (last and last not in _WEEKDAYS):
            raise fail(
                raw.n,
                "D",
                f"{token!r}: expected a schedule such as 'DAILY 0600-1200' or 'MON-FRI 0700-1500', or windows such "
                "as 'APR 09 0800-1000'",
            )
        a, b = _WEEKDAYS.index(first), _WEEKDAYS.index(last or first)
        days |= {(a + k) % 7 for k in range((b - a) % 7 + 1)}
    if not hours:
        raise fail(raw.n, "D", f"{d!r} gives days but no hours (e.g. 'DAILY 0600-1200')")
    groups.append((days, hours))
    out: set[tuple[datetime, datetime]] = set()
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    while day <= end:
        for weekdays, ranges in groups:
            if day.weekday() not in weekdays:
                continue
            for h0, m0, h1, m1 in ranges:
                t0 = day + timedelta(hours=h0, minutes=m0)
                t1 = day + timedelta(hours=h1, minutes=m1)
                t1 = t1 + timedelta(days=1) if t1 <= t0 else t1
                t0, t1 = max(t0, start), min(t1, end)
                if t0 < t1:
                    out.add((t0, t1))
        day += timedelta(days=1)
    if not out:
        raise fail(raw.n, "D", f"{d!r} has no window within items B to C")
    return sorted(out)


def _on_day(raw: RawNotam, month: str, day: str, hhmm: str, after: datetime) -> datetime:
    """The instant ``month day hhmm`` in the year of ``after`` (the next year if that is earlier)."""
    for year in (after.year, after.year + 1):
        stamp = f"{year % 100:02d}{_MONTHS.index(month) + 1:02d}{day}{hhmm}"
        t = parse_stamp(stamp, raw.n, "D")
        if t >= after.replace(hour=0, minute=0):
            return t
    return t


def _volume(raw: RawNotam, m: re.Match[str]) -> dict[str, Any]:
    """One ``VOLUME id: area, FROM floor TO ceiling AMSL, window.`` of a deconflict draft's item E."""
    text, vid = m["body"], m["id"]
    band, window = _BAND.search(text), _WINDOW.search(text)
    if band is None or window is None:
        raise fail(raw.n, "E", f"VOLUME {vid}: expected 'FROM <m>M TO <m>M AMSL' and a window YYMMDDHHMM-YYMMDDHHMM")
    out = _drawn_area(raw, text, f"VOLUME {vid}")
    t0 = parse_stamp(window[1], raw.n, "E")
    t1 = parse_stamp(window[2], raw.n, "E")
    return {
        **out,
        "id": vid,
        "floor_m": float(band["floor"]),
        "ceiling_m": float(band["ceiling"]),
        "start": iso(t0),
        "end": iso(t1),
    }


def _drawn_area(raw: RawNotam, text: str, where: str) -> dict[str, Any]:
    """``CIRCLE RADIUS <m>M CENTRE <pos>`` or ``POLYGON <pos> - <pos> - ... [AND POLYGON ...]``."""
    circle = _CIRCLE.search(text)
    if circle is not None:
        ((lon, lat),) = parse_dms_pair(circle["centre"])
        return {"geometry": {"type": "Point", "coordinates": [lon, lat]}, "radius_m": float(circle["r"])}
    if "POLYGON " not in text:
        raise fail(raw.n, "E", f"{where}: expected 'CIRCLE RADIUS <m>M CENTRE <position>' or 'POLYGON <positions>'")
    rings = []
    for chunk in text.split("POLYGON ")[1:]:
        ring = [list(p) for p in parse_dms_pair(chunk.split(", FROM")[0])]
        if len(ring) < 3:
            raise fail(raw.n, "E", f"{where}: a POLYGON needs at least 3 positions")
        rings.append([[*ring, ring[0]]])
    geometry = (
        {"type": "Polygon", "coordinates": rings[0]}
        if len(rings) == 1
        else {
            "type": "MultiPolygon",
            "coordinates": rings,
        }
    )
    return {"geometry": geometry}


def _inside(raw: RawNotam, volumes: list[dict[str, Any]], start: datetime, end: datetime) -> None:
    """Items B, C and D of a deconflict draft agree with item E: B the first start of its windows, C the last
    end, D (when given) each window (the draft writes all of them to the minute, outward, so they agree
    exactly). The windows are read from item E, so an edit to B, C or D alone would be silently lost: it
    is refused, naming the item."""
    first = min(v["start"] for v in volumes)
    last = max(v["end"] for v in volumes)
    how = "the windows are read from item E (edit them there), B and C only summarise them"
    if iso(start) != first:
        raise fail(raw.n, "B", f"{iso(start)}, but item E says the first window starts at {first}; {how}")
    if iso(end) != last:
        raise fail(raw.n, "C", f"{iso(end)}, but item E says the last window ends at {last}; {how}")
    if raw.items.get("D", "").strip():  # the draft's schedule: each of item E's windows, no other
        given = sorted({(iso(t0), iso(t1)) for t0, t1 in _windows(raw, start, end)})
        said = sorted({(v["start"], v["end"]) for v in volumes})
        if given != said:
            listed = ", ".join(f"{a}–{b}" for a, b in said)
            raise fail(raw.n, "D", f"its windows are not the ones item E says ({listed}); {how}")


def _levels_inside(raw: RawNotam, volumes: list[dict[str, Any]]) -> None:
    """Items F and G of a deconflict draft agree with item E: F the lowest floor of its volumes, G the highest
    ceiling (each written outward to the foot, or SFC, UNL). The levels are read from item E, so an edit to F or
    G alone would be silently lost: it is refused, naming the item."""
    how = "the levels are read from item E (edit them there), F and G only summarise them"
    for item, said, drafted in (
        ("F", min(float(v["floor_m"]) for v in volumes), item_f),
        ("G", max(float(v["ceiling_m"]) for v in volumes), item_g),
    ):
        if item not in raw.items:
            continue
        given = parse_level(raw.item(item), raw.n, item, surface_m=ALT_MIN_M, unlimited_m=ALT_MAX_M).metres
        expected = drafted(said)
        if given != parse_level(expected, raw.n, item, surface_m=ALT_MIN_M, unlimited_m=ALT_MAX_M).metres:
            which = "lowest floor" if item == "F" else "highest ceiling"
            raise fail(raw.n, item, f"{raw.item(item)}, but item E says the {which} is {expected} ({said:g} m); {how}")


def _zone(
    raw: RawNotam,
    party: str,
    kind: ZoneKind,
    q: Any,
    start: datetime,
    end: datetime | None,
    body: str,
    floor: float,
    ceiling: float,
) -> ZoneDraft:
    n = raw.n
    if raw.items.get("D", "").strip():
        raise fail(n, "D", "a zone has one validity window (items B to C); give no schedule for a zone")
    head = _ZONE_HEAD.match(body)
    zid = f"{party}-NOTAM-{raw.series}{raw.number:04d}-{raw.year % 100:02d}"
    doc: dict[str, Any] = {"kind": kind.value, "forbids": list(AIRBORNE), "name": f"NOTAM {raw.ident}"}
    if head is not None:
        _own(raw, party, head["owner"], f"zone {head['id']}")
        doc["kind"] = _kind_named(head["kind"], ZoneKind, n)
        doc["name"] = head["name"] or doc["name"]
        doc["forbids"] = [_kind_named(k, ActivityKind, n) for k in head["forbids"].split(",")]
        doc["applies_to_owner"] = bool(head["binds"])
        if head["id"].upper().startswith(f"{party.upper()}-"):
            zid = head["id"]
        area_text = body[head.end() :]
        doc |= _drawn_area(raw, area_text, "AREA")
        band = _BAND.search(area_text)
        if band is not None:
            floor, ceiling = float(band["floor"]), float(band["ceiling"])
            _levels_inside(raw, [{"floor_m": floor, "ceiling_m": ceiling}])
    else:
        doc |= _area(raw, q, body)
    doc |= {"id": zid, "valid_from": iso(start), "floor_m": floor, "ceiling_m": ceiling}
    if end is not None:
        doc["valid_to"] = iso(end)
    return ZoneDraft(n, raw.ident, doc)
