"""How the incident timeline words things: places, footprints, instants, durations, conflicts and messages.

Private to :mod:`deconflict.analysis.timeline`: every function here turns a record payload
(or a piece of one) into a phrase or into the structured fields an event carries. Times
are written in UTC, distances in kilometres and altitudes in metres, as the record holds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import Point, shape

from deconflict import hotline
from deconflict.clock import parse_utc
from deconflict.errors import DeconflictError
from deconflict.geo import WGS84
from deconflict.hotline import MessageType
from deconflict.model import ActivityKind, ConflictKind, ZoneKind

__all__ = [
    "ACTORS",
    "KIND_WORDS",
    "MAX_VOLUMES_SHOWN",
    "MESSAGE_WORDS",
    "ZONE_WORDS",
    "ack_words",
    "and_",
    "clock",
    "conflict_fields",
    "conflict_words",
    "delay",
    "duration",
    "footprint",
    "km",
    "latlon",
    "message_fields",
    "message_text",
    "message_words",
    "metres",
    "volume",
    "volumes",
    "window",
]

MAX_VOLUMES_SHOWN = 3
"""Volumes described in full in one sentence; the others are counted."""

KIND_WORDS: dict[str, str] = {
    ActivityKind.AIR_SORTIE: "an air sortie",
    ActivityKind.UAV_PATROL: "a UAV patrol",
    ActivityKind.GROUND_MOVEMENT: "a ground movement",
    ActivityKind.DEPLOYMENT: "a deployment",
    ActivityKind.AIR_DEFENCE_ACTIVATION: "an air-defence activation",
    ActivityKind.EXERCISE: "an exercise",
}
ZONE_WORDS: dict[str, str] = {
    ZoneKind.RED_LINE: "red line",
    ZoneKind.RESTRICTED: "restricted zone",
    ZoneKind.PROTECTED: "protected zone",
    ZoneKind.AIR_DEFENCE: "air-defence zone",
}
MESSAGE_WORDS: dict[str, str] = {
    MessageType.NOTICE: "a notice",
    MessageType.QUERY: "a query",
    MessageType.ALERT: "an alert",
    MessageType.RESPONSE: "a response",
    MessageType.INCIDENT: "an incident report",
    MessageType.LINE_CHECK: "a line check",
    MessageType.FREE_TEXT: "a free-text message",
}
ACTORS = {"system": "The system", "operator": "The operator"}
"""How the service's own actors are named in a sentence."""


def latlon(lat: float, lon: float) -> str:
    """
    >>> latlon(34.5226, 37.6298), latlon(-1.5, -0.25)
    ('34.52 N 37.63 E', '1.50 S 0.25 W')
    """
    return f"{abs(lat):.2f} {'N' if lat >= 0 else 'S'} {abs(lon):.2f} {'E' if lon >= 0 else 'W'}"


def km(metres: float) -> str:
    """
    >>> km(25_000), km(9260), km(500), km(0)
    ('25 km', '9.3 km', '0.5 km', '0 km')
    """
    return f"{round(metres / 1000, 1):g} km"


def metres(value: float) -> str:
    """Metres rounded to the metre, with thousands separators."""
    return f"{round(value):,}"


def footprint(geometry: dict[str, Any], radius_m: float) -> str:
    """A footprint in words: a circle's radius and centre, or an area's extent and centroid."""
    geom = shape(geometry)
    if isinstance(geom, Point):
        return f"{km(radius_m)} around {latlon(geom.y, geom.x)}"
    lon_min, lat_min, lon_max, lat_max = geom.bounds
    c = geom.centroid
    _, _, width = WGS84.inv(lon_min, c.y, lon_max, c.y)
    _, _, height = WGS84.inv(c.x, lat_min, c.x, lat_max)
    return f"an area of {km(width).removesuffix(' km')} × {km(height)} around {latlon(c.y, c.x)}"


def clock(t: datetime, ref: datetime) -> str:
    """An instant in words: the time alone when it falls on ``ref``'s day, the date too otherwise."""
    fmt = "%H:%M:%S" if t.second else "%H:%M"
    return t.strftime(fmt) if t.date() == ref.date() else t.strftime(f"%Y-%m-%d {fmt}")


def window(start: datetime, end: datetime, ref: datetime) -> str:
    """
    >>> from datetime import UTC
    >>> d = lambda h, day=9: datetime(2025, 4, day, h, tzinfo=UTC)
    >>> window(d(8), d(10), d(6)), window(d(8, 10), d(10, 10), d(6)), window(d(8), d(8, 12), d(6))
    ('08:00–10:00 UTC', '2025-04-10 08:00–10:00 UTC', '08:00 – 2025-04-12 08:00 UTC')
    """
    first = clock(start, ref)
    if end.date() == start.date():
        return f"{first}–{clock(end, start)} UTC"
    return f"{first} – {end.strftime('%Y-%m-%d %H:%M')} UTC"


def volume(v: dict[str, Any], ref: datetime) -> str:
    """A volume of a payload in words: footprint, altitudes and time window."""
    return (
        f"{footprint(v['geometry'], float(v.get('radius_m') or 0.0))}, "
        f"{metres(v['floor_m'])}–{metres(v['ceiling_m'])} m, "
        f"{window(parse_utc(v['start'], field='start'), parse_utc(v['end'], field='end'), ref)}"
    )


def volumes(vols: list[dict[str, Any]], ref: datetime) -> str:
    """The first ``MAX_VOLUMES_SHOWN`` volumes in words, the others counted."""
    shown = "; ".join(volume(v, ref) for v in vols[:MAX_VOLUMES_SHOWN])
    more = len(vols) - MAX_VOLUMES_SHOWN
    return shown + (f"; and {more} more volume{'s' if more > 1 else ''}" if more > 0 else "")


def duration(seconds: float) -> str:
    """
    >>> duration(45), duration(180), duration(5400), duration(90000)
    ('45 s', '3 min', '1 h 30 min', '25 h')
    """
    s = round(seconds)
    if abs(s) < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if abs(minutes) < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def and_(items: Iterable[str]) -> str:
    """
    >>> and_(["TR"]), and_(["TR", "IL", "RU"]), and_([])
    ('TR', 'TR, IL and RU', 'nobody')
    """
    xs = list(items)
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1] if xs else "nobody"


def delay(at: datetime, raised: datetime, deadline: str | None) -> dict[str, Any]:
    """The fields of an acknowledgement at ``at``: seconds since raised, and whether at or after the deadline."""
    late = deadline is not None and at >= parse_utc(deadline, field="deadline")
    return {"delay_s": (at - raised).total_seconds(), "late": late}


def ack_words(who: str, what: str, party: str, at: datetime, raised: datetime, deadline: str | None, verb: str) -> str:
    """An acknowledgement in words: who, for which party, how long after, and whether after the deadline."""
    on_behalf = "" if who.startswith(f"{party} (") else f" for {party}"
    text = f"{who} acknowledged {what}{on_behalf}, {duration((at - raised).total_seconds())} after it was {verb}"
    if delay(at, raised, deadline)["late"]:
        assert deadline is not None
        text += f", after its deadline of {clock(parse_utc(deadline, field='deadline'), at)} UTC"
    return text


def conflict_fields(p: dict[str, Any]) -> dict[str, Any]:
    """The structured fields of a ``conflict.detected`` event."""
    keys = (
        "kind",
        "activity",
        "activity_version",
        "party",
        "other_activity",
        "other_party",
        "zone",
        "zone_owner",
        "parties",
        "awaiting",
        "deadline",
        "distance_m",
        "lead_time_s",
        "tcpa_s",
        "t_in_s",
        "t_out_s",
        "separation_m",
        "track_states",
    )
    return {"conflict": p["id"], **{("conflict_kind" if k == "kind" else k): p[k] for k in keys if k in p}}


def where(p: dict[str, Any]) -> str:
    """Where a tactical conflict's tracks were when it was raised (their last reports), or nothing."""
    states = [st for st in p.get("track_states", ()) if isinstance(st, dict)]
    told = [f"{st['track']} at {latlon(float(st['lat']), float(st['lon']))}, {metres(st['alt_m'])} m" for st in states]
    return f" ({'; '.join(told)})" if told else ""


def conflict_words(p: dict[str, Any], who: str, at: datetime) -> str:
    """A ``conflict.detected`` payload in words, by kind of conflict, with whom it awaits and until when."""
    cid, kind = p["id"], p["kind"]
    deadline = clock(parse_utc(p["deadline"], field="deadline"), at)
    tail = f"; {and_(p.get('awaiting', []))} to acknowledge by {deadline} UTC"
    a = f"{p['activity']} ({p['party']})"
    if kind == ConflictKind.SEPARATION:
        b = f"{p['other_activity']} ({p['other_party']})"
        distance = float(p.get("distance_m", 0.0))
        how = "overlap" if distance == 0 else f"come within {km(distance)} of each other"
        span = window(parse_utc(p["start"], field="start"), parse_utc(p["end"], field="end"), at)
        minimum = f" (minimum {km(float(p['separation_m']))})" if "separation_m" in p else ""
        band = f", {metres(p['floor_m'])}–{metres(p['ceiling_m'])} m" if "floor_m" in p else ""
        return f"{who} raised conflict {cid}: {a} and {b} {how}{minimum}, {span}{band}{tail}"
    if kind == ConflictKind.ZONE:
        zone = f"{ZONE_WORDS.get(str(p.get('zone_kind')), 'zone')} {p['zone']} of {p['zone_owner']}"
        kind_words = KIND_WORDS.get(p.get("activity_kind", ""), "an activity")
        return f"{who} raised conflict {cid}: {a}, {kind_words}, is inside {zone}{tail}"
    if kind == ConflictKind.TRACKS:
        raised = (
            f"{who} raised conflict {cid}: tracks {p['activity']} and {p['other_activity']} predicted to come within "
        )
        t_in, t_out = (at + timedelta(seconds=float(p[k])) for k in ("t_in_s", "t_out_s"))
        closest = at + timedelta(seconds=float(p["tcpa_s"]))
        inside = "already inside it" if float(p["t_in_s"]) <= 0 else f"inside it from {clock(t_in, at)}"
        return (
            f"{raised}{km(float(p['distance_m']))} of each other (minimum {km(float(p['separation_m']))}) at "
            f"{clock(closest, at)} UTC, {duration(float(p['tcpa_s']))} ahead, {inside} to {clock(t_out, at)} UTC"
            f"{where(p)}{tail}"
        )
    if kind == ConflictKind.CONFORMANCE:
        return (
            f"{who} raised conflict {cid}: track {p['activity']} is outside every activity its party notified "
            f"(tolerance {km(float(p.get('tolerance_m', 0.0)))}){where(p)}{tail}"
        )
    if kind == ConflictKind.INTRUSION:
        return (
            f"{who} raised conflict {cid}: track {p['activity']} is inside {p['other_activity']} "
            f"({p['other_party']}){where(p)}{tail}"
        )
    if kind == ConflictKind.SHORT_NOTICE:
        return (
            f"{who} raised conflict {cid}: {a} was notified {duration(float(p['lead_time_s']))} before it starts; "
            f"the rules ask for {duration(float(p['min_notice_s']))}{tail}"
        )
    return f"{who} raised conflict {cid} ({kind}) about {a}{tail}"


def message_fields(p: dict[str, Any]) -> dict[str, Any]:
    """The structured fields of a ``message.sent`` event."""
    return {
        "message": p["id"],
        "message_type": p["type"],
        "to": p["to"],
        "template": p.get("template"),
        "text": message_text(p),
        "needs_ack": bool(p.get("needs_ack")),
        "deadline": p.get("deadline"),
        "about": p.get("about"),
    }


def message_text(p: dict[str, Any]) -> str:
    """The message in English agreed wording, or free text as written."""
    if p.get("template"):
        try:
            return hotline.render(p["template"], "en", p.get("params") or {}).text
        except DeconflictError:
            params = ", ".join(f"{k}={v}" for k, v in (p.get("params") or {}).items())
            return f"{p['template']}({params})"
    return str(p.get("text", ""))


def message_words(p: dict[str, Any], who: str, at: datetime) -> str:
    """A ``message.sent`` payload in words: who sent what to whom, quoted, and until when to acknowledge."""
    kind = MESSAGE_WORDS.get(p["type"], "a message")
    text = message_text(p)
    quoted = f"“{text}”" if p.get("template") else f"“{text}” (free text, {p.get('lang', '?')})"
    ack = ""
    if p.get("needs_ack") and p.get("deadline"):
        ack = f"; acknowledge by {clock(parse_utc(p['deadline'], field='deadline'), at)} UTC"
    return f"{who} sent {kind}, {p['id']}, to {and_(p['to'])}: {quoted}{ack}"
