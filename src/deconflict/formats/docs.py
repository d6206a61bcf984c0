"""Documents (plain JSON-able dicts) to domain types and back: the one translation layer.

The same documents are what the record (ledger) stores as payloads, what the API
accepts and returns, and what mechanism files contain.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from deconflict.clock import EARLIEST, LATEST, iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.formats.geojson import parse_volume
from deconflict.geo import Footprint, finite, footprint_from_geojson, parse_footprint
from deconflict.model import (
    ALT_MAX_M,
    ALT_MIN_M,
    HORIZON_S,
    MAX_WINDOW_S,
    Activity,
    ActivityKind,
    ActivityState,
    Disclosure,
    Member,
    Role,
    Rules,
    Rung,
    Volume,
    Zone,
    ZoneKind,
)
from deconflict.text import forbidden_character, refusal
from deconflict.units import FPM_MPS, FT_M, KT_MPS

MAX_VOLUMES = 100
"""Most volumes one activity may carry."""
DAY_S = 24 * 3600.0
"""Seconds in a day: the rules give the window limits in days."""

_E = TypeVar("_E", bound=Enum)


def choice(value: Any, enum: type[_E], field: str, where: str = "") -> _E:
    """Validate a value against an enumeration, listing the accepted values when it is wrong."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        prefix = f"{where} " if where else ""
        raise InvalidInput(f"{prefix}{field}: {value!r} is not one of: {allowed}", field=field) from None


def number(value: Any, field: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    found = finite(value, field)
    if minimum is not None and found < minimum:
        raise InvalidInput(f"{field}: must be at least {minimum:g}, got {found:g}", field=field)
    if maximum is not None and found > maximum:
        raise InvalidInput(f"{field}: must be at most {maximum:g}, got {found:g}", field=field)
    return found


def text(value: Any, field: str, *, max_len: int = 200) -> str:
    """Text a person wrote (a name, a reason), stripped and in Unicode NFC: refused when missing, longer than
    ``max_len`` characters (as normalised), or holding what could make it read otherwise than written
    (:mod:`deconflict.text`: the API refuses it in a request; this refuses it whatever the way in).

    >>> text("  Duty officer, Ankara ", "name"), text("Cafe\u0301", "name")
    ('Duty officer, Ankara', 'Café')
    """
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field}: expected text, got {value!r}", field=field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: missing or empty", field=field)
    written: str = value
    bad = forbidden_character(written)
    if bad is not None:
        raise InvalidInput(refusal(field, bad), field=field)
    if not unicodedata.is_normalized("NFC", written):
        written = unicodedata.normalize("NFC", written)
    if len(written) > max_len:
        raise InvalidInput(f"{field}: longer than {max_len} characters", field=field)
    return written.strip()


ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.:")
"""What an id may hold: ASCII letters and digits, '-', '_', '.', ':' (so that no two ids look alike:
a Cyrillic 'Т' in 'ТR-1378' is refused, not taken for Türkiye's 'T')."""


def identifier(value: Any, field: str) -> str:
    """An id: 1–64 characters of ASCII letters, digits, '-', '_', '.', ':'.

    >>> identifier("\u0422R-1378", "id")
    Traceback (most recent call last):
    ...
    deconflict.errors.InvalidInput: id: 'ТR-1378' may only hold ASCII letters, digits and - _ . : (not 'Т', U+0422)
    """
    s = text(value, field, max_len=64)
    bad = next((ch for ch in s if ch not in ID_CHARACTERS), None)
    if bad is not None:
        raise InvalidInput(
            f"{field}: {s!r} may only hold ASCII letters, digits and - _ . : (not {bad!r}, U+{ord(bad):04X})",
            field=field,
        )
    return s


def own_identifier(value: Any, field: str, *, party: str, parties: set[str]) -> str:
    """An id a party chooses for something of its own (an activity, a zone): an :func:`identifier` that does
    not begin with another party's code and a dash, so that no party can write in another's name.

    >>> own_identifier("TR-9090", "id", party="IL", parties={"TR", "IL"})
    Traceback (most recent call last):
    ...
    deconflict.errors.InvalidInput: id: 'TR-9090' is in TR's namespace; IL's ids begin with 'IL-'
    """
    s = identifier(value, field)
    for other in parties - {party}:
        if s.upper().startswith(f"{other.upper()}-"):
            raise InvalidInput(
                f"{field}: {s!r} is in {other}'s namespace; {party}'s ids begin with '{party}-'", field=field
            )
    return s


def party_identifier(value: Any, field: str, *, party: str) -> str:
    """An activity id a party chooses: an :func:`identifier` in the party's own namespace (``IL-...``).
    Ids being per party, choosing one answers only about the party's own notices (a taken id of another
    party's hidden notice cannot be found out by trying it).

    >>> party_identifier("SORTIE-7", "id", party="IL")
    Traceback (most recent call last):
    ...
    deconflict.errors.InvalidInput: id: 'SORTIE-7' is not in IL's namespace; IL's activity ids begin with 'IL-'
    """
    s = identifier(value, field)
    if not s.startswith(f"{party}-") or len(s) == len(party) + 1:
        raise InvalidInput(
            f"{field}: {s!r} is not in {party}'s namespace; {party}'s activity ids begin with '{party}-'", field=field
        )
    return s


# --- volumes and activities ------------------------------------------------------------------


def volume_to_doc(v: Volume) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": v.id,
        "geometry": v.footprint.to_geojson(),
        "floor_m": v.floor_m,
        "ceiling_m": v.ceiling_m,
        "start": iso(v.start) if v.start else None,
        "end": iso(v.end) if v.end else None,
    }
    if v.footprint.is_circle:
        doc["radius_m"] = v.footprint.radius_m
    return doc


def volume_from_doc(doc: dict[str, Any], *, party: str, activity: str) -> Volume:
    """Rebuild a stored (already validated) volume."""
    return Volume(
        id=doc["id"],
        footprint=footprint_from_geojson(doc["geometry"], doc.get("radius_m", 0.0)),
        floor_m=float(doc["floor_m"]),
        ceiling_m=float(doc["ceiling_m"]),
        start=parse_utc(doc["start"], field="start"),
        end=parse_utc(doc["end"], field="end"),
        party=party,
        activity=activity,
    )


def parse_volumes(raw: Any, *, party: str, activity: str) -> tuple[Volume, ...]:
    """Validate the volumes of a notice: a list of {id?, geometry, radius_m?, floor_m, ceiling_m, start, end}."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("volumes: a notice needs at least one volume", field="volumes")
    if len(raw) > MAX_VOLUMES:
        raise InvalidInput(f"volumes: at most {MAX_VOLUMES} volumes in one notice, got {len(raw)}", field="volumes")
    out: list[Volume] = []
    seen: set[str] = set()
    for n, item in enumerate(raw):
        where = f"volume {n + 1}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: expected an object with geometry, altitudes and window", field="volumes")
        v = parse_volume(
            item, item.get("geometry"), where=where, require_window=True, default_id=f"v{n + 1}", party=party
        )
        if v.id in seen:
            raise InvalidInput(f"{where} id: {v.id!r} is used twice in this notice", field="id")
        seen.add(v.id)
        out.append(Volume(v.id, v.footprint, v.floor_m, v.ceiling_m, v.start, v.end, party=party, activity=activity))
    return tuple(out)


def check_windows(vols: tuple[Volume, ...], *, now: datetime, rules: Rules) -> None:
    """Hold each volume's window to the rules: no longer than ``max_window_s``, starting no later than
    ``horizon_s`` after ``now``. A longer or farther activity is notified in parts, nearer the time: a
    notice that spans years, or lies years ahead, says nothing a duty officer can act on.

    Raises:
        InvalidInput: naming the volume and the field (``end`` for too long, ``start`` for too far ahead).
    """
    for n, v in enumerate(vols):
        if v.start is None or v.end is None:
            continue
        where = f"volume {n + 1} (id {v.id!r})"
        length = (v.end - v.start).total_seconds()
        if length > rules.max_window_s:
            raise InvalidInput(
                f"{where} end: the window lasts {_days(length)}, longer than the {_days(rules.max_window_s)} "
                f"the mechanism's rules allow (max_window_days); notify a longer activity in parts",
                field="end",
            )
        ahead = (v.start - now).total_seconds()
        if ahead > rules.horizon_s:
            raise InvalidInput(
                f"{where} start: {iso(v.start)} is more than {_days(rules.horizon_s)} ahead (the mechanism's "
                f"horizon_days); notify it nearer the time",
                field="start",
            )


def _days(seconds: float) -> str:
    """A duration in days (hours when under two days), as the window errors word it."""
    if seconds < 2 * DAY_S:
        return f"{seconds / 3600:g} hours"
    return f"{seconds / DAY_S:.4g} days"


def activity_to_doc(a: Activity) -> dict[str, Any]:
    return {
        "id": a.id,
        "party": a.party,
        "kind": a.kind.value,
        "title": a.title,
        "state": a.state.value,
        "version": a.version,
        "notified_at": iso(a.notified_at),
        "first_notified_at": iso(a.first_notified_at),
        "start": iso(a.start),
        "end": iso(a.end),
        "volumes": [volume_to_doc(v) for v in a.volumes],
    }


def activity_from_doc(doc: dict[str, Any], *, mechanism: str) -> Activity:
    return Activity(
        id=doc["id"],
        mechanism=mechanism,
        party=doc["party"],
        kind=ActivityKind(doc["kind"]),
        volumes=tuple(volume_from_doc(v, party=doc["party"], activity=doc["id"]) for v in doc["volumes"]),
        state=ActivityState(doc["state"]),
        version=int(doc["version"]),
        notified_at=parse_utc(doc["notified_at"], field="notified_at"),
        first_notified_at=parse_utc(doc["first_notified_at"], field="first_notified_at"),
        title=doc.get("title", ""),
    )


# --- zones -----------------------------------------------------------------------------------


def _zone_footprint(doc: dict[str, Any], where: str) -> Footprint:
    if "centre" in doc and "geometry" in doc:  # one was dropped without a word: the circle was declared
        raise InvalidInput(
            f"{where}: give either geometry (GeoJSON) or centre [lon, lat] with radius_m, not both", field="geometry"
        )
    if "centre" in doc:
        centre = doc["centre"]
        return parse_footprint({"type": "Point", "coordinates": centre}, doc.get("radius_m"), where=f"{where} centre")
    if "geometry" not in doc:
        raise InvalidInput(
            f"{where}: give either geometry (GeoJSON) or centre [lon, lat] with radius_m", field="geometry"
        )
    return parse_footprint(doc["geometry"], doc.get("radius_m"), where=f"{where} geometry")


def parse_zone(doc: Any, *, mechanism: str, owner: str, parties: set[str], where: str = "zone") -> Zone:
    """Validate a zone declaration. A refusal's ``field`` is the declaration's key (``id``, ``valid_from``,
    ``centre``), as every other refusal names its field; its words say which zone ("zone 'TR-R1' valid_from: ...").
    It was the words' prefix ("zone 'TR-R1' valid_from"), which a client marking the field could not find."""
    try:
        return _parse_zone(doc, mechanism=mechanism, owner=owner, parties=parties, where=where)
    except InvalidInput as e:
        if e.field and e.field.startswith(where) and " " in e.field:
            e.field = e.field.rsplit(" ", 1)[1]
        raise


def _parse_zone(doc: Any, *, mechanism: str, owner: str, parties: set[str], where: str) -> Zone:
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: expected an object")
    if owner not in parties:
        raise InvalidInput(f"{where} owner: {owner!r} is not a party of this mechanism", field="owner")
    zid = own_identifier(doc.get("id"), f"{where} id", party=owner, parties=parties)
    where = f"{where} {zid!r}"
    kind = choice(doc.get("kind"), ZoneKind, "kind", where)
    forbids_raw = doc.get("forbids")
    if not isinstance(forbids_raw, list) or not forbids_raw:
        raise InvalidInput(f"{where} forbids: list the activity kinds this zone forbids", field="forbids")
    forbids = frozenset(choice(k, ActivityKind, "forbids", where) for k in forbids_raw)
    footprint = _zone_footprint(doc, where)
    valid_from = parse_utc(doc.get("valid_from"), field=f"{where} valid_from")
    valid_to = None
    if doc.get("valid_to") is not None:
        valid_to = parse_utc(doc["valid_to"], field=f"{where} valid_to")
        if not valid_to > valid_from:
            raise InvalidInput(
                f"{where} valid_to: {iso(valid_to)} is not after valid_from {iso(valid_from)}", field="valid_to"
            )
    floor = number(doc.get("floor_m", ALT_MIN_M), f"{where} floor_m", minimum=ALT_MIN_M, maximum=ALT_MAX_M)
    ceiling = number(doc.get("ceiling_m", ALT_MAX_M), f"{where} ceiling_m", minimum=ALT_MIN_M, maximum=ALT_MAX_M)
    if not floor < ceiling:
        raise InvalidInput(f"{where} floor_m: {floor:g} m is not below ceiling_m {ceiling:g} m", field="floor_m")
    return Zone(
        id=zid,
        mechanism=mechanism,
        owner=owner,
        kind=kind,
        name=text(doc.get("name", zid), f"{where} name"),
        footprint=footprint,
        forbids=forbids,
        valid_from=valid_from,
        valid_to=valid_to,
        floor_m=floor,
        ceiling_m=ceiling,
        applies_to_owner=bool(doc.get("applies_to_owner", False)),
    )


def zone_to_doc(z: Zone) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": z.id,
        "owner": z.owner,
        "kind": z.kind.value,
        "name": z.name,
        "geometry": z.footprint.to_geojson(),
        "forbids": sorted(k.value for k in z.forbids),
        "valid_from": iso(z.valid_from),
        "valid_to": iso(z.valid_to) if z.valid_to else None,
        "floor_m": z.floor_m,
        "ceiling_m": z.ceiling_m,
        "applies_to_owner": z.applies_to_owner,
    }
    if z.footprint.is_circle:
        doc["radius_m"] = z.footprint.radius_m
    return doc


def zone_from_doc(doc: dict[str, Any], *, mechanism: str) -> Zone:
    return Zone(
        id=doc["id"],
        mechanism=mechanism,
        owner=doc["owner"],
        kind=ZoneKind(doc["kind"]),
        name=doc["name"],
        footprint=footprint_from_geojson(doc["geometry"], doc.get("radius_m", 0.0)),
        forbids=frozenset(ActivityKind(k) for k in doc["forbids"]),
        valid_from=parse_utc(doc["valid_from"], field="valid_from"),
        valid_to=parse_utc(doc["valid_to"], field="valid_to") if doc.get("valid_to") else None,
        floor_m=float(doc["floor_m"]),
        ceiling_m=float(doc["ceiling_m"]),
        applies_to_owner=bool(doc.get("applies_to_owner", False)),
    )


# --- rules and members -----------------------------------------------------------------------


def parse_rules(doc: Any, where: str = "rules") -> Rules:
    """Rules from a mechanism file: minutes for times, metres for distances."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: missing; a mechanism needs its rules")

    def required(name: str) -> Any:
        if name not in doc:
            raise InvalidInput(f"{where} {name}: missing", field=name)
        return doc[name]

    def minutes(name: str, minimum: float = 0) -> float:
        return number(required(name), f"{where} {name}", minimum=minimum, maximum=7 * 24 * 60) * 60.0

    ladder_raw = doc.get("ladder")
    if not isinstance(ladder_raw, list) or not ladder_raw:
        raise InvalidInput(f"{where} ladder: list at least one rung (name, answer_within_min)", field="ladder")
    ladder = []
    for n, rung in enumerate(ladder_raw):
        if not isinstance(rung, dict):
            raise InvalidInput(f"{where} ladder[{n}]: expected name and answer_within_min", field="ladder")
        name = text(rung.get("name"), f"{where} ladder[{n}] name")
        within = number(rung.get("answer_within_min"), f"{where} ladder[{n}] answer_within_min", minimum=0.1)
        ladder.append(Rung(name=name, after_s=within * 60.0))
    return Rules(
        min_notice_s=minutes("min_notice_min"),
        separation_m=number(required("separation_m"), f"{where} separation_m", minimum=0, maximum=500_000),
        vertical_separation_m=number(
            required("vertical_separation_m"), f"{where} vertical_separation_m", minimum=0, maximum=10_000
        ),
        # an alert answered within no time, or line checks every 0 minutes, would stop the duty loop: at
        # least 6 seconds, as a rung of the ladder
        ack_deadline_s=minutes("ack_deadline_min", minimum=0.1),
        line_check_interval_s=minutes("line_check_interval_min", minimum=0.1),
        ladder=tuple(ladder),
        disclosure=choice(doc.get("disclosure", "full"), Disclosure, "disclosure", where),
        area_margin_m=number(doc.get("area_margin_m", 0), f"{where} area_margin_m", minimum=0, maximum=100_000),
        track_lookahead_s=number(
            doc.get("track_lookahead_s", 300), f"{where} track_lookahead_s", minimum=10, maximum=3600
        ),
        track_stale_s=number(doc.get("track_stale_s", 60), f"{where} track_stale_s", minimum=1, maximum=3600),
        conformance_tolerance_m=number(
            doc.get("conformance_tolerance_m", 1852), f"{where} conformance_tolerance_m", minimum=0, maximum=100_000
        ),
        max_window_s=number(
            doc.get("max_window_days", MAX_WINDOW_S / DAY_S), f"{where} max_window_days", minimum=1 / 24, maximum=366
        )
        * DAY_S,
        horizon_s=number(
            doc.get("horizon_days", HORIZON_S / DAY_S), f"{where} horizon_days", minimum=1, maximum=3 * 366
        )
        * DAY_S,
    )


RULE_KEYS = frozenset(
    {
        "min_notice_min",
        "separation_m",
        "vertical_separation_m",
        "ack_deadline_min",
        "line_check_interval_min",
        "ladder",
        "disclosure",
        "area_margin_m",
        "track_lookahead_s",
        "track_stale_s",
        "conformance_tolerance_m",
        "max_window_days",
        "horizon_days",
    }
)
"""The keys :func:`parse_rules` reads (the caps of :mod:`deconflict.mechanisms` are read beside them)."""


def rules_to_doc(r: Rules) -> dict[str, Any]:
    return {
        "min_notice_min": r.min_notice_s / 60,
        "separation_m": r.separation_m,
        "vertical_separation_m": r.vertical_separation_m,
        "ack_deadline_min": r.ack_deadline_s / 60,
        "line_check_interval_min": r.line_check_interval_s / 60,
        "disclosure": r.disclosure.value,
        "area_margin_m": r.area_margin_m,
        "track_lookahead_s": r.track_lookahead_s,
        "track_stale_s": r.track_stale_s,
        "conformance_tolerance_m": r.conformance_tolerance_m,
        "max_window_days": r.max_window_s / DAY_S,
        "horizon_days": r.horizon_s / DAY_S,
        "ladder": [{"name": g.name, "answer_within_min": g.after_s / 60} for g in r.ladder],
    }


def parse_member(doc: Any, where: str = "member") -> Member:
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: expected id, name and role")
    mid = identifier(doc.get("id"), f"{where} id")
    where = f"{where} {mid!r}"
    role = choice(doc.get("role"), Role, "role", where)
    party = identifier(doc.get("party", mid), f"{where} party")
    language = doc.get("language", "en")
    if language not in LANGUAGES:
        raise InvalidInput(f"{where} language: {language!r} is not one of: {', '.join(LANGUAGES)}", field="language")
    return Member(id=mid, name=text(doc.get("name"), f"{where} name"), role=role, party=party, language=language)


LANGUAGES = ("en", "tr", "he", "ar", "ru")
"""Languages the agreed wording is kept in."""


def member_to_doc(m: Member) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "role": m.role.value, "party": m.party, "language": m.language}


TRACK_FIELDS = {
    "lat": ("latitude, degrees", -90.0, 90.0),
    "lon": ("longitude, degrees", -180.0, 180.0),
    "alt_ft": ("altitude, feet above mean sea level", -1500.0, 100_000.0),
    "gs_kt": ("ground speed, knots", 0.0, 2000.0),
    "trk_deg": ("track angle, degrees from true north", 0.0, 360.0),
    "vs_fpm": ("vertical speed, feet per minute", -30_000.0, 30_000.0),
}
"""Fields of a position report (aviation units, as ``deconflict tracks`` reads them), with their ranges."""


def parse_track_reports(reports: Any, *, now: datetime, stale_s: float, skew_s: float = 5.0) -> list[dict[str, Any]]:
    """Position reports checked (all of them, or a clear error naming the report and field) and turned
    into metres, metres per second and aware UTC times.

    >>> from datetime import UTC, datetime
    >>> now = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
    >>> r = {"id": "UAV-1", "at": "2025-04-09T05:59:50Z", "lat": 34.5, "lon": 37.6, "alt_ft": 10000,
    ...      "gs_kt": 100, "trk_deg": 90, "vs_fpm": 0}
    >>> parse_track_reports([r], now=now, stale_s=60)[0]["alt_m"]
    3048.0
    >>> parse_track_reports([{**r, "gs_kt": -1}], now=now, stale_s=60)
    Traceback (most recent call last):
    ...
    deconflict.errors.InvalidInput: report 0 (id 'UAV-1') gs_kt: ground speed, knots must be between 0 and 2000, got -1
    """
    if not isinstance(reports, list) or not reports:
        raise InvalidInput("reports: give a list of at least one position report", field="reports")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    times: dict[str, datetime | None] = {}  # a batch's reports share a few instants: each read once
    for n, r in enumerate(reports):
        state = _plain_report(r, now, stale_s, skew_s, times)
        if state is None or state["id"] in seen:
            state = _report(n, r, now, stale_s, skew_s, seen)
        seen.add(state["id"])
        out.append(state)
    return out


_REPORT_KEYS = frozenset({"id", "at", *TRACK_FIELDS})
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}").fullmatch
_NUMBER = (int, float)
_TRACK_RANGES = tuple(TRACK_FIELDS.items())


def _plain_report(
    r: Any, now: datetime, stale_s: float, skew_s: float, times: dict[str, datetime | None]
) -> dict[str, Any] | None:
    """A report that plainly passes, turned as :func:`_report` turns it; None for anything else (then
    :func:`_report` decides, with its worded error). Plain: only known fields, an id of allowed
    characters with nothing to strip, a time ``datetime.fromisoformat`` reads as it stands, with an
    offset, inside the years and the picture's window, and numbers (not booleans) inside their ranges
    (NaN and infinities never are). ``times``: the batch's times read so far (None: not plain)."""
    if r.__class__ is not dict or not _REPORT_KEYS.issuperset(r):
        return None
    tid, at = r.get("id"), r.get("at")
    if tid.__class__ is not str or _PLAIN_ID(tid) is None or at.__class__ is not str:
        return None
    if at in times:
        when = times[at]
    else:
        when = times[at] = _plain_time(at, now, stale_s, skew_s)
    if when is None:
        return None
    values = []
    for name, (_, low, high) in _TRACK_RANGES:
        value = r.get(name)
        if value.__class__ not in _NUMBER or not low <= value <= high:
            return None
        values.append(float(value))
    lat, lon, alt, gs, trk, vs = values
    return {
        "id": tid,
        "at": when,
        "lat": lat,
        "lon": lon,
        "alt_m": alt * FT_M,
        "gs_mps": gs * KT_MPS,
        "trk_deg": trk % 360.0,
        "vs_mps": vs * FPM_MPS,
    }


def _plain_time(at: str, now: datetime, stale_s: float, skew_s: float) -> datetime | None:
    """A report's time as :func:`_plain_report` takes it (UTC), or None when it is not plain."""
    try:
        read = datetime.fromisoformat(at)
        if read.utcoffset() is None:
            return None
        when = read.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if not EARLIEST <= when < LATEST:
        return None
    if (when - now).total_seconds() > skew_s or (now - when).total_seconds() > stale_s:
        return None
    return when


def _finite(value: float) -> bool:
    """A number that is not NaN or infinite (an integer of any size is finite)."""
    return isinstance(value, int) or math.isfinite(value)


def _report(n: int, r: Any, now: datetime, stale_s: float, skew_s: float, seen: set[str]) -> dict[str, Any]:
    """Report ``n`` checked field by field (:func:`parse_track_reports`): turned, or refused by name."""
    if not isinstance(r, dict):
        raise InvalidInput(f"report {n}: expected an object with id, at, {', '.join(TRACK_FIELDS)}", field="reports")
    tid = identifier(r.get("id"), f"report {n} id")
    where = f"report {n} (id {tid!r})"
    if tid in seen:
        raise InvalidInput(f"{where}: the same track appears twice in one batch", field="id")
    unknown = set(r) - {"id", "at", *TRACK_FIELDS}
    if unknown:
        raise InvalidInput(f"{where}: unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    if r.get("at") is None:
        raise InvalidInput(f"{where} at: missing (when the position was measured, ISO 8601 UTC)", field="at")
    at = parse_utc(r.get("at"), field="at")
    if (at - now).total_seconds() > skew_s:
        raise InvalidInput(f"{where} at: {iso(at)} lies in the future (now {iso(now)})", field="at")
    if (now - at).total_seconds() > stale_s:
        raise InvalidInput(
            f"{where} at: {iso(at)} is more than {stale_s:g} s old; such a track has left the picture", field="at"
        )
    values = {}
    for name, (meaning, low, high) in TRACK_FIELDS.items():
        value = r.get(name)
        if value is None:
            raise InvalidInput(f"{where} {name}: missing ({meaning})", field=name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise InvalidInput(f"{where} {name}: expected a number ({meaning}), got {value!r}", field=name)
        if isinstance(value, int) and abs(value) > 10**15:
            raise InvalidInput(
                f"{where} {name}: {meaning} must be between {low:g} and {high:g}, got a number of "
                f"{len(str(abs(value)))} digits",
                field=name,
            )
        if not low <= value <= high:
            raise InvalidInput(
                f"{where} {name}: {meaning} must be between {low:g} and {high:g}, got {value!r}", field=name
            )
        values[name] = float(value)
    return {
        "id": tid,
        "at": at,
        "lat": values["lat"],
        "lon": values["lon"],
        "alt_m": values["alt_ft"] * FT_M,
        "gs_mps": values["gs_kt"] * KT_MPS,
        "trk_deg": values["trk_deg"] % 360.0,
        "vs_mps": values["vs_fpm"] * FPM_MPS,
    }
