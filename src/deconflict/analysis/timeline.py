"""The incident timeline: for a place and a window, the ordered story the record tells, in plain sentences.

A pure function over record entry documents (as ``ledger.entry_doc`` gives them, or as a
record bundle holds them). The story holds:

- every version (notice, amendment, cancellation) of each activity that has, in any version,
  a volume within ``radius_km`` of the place (ground distance on WGS84, 0 inside a footprint)
  whose time window overlaps the window (``a.start < to and from < a.end``);
- zones within the radius whose validity overlaps the window (declared, withdrawn);
- conflicts raised about those activities, or about those zones at a time that overlaps
  the window, with their acknowledgements and resolutions;
- hotline messages about those activities, zones, conflicts or messages, with their
  acknowledgements and escalation steps (the system's "escalated to" notices are left out:
  the escalation step itself is in the story).

Entries are not filtered by when they were written: a notice given the day before the
window is part of the story. Entries withheld from this copy (no payload) whose time lies
within the story's span are shown as such, because they may belong to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry import Point, shape

from deconflict import hotline
from deconflict.clock import iso, parse_utc
from deconflict.errors import DeconflictError, InvalidInput
from deconflict.geo import WGS84, Frame

MAX_RADIUS_KM = 1000.0
"""Largest radius accepted around the place, in kilometres."""
MAX_VOLUMES_SHOWN = 3
"""Volumes described in full in one sentence; the others are counted."""

KIND_WORDS = {
    "air_sortie": "an air sortie",
    "uav_patrol": "a UAV patrol",
    "ground_movement": "a ground movement",
    "deployment": "a deployment",
    "air_defence_activation": "an air-defence activation",
    "exercise": "an exercise",
}
ZONE_WORDS = {
    "red_line": "red line",
    "restricted": "restricted zone",
    "protected": "protected zone",
    "air_defence": "air-defence zone",
}
MESSAGE_WORDS = {
    "notice": "a notice",
    "query": "a query",
    "alert": "an alert",
    "response": "a response",
    "incident": "an incident report",
    "line_check": "a line check",
    "free_text": "a free-text message",
}
ACTORS = {"system": "The system", "operator": "The operator"}


@dataclass(frozen=True)
class Event:
    """One step of the story: a record entry, told in a sentence, with its structured fields."""

    at: datetime
    seq: int
    actor: str
    party: str | None
    """The acting member's party (None for the system and the operator)."""
    type: str
    """The record entry type, e.g. ``activity.notified``."""
    what: str
    fields: dict[str, Any] = field(default_factory=dict, hash=False)
    """Structured facts: activity, version, conflict, message, zone, deadline, delay_s, ..."""


def event_to_json(e: Event) -> dict[str, Any]:
    return {
        "at": iso(e.at),
        "seq": e.seq,
        "actor": e.actor,
        "party": e.party,
        "type": e.type,
        "what": e.what,
        **e.fields,
    }


def timeline_to_json(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The story as a list of JSON-able event documents, in record order."""
    return [event_to_json(e) for e in events]


def timeline_text(events: Iterable[Event]) -> str:
    """The story as text: one line per event, time first, then the record entry number.

    >>> from datetime import UTC
    >>> e = Event(datetime(2025, 4, 9, 8, 0, tzinfo=UTC), 7, "TR", "TR", "activity.cancelled", "TR cancelled TR-1")
    >>> timeline_text([e])
    '2025-04-09T08:00:00Z  [7]  TR cancelled TR-1\\n'
    """
    return "".join(f"{iso(e.at)}  [{e.seq}]  {e.what}\n" for e in events)


# ---------------------------------------------------------------------------
# Geometry: how far a footprint is from the place


class _Place:
    """The place and its radius; ground distances from it to footprints, in metres."""

    def __init__(self, lat: float, lon: float, radius_km: float) -> None:
        for name, value, lo, hi in (("lat", lat, -90, 90), ("lon", lon, -180, 180)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise InvalidInput(f"{name}: expected degrees between {lo} and {hi}, got {value!r}", field=name)
        if not (isinstance(radius_km, (int, float)) and 0 < radius_km <= MAX_RADIUS_KM):
            raise InvalidInput(
                f"radius_km: expected kilometres above 0 and at most {MAX_RADIUS_KM:g}, got {radius_km!r}",
                field="radius_km",
            )
        self.lat, self.lon, self.radius_m = float(lat), float(lon), float(radius_km) * 1000.0
        self.frame = Frame(self.lon, self.lat, max(2 * self.radius_m, 10_000.0))
        self.point = Point(self.lon, self.lat)
        self.xy = self.frame.project(self.point)
        self._cache: dict[str, float] = {}

    def distance_m(self, geometry: dict[str, Any], radius_m: float) -> float:
        """Ground distance from the place to a footprint (GeoJSON geometry, and radius for a circle), 0 inside."""
        key = json.dumps([geometry, radius_m], sort_keys=True)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._distance_m(geometry, float(radius_m or 0.0))
        return found

    def _distance_m(self, geometry: dict[str, Any], radius_m: float) -> float:
        geom = shape(geometry)
        if geom.geom_type == "Point":  # a geodesic circle: exact on the ellipsoid
            _, _, d = WGS84.inv(self.lon, self.lat, geom.x, geom.y)
            return max(float(d) - radius_m, 0.0)
        if geom.covers(self.point):
            return 0.0
        projected = self.frame.project(geom)
        return float(self.frame.ground_distance(self.xy, 0.0, projected, radius_m)[0])


# ---------------------------------------------------------------------------
# Words


def _latlon(lat: float, lon: float) -> str:
    """
    >>> _latlon(34.5226, 37.6298), _latlon(-1.5, -0.25)
    ('34.52 N 37.63 E', '1.50 S 0.25 W')
    """
    return f"{abs(lat):.2f} {'N' if lat >= 0 else 'S'} {abs(lon):.2f} {'E' if lon >= 0 else 'W'}"


def _km(metres: float) -> str:
    """
    >>> _km(25_000), _km(9260), _km(500), _km(0)
    ('25 km', '9.3 km', '0.5 km', '0 km')
    """
    return f"{round(metres / 1000, 1):g} km"


def _metres(value: float) -> str:
    return f"{round(value):,}"


def _footprint(geometry: dict[str, Any], radius_m: float) -> str:
    geom = shape(geometry)
    if geom.geom_type == "Point":
        return f"{_km(radius_m)} around {_latlon(geom.y, geom.x)}"
    lon_min, lat_min, lon_max, lat_max = geom.bounds
    c = geom.centroid
    _, _, width = WGS84.inv(lon_min, c.y, lon_max, c.y)
    _, _, height = WGS84.inv(c.x, lat_min, c.x, lat_max)
    return f"an area of {_km(width).removesuffix(' km')} × {_km(height)} around {_latlon(c.y, c.x)}"


def _clock(t: datetime, ref: datetime) -> str:
    """An instant in words: the time alone when it falls on ``ref``'s day, the date too otherwise."""
    fmt = "%H:%M:%S" if t.second else "%H:%M"
    return t.strftime(fmt) if t.date() == ref.date() else t.strftime(f"%Y-%m-%d {fmt}")


def _window(start: datetime, end: datetime, ref: datetime) -> str:
    """
    >>> from datetime import UTC
    >>> d = lambda h, day=9: datetime(2025, 4, day, h, tzinfo=UTC)
    >>> _window(d(8), d(10), d(6)), _window(d(8, 10), d(10, 10), d(6)), _window(d(8), d(8, 12), d(6))
    ('08:00–10:00 UTC', '2025-04-10 08:00–10:00 UTC', '08:00 – 2025-04-12 08:00 UTC')
    """
    first = _clock(start, ref)
    if end.date() == start.date():
        return f"{first}–{_clock(end, start)} UTC"
    return f"{first} – {end.strftime('%Y-%m-%d %H:%M')} UTC"


def _volume(v: dict[str, Any], ref: datetime) -> str:
    return (
        f"{_footprint(v['geometry'], float(v.get('radius_m') or 0.0))}, "
        f"{_metres(v['floor_m'])}–{_metres(v['ceiling_m'])} m, "
        f"{_window(parse_utc(v['start'], field='start'), parse_utc(v['end'], field='end'), ref)}"
    )


def _volumes(vols: list[dict[str, Any]], ref: datetime) -> str:
    shown = "; ".join(_volume(v, ref) for v in vols[:MAX_VOLUMES_SHOWN])
    more = len(vols) - MAX_VOLUMES_SHOWN
    return shown + (f"; and {more} more volume{'s' if more > 1 else ''}" if more > 0 else "")


def _duration(seconds: float) -> str:
    """
    >>> _duration(45), _duration(180), _duration(5400), _duration(90000)
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


def _and(items: Iterable[str]) -> str:
    xs = list(items)
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1] if xs else "nobody"


# ---------------------------------------------------------------------------
# The story


@dataclass
class _Story:
    place: _Place
    start: datetime
    end: datetime
    members: dict[str, tuple[str, str]] = field(default_factory=dict)
    """member id → (party, name)."""
    party_names: dict[str, str] = field(default_factory=dict)
    activities: dict[str, float] = field(default_factory=dict)
    """Selected activity id → the least distance (m) of any of its volumes that overlaps the window."""
    zones: dict[str, float] = field(default_factory=dict)
    conflicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)

    def who(self, actor: str) -> str:
        if actor in ACTORS:
            return ACTORS[actor]
        party = self.members.get(actor, (None, ""))[0]
        name = self.party_names.get(party or "", party)
        return f"{actor} ({name})" if name else actor

    def party_of(self, actor: str) -> str | None:
        return self.members.get(actor, (None, ""))[0]

    def near(self, geometry: dict[str, Any], radius_m: float, start: datetime, end: datetime | None) -> float | None:
        """The distance (m) of a footprint active in [start, end) when it is within the radius and window."""
        if not (start < self.end and (end is None or self.start < end)):
            return None
        d = self.place.distance_m(geometry, radius_m)
        return d if d <= self.place.radius_m else None


def incident_timeline(
    entries: Iterable[dict[str, Any]],
    *,
    lat: float,
    lon: float,
    radius_km: float,
    start: datetime,
    end: datetime,
) -> list[Event]:
    """The ordered story of what happened around (lat, lon) within ``radius_km`` during ``[start, end)``.

    ``start`` and ``end`` are aware UTC datetimes; see the module docstring for what the story holds.
    """
    if not start < end:
        raise InvalidInput(f"the window is empty: from {iso(start)} is not before to {iso(end)}", field="from")
    docs = []
    for n, doc in enumerate(entries, start=1):
        if not isinstance(doc, dict):
            raise InvalidInput(f"record entry {n}: expected an object")
        docs.append(doc)
    story = _Story(_Place(lat, lon, radius_km), start, end)
    for doc in docs:
        _guard(doc, _select, story)
    events: list[Event] = []
    withheld: list[dict[str, Any]] = []
    for doc in docs:
        if doc.get("payload") is None:
            withheld.append(doc)
            continue
        event = _guard(doc, _tell, story)
        if event is not None:
            events.append(event)
    if withheld:
        lo = min([start, *(e.at for e in events)])
        hi = max([end, *(e.at for e in events)])
        for doc in withheld:
            at = parse_utc(doc.get("at"), field=f"entry {doc.get('seq')} at")
            if lo <= at <= hi:
                seq = int(doc["seq"])
                actor = str(doc.get("actor", ""))
                events.append(
                    Event(
                        at,
                        seq,
                        actor,
                        story.party_of(actor),
                        str(doc.get("type", "")),
                        f"entry {seq} withheld from this copy",
                        {"withheld": True},
                    )
                )
        events.sort(key=lambda e: e.seq)
    return events


def _guard(doc: dict[str, Any], fn: Any, story: _Story) -> Any:
    """Run ``fn`` on one entry; a malformed entry is named in a plain error."""
    try:
        return fn(doc, story)
    except DeconflictError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise InvalidInput(f"entry {doc.get('seq')} ({doc.get('type')}): unreadable: {what}") from None


def _select(doc: dict[str, Any], story: _Story) -> None:
    """First pass: members, and which activities and zones the place and window select."""
    p, type = doc.get("payload"), doc.get("type")
    if p is None:
        return
    if type == "mechanism.declared":
        for m in p["members"]:
            _member(story, m)
    elif type == "member.added":
        _member(story, p)
    elif type in ("activity.notified", "activity.amended", "activity.cancelled"):
        for v in p["volumes"]:
            d = story.near(
                v["geometry"],
                float(v.get("radius_m") or 0.0),
                parse_utc(v["start"], field="start"),
                parse_utc(v["end"], field="end"),
            )
            if d is not None:
                story.activities[p["id"]] = min(d, story.activities.get(p["id"], d))
    elif type == "zone.declared":
        valid_to = parse_utc(p["valid_to"], field="valid_to") if p.get("valid_to") else None
        d = story.near(
            p["geometry"], float(p.get("radius_m") or 0.0), parse_utc(p["valid_from"], field="valid_from"), valid_to
        )
        if d is not None:
            story.zones[p["id"]] = d


def _member(story: _Story, m: dict[str, Any]) -> None:
    story.members[m["id"]] = (m["party"], m["name"])
    if m["id"] == m["party"]:
        story.party_names[m["party"]] = m["name"]


def _tell(doc: dict[str, Any], story: _Story) -> Event | None:
    """Second pass: the event an entry adds to the story, or None when it is not part of it."""
    p: dict[str, Any] = doc["payload"]
    type, actor, seq = str(doc["type"]), str(doc.get("actor", "")), int(doc["seq"])
    at = parse_utc(doc["at"], field="at")
    who = story.who(actor)

    def event(what: str, **fields: Any) -> Event:
        return Event(at, seq, actor, story.party_of(actor), type, what, fields)

    if type.startswith("activity.") and p.get("id") in story.activities:
        aid, version = p["id"], int(p["version"])
        fields = {
            "activity": aid,
            "version": version,
            "activity_party": p["party"],
            "kind": p["kind"],
            "title": p.get("title", ""),
            "state": p["state"],
            "start": p["start"],
            "end": p["end"],
            "distance_km": round(story.activities[aid] / 1000, 2),
        }
        if type == "activity.cancelled":
            return event(f"{who} cancelled {aid} (version {version})", **fields)
        notified = parse_utc(p["notified_at"], field="notified_at")
        fields["lead_s"] = (parse_utc(p["start"], field="start") - notified).total_seconds()
        kind = KIND_WORDS.get(p["kind"], "a " + p["kind"].replace("_", " "))
        if type == "activity.notified":
            return event(f"{who} notified {aid}, {kind}, {_volumes(p['volumes'], at)}", **fields)
        return event(f"{who} amended {aid} to version {version}: {kind}, {_volumes(p['volumes'], at)}", **fields)
    if type in ("zone.declared", "zone.withdrawn") and p.get("id") in story.zones:
        zid = p["id"]
        if type == "zone.withdrawn":
            return event(f"{who} withdrew zone {zid}", zone=zid)
        forbids = _and(k.replace("_", " ").replace("air defence", "air-defence") for k in p["forbids"])
        since = parse_utc(p["valid_from"], field="valid_from")
        until = f" until {_clock(parse_utc(p['valid_to'], field='valid_to'), at)} UTC" if p.get("valid_to") else ""
        return event(
            f"{who} declared {ZONE_WORDS.get(p['kind'], p['kind'])} {zid} ({p['name']}): "
            f"{_footprint(p['geometry'], float(p.get('radius_m') or 0.0))}, forbidding {forbids}, "
            f"from {_clock(since, at)} UTC{until}",
            zone=zid,
            zone_kind=p["kind"],
            owner=p["owner"],
            distance_km=round(story.zones[zid] / 1000, 2),
        )
    if type == "conflict.detected":
        about = {p.get("activity"), p.get("other_activity")} & set(story.activities)
        if not about and not (p.get("zone") in story.zones and _overlaps(p, story)):
            return None
        story.conflicts[p["id"]] = {"at": at, **p}
        return event(_conflict_words(p, who, at), **_conflict_fields(p))
    if type in ("conflict.acknowledged", "conflict.resolved") and p.get("id") in story.conflicts:
        cid = p["id"]
        raised = story.conflicts[cid]
        if type == "conflict.resolved":
            note = f" ({p['note']})" if p.get("note") else ""
            alerts = list(p.get("messages", ()))
            closing = f"; its unacknowledged alert {_and(alerts)} closed with it" if alerts else ""
            return event(
                f"{who} closed conflict {cid} as {p['resolution']}{note}{closing}",
                conflict=cid,
                resolution=p["resolution"],
                note=p.get("note", ""),
                **({"alerts_closed": alerts} if alerts else {}),
            )
        alerts = list(p.get("messages", ()))
        settling = f", settling its alert {_and(alerts)}" if alerts else ""
        return event(
            _ack_words(who, f"conflict {cid}", p["party"], at, raised["at"], raised.get("deadline"), "raised")
            + settling,
            conflict=cid,
            acknowledged_for=p["party"],
            **_delay(at, raised["at"], raised.get("deadline")),
            **({"alerts_settled": alerts} if alerts else {}),
        )
    if type == "message.sent":
        about = p.get("about") or {}
        kind, ref = about.get("kind"), about.get("id")
        wanted = (
            (kind == "activity" and ref in story.activities)
            or (kind == "conflict" and ref in story.conflicts)
            or (kind == "zone" and ref in story.zones)
            or (kind == "message" and ref in story.messages and p.get("template") != "escalated_to")
        )
        if not wanted:
            return None
        story.messages[p["id"]] = (at, p)
        settles = p.get("settles") or {}
        settled = [*settles.get("conflicts", ()), *settles.get("messages", ())]
        acknowledging = f"; this acknowledged {_and(settled)} for {p['from_party']}" if settled else ""
        extra = {"settles": settled} if settled else {}
        return event(_message_words(p, who, at) + acknowledging, **_message_fields(p), **extra)
    if type in ("message.acknowledged", "message.escalated") and p.get("id") in story.messages:
        mid = p["id"]
        sent_at, sent = story.messages[mid]
        if type == "message.escalated":
            due = parse_utc(p["due_at"], field="due_at")
            return event(
                f"{who} escalated {mid} to the {p['name']}: no acknowledgement by {_clock(due, at)} UTC",
                message=mid,
                rung=int(p["rung"]),
                rung_name=p["name"],
                due_at=p["due_at"],
            )
        return event(
            _ack_words(who, mid, p["party"], at, sent_at, sent.get("deadline"), "sent"),
            message=mid,
            acknowledged_for=p["party"],
            **_delay(at, sent_at, sent.get("deadline")),
        )
    return None


def _overlaps(p: dict[str, Any], story: _Story) -> bool:
    """Whether a conflict's time (its ``start`` and ``end``, when given) overlaps the story's window."""
    if not p.get("start") or not p.get("end"):
        return True
    return parse_utc(p["start"], field="start") < story.end and story.start < parse_utc(p["end"], field="end")


def _delay(at: datetime, raised: datetime, deadline: str | None) -> dict[str, Any]:
    late = deadline is not None and at >= parse_utc(deadline, field="deadline")
    return {"delay_s": (at - raised).total_seconds(), "late": late}


def _ack_words(who: str, what: str, party: str, at: datetime, raised: datetime, deadline: str | None, verb: str) -> str:
    on_behalf = "" if who.startswith(f"{party} (") else f" for {party}"
    text = f"{who} acknowledged {what}{on_behalf}, {_duration((at - raised).total_seconds())} after it was {verb}"
    if _delay(at, raised, deadline)["late"]:
        assert deadline is not None
        text += f", after its deadline of {_clock(parse_utc(deadline, field='deadline'), at)} UTC"
    return text


def _conflict_fields(p: dict[str, Any]) -> dict[str, Any]:
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
    )
    return {"conflict": p["id"], **{("conflict_kind" if k == "kind" else k): p[k] for k in keys if k in p}}


def _conflict_words(p: dict[str, Any], who: str, at: datetime) -> str:
    cid, kind = p["id"], p["kind"]
    deadline = _clock(parse_utc(p["deadline"], field="deadline"), at)
    tail = f"; {_and(p.get('awaiting', []))} to acknowledge by {deadline} UTC"
    a = f"{p['activity']} ({p['party']})"
    if kind == "separation":
        b = f"{p['other_activity']} ({p['other_party']})"
        distance = float(p.get("distance_m", 0.0))
        how = "overlap" if distance == 0 else f"come within {_km(distance)} of each other"
        window = _window(parse_utc(p["start"], field="start"), parse_utc(p["end"], field="end"), at)
        minimum = f" (minimum {_km(float(p['separation_m']))})" if "separation_m" in p else ""
        band = f", {_metres(p['floor_m'])}–{_metres(p['ceiling_m'])} m" if "floor_m" in p else ""
        return f"{who} raised conflict {cid}: {a} and {b} {how}{minimum}, {window}{band}{tail}"
    if kind == "zone":
        zone = f"{ZONE_WORDS.get(str(p.get('zone_kind')), 'zone')} {p['zone']} of {p['zone_owner']}"
        kind_words = KIND_WORDS.get(p.get("activity_kind", ""), "an activity")
        return f"{who} raised conflict {cid}: {a}, {kind_words}, is inside {zone}{tail}"
    if kind == "short_notice":
        return (
            f"{who} raised conflict {cid}: {a} was notified {_duration(float(p['lead_time_s']))} before it starts; "
            f"the rules ask for {_duration(float(p['min_notice_s']))}{tail}"
        )
    return f"{who} raised conflict {cid} ({kind}) about {a}{tail}"


def _message_fields(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "message": p["id"],
        "message_type": p["type"],
        "to": p["to"],
        "template": p.get("template"),
        "text": _message_text(p),
        "needs_ack": bool(p.get("needs_ack")),
        "deadline": p.get("deadline"),
        "about": p.get("about"),
    }


def _message_text(p: dict[str, Any]) -> str:
    """The message in English agreed wording, or free text as written."""
    if p.get("template"):
        try:
            return hotline.render(p["template"], "en", p.get("params") or {}).text
        except DeconflictError:
            params = ", ".join(f"{k}={v}" for k, v in (p.get("params") or {}).items())
            return f"{p['template']}({params})"
    return str(p.get("text", ""))


def _message_words(p: dict[str, Any], who: str, at: datetime) -> str:
    kind = MESSAGE_WORDS.get(p["type"], "a message")
    text = _message_text(p)
    quoted = f"“{text}”" if p.get("template") else f"“{text}” (free text, {p.get('lang', '?')})"
    ack = ""
    if p.get("needs_ack") and p.get("deadline"):
        ack = f"; acknowledge by {_clock(parse_utc(p['deadline'], field='deadline'), at)} UTC"
    return f"{who} sent {kind}, {p['id']}, to {_and(p['to'])}: {quoted}{ack}"


__all__ = ["Event", "event_to_json", "incident_timeline", "timeline_text", "timeline_to_json"]
