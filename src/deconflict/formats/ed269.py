"""UAS geographical zones in: EUROCAE ED-269 and ED-318 files as zones of a mechanism.

Each file is read with InterUSS's models (``uas_standards.eurocae_ed269`` / ``eurocae_ed318``, through
implicitdict), feature by feature, so an error names the feature (its index from 0, its identifier) and
the field (``feature 2 (LFZ0002) geometry[0].uomDimensions: ...``). What the file says becomes zone
declarations as the service's ``declare_zone`` takes them, checked with the service's own reading
(``formats.docs.parse_zone``); nothing is declared here.

The mapping (``deconflict import ed269 --help`` says it in short):

============================ ===================== =====================================================
ED-269 restriction           forbids (default)     why
============================ ===================== =====================================================
``PROHIBITED``               ``uav_patrol``        UAS flight is prohibited
``REQ_AUTHORISATION``        ``uav_patrol``        a UAV patrol inside raises a conflict: the zone's
                                                   authority must authorise it (then resolve: accepted)
``CONDITIONAL``              ``uav_patrol``        the conditions (``restrictionConditions``) must be
                                                   checked; they are kept in the zone's name
``NO_RESTRICTION``           (not imported)        forbids nothing; a zone must forbid a kind
============================ ===================== =====================================================

ED-318 ``type`` maps the same way (``REQ_AUTHORIZATION`` and ``USPACE`` as ``REQ_AUTHORISATION``).
ED-269 and ED-318 restrict unmanned aircraft only, so only ``uav_patrol`` is forbidden unless the
importer says otherwise (``forbids``). The zone kind follows the reasons: ``protected`` when every reason
is about people or places on the ground (``POPULATION``, ``PRIVACY``, ``NATURE``, ``NOISE``,
``SENSITIVE``), else ``restricted``. A published zone binds its own state's flights too
(``applies_to_owner``).

Positions are read longitude first (GeoJSON's order), as InterUSS's own geo-awareness mock reads
ED-269 circles and polygons (the model's comments say "lat, lng"; the published examples and InterUSS
put longitude first). A circle's radius is in the volume's ``uomDimensions`` (ED-318: the layer's ``uom``).

Vertical limits become metres above mean sea level: feet times 0.3048; ``AMSL`` as is; ``WGS84``
(ED-318's ellipsoid heights) as if AMSL (the geoid's undulation, tens of metres, is not applied). There
is no terrain model here, so ``AGL`` limits are made conservative, covering every place the zone could
reach: a floor at the surface (0 AGL) is the lowest accepted altitude (-500 m); another AGL floor is
raised from the lowest ground given (``Ground.min_m``, default -500 m); an AGL ceiling is raised from
the highest ground, which the importer must give (``Ground.max_m``: an error names the feature
otherwise). Limits outside -500..30,000 m are held to that band; a missing floor or ceiling is the band's end.

Times: a permanent period is in force from its start (or the import's ``now``) with no end; a temporary
one from ``startDateTime`` to ``endDateTime``. A zone has one window, so a period with a ``schedule``
(days of the week and hours) becomes one zone per occurrence from ``now`` up to ``horizon`` ahead (ids
``...-t1``, ``-t2``; import again later for the next ones); several periods or volumes likewise give one
zone each (``-p2``, ``-v2``). Times of day given by daylight events (ED-318 ``startEvent``/``endEvent``)
are taken as the whole day. Periods wholly past are left out (``notes`` says so).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.model import ALT_MAX_M, ALT_MIN_M
from deconflict.units import FT_M

__all__ = ["FORBIDS", "MAX_ZONES", "PROTECTED_REASONS", "Ground", "ed269_zones", "zones_from_file"]

FORBIDS: dict[str, tuple[str, ...]] = {
    "PROHIBITED": ("uav_patrol",),
    "REQ_AUTHORISATION": ("uav_patrol",),
    "REQ_AUTHORIZATION": ("uav_patrol",),
    "USPACE": ("uav_patrol",),
    "CONDITIONAL": ("uav_patrol",),
    "NO_RESTRICTION": (),
}
"""The activity kinds a zone forbids, by ED-269 restriction (ED-318 type)."""
PROTECTED_REASONS = frozenset({"POPULATION", "PRIVACY", "NATURE", "NOISE", "SENSITIVE"})
"""Reasons about people and places on the ground: a zone given only these is ``protected``."""
MAX_ZONES = 1000
"""The most zones one file may give (schedules expanded)."""
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


@dataclass(frozen=True)
class Ground:
    """The ground's lowest and highest elevation under the zones, metres AMSL (for AGL limits)."""

    min_m: float = ALT_MIN_M
    max_m: float | None = None


@dataclass(frozen=True)
class _Volume:
    geometry: dict[str, Any]
    radius_m: float | None
    floor_m: float
    ceiling_m: float


@dataclass(frozen=True)
class _Read:
    """One feature as both standards say it, in our units."""

    where: str
    identifier: str
    country: str
    name: str
    restriction: str
    reasons: tuple[str, ...]
    conditions: str
    volumes: list[_Volume]
    periods: list[tuple[datetime | None, datetime | None, list[tuple[set[str], time | None, time | None]]]]


def _metres(value: float | None, uom: str, ref: str, *, upper: bool, ground: Ground, where: str) -> float:
    if value is None:
        return ALT_MAX_M if upper else ALT_MIN_M
    m = float(value) * (FT_M if uom.upper() == "FT" else 1.0)
    if ref.upper() == "AGL":
        if upper:
            if ground.max_m is None:
                raise InvalidInput(
                    f"{where}: {value:g} {uom} AGL needs the ground's height, and there is no terrain model here: "
                    "give the highest ground under the zones in metres AMSL (--ground-max-m)",
                    field="upperLimit",
                )
            m += ground.max_m
        else:
            m = ALT_MIN_M if m <= 0 else m + ground.min_m
    return min(max(m, ALT_MIN_M), ALT_MAX_M)


_ZONED = re.compile(r".*T.*(?:Z|[+-]\d{2}(?::?\d{2})?)", re.IGNORECASE)
"""A time's text that ends with its zone (``Z``, ``+03:00``, ``-0500``)."""


def _aware(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    dt = value.datetime if hasattr(value, "datetime") else value
    # the models' parser takes a time given without its zone for UTC: the text is what says whether it had one
    given = value if isinstance(value, str) else None
    if not isinstance(dt, datetime) or dt.tzinfo is None or (given is not None and not _ZONED.fullmatch(given.strip())):
        raise InvalidInput(f"{where}: {value!s} is not a time with its zone (e.g. 2026-12-02T08:00:00Z)")
    return dt.astimezone(UTC)


def _clock(value: Any, where: str) -> time | None:
    """A time of day (with its zone) from ED-269's hh:mm:ss.ssZ or ED-318's hh:mm; None: the day's edge."""
    if value is None:
        return None
    if isinstance(getattr(value, "time", None), time):
        return value.time  # type: ignore[no-any-return]
    found = re.fullmatch(
        r"(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|([+-])(\d{2}):?(\d{2}))?", str(value).strip(), re.IGNORECASE
    )
    if not found:
        raise InvalidInput(f"{where}: {value!r} is not a time of day such as 08:00Z")
    zone = UTC
    if found.group(4):  # an offset: the time of day there (08:00+03:00 is 05:00Z, on that place's day)
        offset = timedelta(hours=int(found.group(5)), minutes=int(found.group(6)))
        if offset >= timedelta(hours=24) or int(found.group(6)) >= 60:
            raise InvalidInput(f"{where}: {value!r}: the offset is not one of a time zone (at most ±23:59)")
        zone = timezone(-offset if found.group(4) == "-" else offset)
    hour, minute, second = int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidInput(f"{where}: {value!r} is not a time of day such as 08:00Z")
    return time(hour, minute, second, tzinfo=zone)


def _v(value: Any) -> str:
    """An enum member's value (the models' enums mix in str), or the text itself."""
    return str(value.value if hasattr(value, "value") else value)


def _identifier(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", text.strip())[:40] or "ZONE"


def _parse(raw: Any, model: type, where: str) -> Any:
    from implicitdict import ImplicitDict  # type: ignore[import-untyped]

    try:
        return ImplicitDict.parse(raw, model)
    except Exception as e:  # noqa: BLE001 - implicitdict raises ValueError, arrow's ParserError, TypeError...
        text = " ".join(str(e).split())
        text = text[3:] if text.startswith("At ") else text
        # the time parser's own words name its format tokens (HH:mm:ss.SZ): say what a duty officer writes
        text = re.sub(
            r"Could not match input '([^']*)' to any of the following formats: .*",
            r"'\1' is not a time as the format writes it (08:00:00.00Z, or 08:00Z: in UTC, with its Z)",
            text,
        )
        raise InvalidInput(f"{where} {text[:300]}") from None


def _read_ed269(raw: Any, n: int, ground: Ground) -> _Read:
    from uas_standards.eurocae_ed269 import UASZoneVersion  # type: ignore[import-untyped]

    ident = raw.get("identifier") if isinstance(raw, dict) else None
    where = f"feature {n}" + (f" ({ident})" if isinstance(ident, str) else "")
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected an object (a UASZoneVersion)")
    z = _parse(raw, UASZoneVersion, where)
    volumes = []
    for k, g in enumerate(z.geometry):
        at = f"{where} geometry[{k}]"
        hp = g.horizontalProjection
        if hp.type == "Circle":
            if not hp.get("center") or len(hp.center) != 2 or not hp.get("radius"):
                raise InvalidInput(f"{at}.horizontalProjection: a Circle needs center [lon, lat] and radius")
            radius = float(hp.radius) * (FT_M if _v(g.uomDimensions) == "FT" else 1.0)
            geometry: dict[str, Any] = {"type": "Point", "coordinates": [float(c) for c in hp.center]}
        else:
            if not hp.get("coordinates"):
                raise InvalidInput(f"{at}.horizontalProjection: a Polygon needs coordinates")
            radius, geometry = None, {"type": "Polygon", "coordinates": hp.coordinates}
        lower = _metres(
            g.get("lowerLimit"),
            _v(g.uomDimensions),
            _v(g.lowerVerticalReference),
            upper=False,
            ground=ground,
            where=f"{at}.lowerLimit",
        )
        upper = _metres(
            g.get("upperLimit"),
            _v(g.uomDimensions),
            _v(g.upperVerticalReference),
            upper=True,
            ground=ground,
            where=f"{at}.upperLimit",
        )
        volumes.append(_Volume(geometry, radius, lower, upper))
    if not volumes:
        raise InvalidInput(f"{where} geometry: at least one airspace volume is needed")
    periods = []
    for k, a in enumerate(z.applicability):
        at = f"{where} applicability[{k}]"
        start, end = (
            _aware(a.get("startDateTime"), f"{at}.startDateTime"),
            _aware(a.get("endDateTime"), f"{at}.endDateTime"),
        )
        if a.permanent != "YES" and start is None:
            raise InvalidInput(f"{at}.startDateTime: a temporary period (permanent NO) needs its start")
        days = [
            (
                {d.value if hasattr(d, "value") else str(d) for d in p.day},
                _clock(p.startTime, f"{at}.schedule[{j}].startTime"),
                _clock(p.endTime, f"{at}.schedule[{j}].endTime"),
            )
            for j, p in enumerate(a.get("schedule") or ())
        ]
        periods.append((start, None if a.permanent == "YES" else end, days))
    conditions = z.get("restrictionConditions") or ""
    conditions = "; ".join(conditions) if isinstance(conditions, list) else str(conditions)
    name = z.get("name") or z.get("title") or z.identifier
    reasons = tuple(r.value if hasattr(r, "value") else str(r) for r in z.get("reason") or ())
    return _Read(where, z.identifier, z.country, name, str(z.restriction.value), reasons, conditions, volumes, periods)


def _text(values: Any) -> str:
    """ED-318's text: a list of {text, lang}, the first with text (English first)."""
    items = [v for v in values or () if isinstance(v, dict) and v.get("text")]
    items.sort(key=lambda v: v.get("lang") != "en-GB" and v.get("lang") != "en")
    return str(items[0]["text"]) if items else ""


def _layered(g: Any, at: str, ground: Ground) -> list[_Volume]:
    """ED-318's geometry (GeoJSON with a vertical ``layer``; a Point with a Circle ``extent``) as volumes."""
    from uas_standards.eurocae_ed318 import VerticalLayer  # type: ignore[import-untyped]

    if not isinstance(g, dict):
        raise InvalidInput(f"{at}: expected a GeoJSON geometry with a vertical layer")
    if g.get("type") == "GeometryCollection":
        return [
            v
            for k, part in enumerate(g.get("geometries") or ())
            for v in _layered(part, f"{at}.geometries[{k}]", ground)
        ]
    if "layer" not in g:
        raise InvalidInput(f"{at}.layer: missing; ED-318 gives each geometry its vertical limits")
    layer = _parse(g["layer"], VerticalLayer, f"{at}.layer")
    uom = str(layer.uom.value if hasattr(layer.uom, "value") else layer.uom)
    lower = _metres(
        layer.lower, uom, str(layer.lowerReference.value), upper=False, ground=ground, where=f"{at}.layer.lower"
    )
    upper = _metres(
        layer.upper, uom, str(layer.upperReference.value), upper=True, ground=ground, where=f"{at}.layer.upper"
    )
    kind = g.get("type")
    if kind == "Point":
        extent = g.get("extent") or {}
        if extent.get("subType") != "Circle" or not isinstance(extent.get("radius"), (int, float)):
            raise InvalidInput(f"{at}.extent: a Point zone needs extent {{subType: Circle, radius}}")
        radius = float(extent["radius"]) * (FT_M if uom.upper() == "FT" else 1.0)
        return [_Volume({"type": "Point", "coordinates": g.get("coordinates")}, radius, lower, upper)]
    if kind not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(
            f"{at}.type: {kind!r} encloses no area; a zone is a Polygon, MultiPolygon or Point with extent"
        )
    return [_Volume({"type": kind, "coordinates": g.get("coordinates")}, None, lower, upper)]


def _read_ed318(raw: Any, n: int, ground: Ground) -> _Read:
    from uas_standards.eurocae_ed318 import UASZone

    props = raw.get("properties") if isinstance(raw, dict) else None
    ident = props.get("identifier") if isinstance(props, dict) else None
    where = f"feature {n}" + (f" ({ident})" if isinstance(ident, str) else "")
    if not isinstance(props, dict):
        raise InvalidInput(f"{where} properties: expected an object (a UASZone)")
    z = _parse(props, UASZone, f"{where} properties")
    volumes = _layered(raw.get("geometry"), f"{where} geometry", ground)
    periods = []
    for k, p in enumerate(z.get("limitedApplicability") or ()):
        at = f"{where} properties.limitedApplicability[{k}]"
        start, end = (
            _aware(p.get("startDateTime"), f"{at}.startDateTime"),
            _aware(p.get("endDateTime"), f"{at}.endDateTime"),
        )
        days = [
            (
                {d.value if hasattr(d, "value") else str(d) for d in s.day},
                _clock(s.get("startTime"), f"{at}.schedule[{j}].startTime"),
                _clock(s.get("endTime"), f"{at}.schedule[{j}].endTime"),
            )
            for j, s in enumerate(p.get("schedule") or ())
        ]
        periods.append((start, end, days))
    restriction = str(z.type.value if hasattr(z.type, "value") else z.type)
    reasons = tuple(r.value if hasattr(r, "value") else str(r) for r in z.get("reason") or ())
    name = _text(z.get("name")) or z.identifier
    return _Read(
        where,
        z.identifier,
        z.country,
        name,
        restriction,
        reasons,
        str(z.get("restrictionConditions") or ""),
        volumes,
        periods,
    )


def _windows(r: _Read, now: datetime, horizon: timedelta) -> list[tuple[datetime, datetime | None]]:
    """The windows of a feature's periods: one each, or one per scheduled occurrence up to ``now + horizon``."""
    out: list[tuple[datetime, datetime | None]] = []
    for start, end, schedule in r.periods or [(None, None, [])]:
        first = start or now
        if not schedule:
            if end is None or end > now:
                out.append((first, end))
            continue
        lo, hi = max(first, now), min(end or now + horizon, now + horizon)
        day = lo.date() - timedelta(days=1)
        while day <= hi.date() + timedelta(days=1):  # a day there may end after the UTC day does
            for days, t0, t1 in schedule:
                if "ANY" in days or WEEKDAYS[day.weekday()] in days:
                    edge = time(0, tzinfo=(t0 or t1 or time(0, tzinfo=UTC)).tzinfo)  # the day's edge, there
                    a = datetime.combine(day, t0 or edge).astimezone(UTC)
                    b = datetime.combine(day, t1 or edge).astimezone(UTC)
                    b = b + timedelta(days=1) if b <= a else b
                    a, b = max(a, first), min(b, end) if end else b
                    if a < b and b > lo and a < hi:
                        out.append((a, b))
            day += timedelta(days=1)
    return sorted(set(out), key=lambda w: w[0])


def ed269_zones(
    reads: Sequence[_Read],
    *,
    mechanism: str,
    party: str,
    parties: set[str],
    now: datetime,
    horizon: timedelta = timedelta(days=7),
    forbids: Sequence[str] | None = None,
    area: Any = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Zone declarations of ``party`` for features read, and notes on what was left out (and why) or
    lies outside ``area`` (the mechanism's, lon/lat: a file whose positions are latitude first lands there)."""
    from deconflict.formats.docs import parse_zone

    docs: list[dict[str, Any]] = []
    notes: list[str] = []
    for r in reads:
        kinds = sorted(set(forbids)) if forbids else list(FORBIDS.get(r.restriction, ()))
        if not FORBIDS.get(r.restriction):
            notes.append(f"{r.where}: {r.restriction}: forbids nothing, not imported")
            continue
        windows = _windows(r, now, horizon)
        if not windows:
            notes.append(f"{r.where}: every period of it is past, or no occurrence falls within the horizon")
            continue
        kind = "protected" if r.reasons and set(r.reasons) <= PROTECTED_REASONS else "restricted"
        label = f"{r.name} [{r.restriction}{': ' + r.conditions if r.conditions else ''}]"
        base = f"{party}-{_identifier(r.country)}-{_identifier(r.identifier)}"
        for k, v in enumerate(r.volumes, start=1):
            for j, (start, end) in enumerate(windows, start=1):
                zid = base + (f"-v{k}" if len(r.volumes) > 1 else "") + (f"-t{j}" if len(windows) > 1 else "")
                doc: dict[str, Any] = {
                    "id": zid,
                    "kind": kind,
                    "name": label[:200],
                    "forbids": kinds,
                    "geometry": v.geometry,
                    "floor_m": v.floor_m,
                    "ceiling_m": v.ceiling_m,
                    "valid_from": iso(start),
                    "valid_to": iso(end) if end else None,
                    "applies_to_owner": True,
                }
                if v.radius_m is not None:
                    doc["radius_m"] = v.radius_m
                try:
                    zone = parse_zone(doc, mechanism=mechanism, owner=party, parties=parties, where=r.where)
                except InvalidInput as e:  # the footprint's own checks do not always say where
                    if e.message.startswith(r.where):
                        raise
                    raise InvalidInput(f"{r.where} {e.message}", field=e.field) from None
                docs.append(doc)
                outside = f"{r.where}: outside the mechanism's area (are its positions longitude first?)"
                if area is not None and not zone.footprint.as_polygon().intersects(area) and outside not in notes:
                    notes.append(outside)
                if len(docs) > MAX_ZONES:
                    raise InvalidInput(
                        f"{r.where}: the file gives more than {MAX_ZONES} zones (schedules expanded); "
                        "import it in parts or with a shorter horizon"
                    )
    return docs, notes


def zones_from_file(
    doc: Any,
    *,
    source: str,
    mechanism: str,
    party: str,
    parties: set[str],
    now: datetime,
    ground: Ground = Ground(),
    horizon: timedelta = timedelta(days=7),
    forbids: Sequence[str] | None = None,
    area: Any = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Zone declarations from a parsed ED-269 (``{"features": [UASZoneVersion...]}``) or ED-318
    (a GeoJSON FeatureCollection of UASZone) document; see the module for the mapping.

    Raises:
        InvalidInput: naming the feature (index, identifier) and the field; nothing is declared.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise InvalidInput(f"{source}: expected an ED-269 or ED-318 document: an object with a 'features' list")
    if doc.get("type") == "FeatureCollection":
        reads = [_read_ed318(f, n, ground) for n, f in enumerate(doc["features"])]
    else:
        reads = [_read_ed269(f, n, ground) for n, f in enumerate(doc["features"])]
    if not reads:
        raise InvalidInput(f"{source}: no features; nothing to import")
    return ed269_zones(
        reads, mechanism=mechanism, party=party, parties=parties, now=now, horizon=horizon, forbids=forbids, area=area
    )
