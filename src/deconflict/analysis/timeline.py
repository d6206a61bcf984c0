"""The incident timeline: for a place and a window, the ordered story the record tells, in plain sentences.

A pure function over record entry documents (as ``deconflict.store.ledger.entry_doc`` gives them, or as a
record bundle holds them). The story holds:

- every version (notice, amendment, cancellation) of each activity that has, in any version,
  a volume within ``radius_km`` of the place (ground distance on WGS84, 0 inside a footprint)
  whose time window overlaps the window (``a.start < to and from < a.end``);
- zones within the radius whose validity overlaps the window (declared, withdrawn);
- conflicts raised about those activities, or about those zones at a time that overlaps
  the window, with their acknowledgements and resolutions; conflicts raised from live tracks
  (predicted loss of separation, a track outside its party's notices, a track inside another
  party's activity) when one of their tracks was within the radius at its last report and the
  conflict was raised, or predicted to last, within the window;
- hotline messages about those activities, zones, conflicts or messages, with their
  acknowledgements and escalation steps (the system's "escalated to" notices are left out:
  the escalation step itself is in the story).

Entries are not filtered by when they were written: a notice given the day before the
window is part of the story. Entries withheld from this copy (no payload) whose time lies
within the story's span are shown as such, because they may belong to it.

How each entry is put into words is in :mod:`deconflict.analysis._timeline_words`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shapely.geometry import Point, shape

from deconflict.analysis import _timeline_words as words
from deconflict.clock import iso, parse_utc
from deconflict.errors import DeconflictError, InvalidInput
from deconflict.geo import WGS84, Frame
from deconflict.model import ConflictKind
from deconflict.record.chain import EntryType

__all__ = ["MAX_RADIUS_KM", "Event", "event_to_json", "incident_timeline", "timeline_text", "timeline_to_json"]

MAX_RADIUS_KM = 1000.0
"""Largest radius accepted around the place, in kilometres."""
_ACTIVITY_ENTRIES = (EntryType.ACTIVITY_NOTIFIED, EntryType.ACTIVITY_AMENDED, EntryType.ACTIVITY_CANCELLED)
"""Entry types that hold a version of an activity."""
_TACTICAL = (ConflictKind.TRACKS, ConflictKind.CONFORMANCE, ConflictKind.INTRUSION)
"""Conflicts raised from live tracks: placed by where their tracks were, timed by when they were raised."""

_T = TypeVar("_T")


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
    """One event as a JSON-able document: time, entry number, actor, party, type, sentence, then its fields."""
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
        degrees: tuple[tuple[str, object, int, int], ...] = (("lat", lat, -90, 90), ("lon", lon, -180, 180))
        for name, value, lo, hi in degrees:  # checked as given: callers may pass anything
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise InvalidInput(f"{name}: expected degrees between {lo} and {hi}, got {value!r}", field=name)
        given: object = radius_km
        if not (isinstance(given, (int, float)) and 0 < given <= MAX_RADIUS_KM):
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
        if isinstance(geom, Point):  # a geodesic circle: exact on the ellipsoid
            _, _, d = WGS84.inv(self.lon, self.lat, geom.x, geom.y)
            return max(float(d) - radius_m, 0.0)
        if geom.covers(self.point):
            return 0.0
        projected = self.frame.project(geom)
        return float(self.frame.ground_distance(self.xy, 0.0, projected, radius_m)[0])


# ---------------------------------------------------------------------------
# The story


@dataclass
class _Story:
    """What the two passes over the record know: members, and the activities, zones, conflicts, messages chosen."""

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
        """How an actor is named in a sentence: member id and party name, or the service's own actor."""
        if actor in words.ACTORS:
            return words.ACTORS[actor]
        party = self.members.get(actor, (None, ""))[0]
        name = self.party_names.get(party or "", party)
        return f"{actor} ({name})" if name else actor

    def party_of(self, actor: str) -> str | None:
        """The party of a member (None for the system, the operator or an unknown actor)."""
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


def _guard(doc: dict[str, Any], fn: Callable[[dict[str, Any], _Story], _T], story: _Story) -> _T:
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
    if type == EntryType.MECHANISM_DECLARED:
        for m in p["members"]:
            _member(story, m)
    elif type == EntryType.MEMBER_ADDED:
        _member(story, p)
    elif type in _ACTIVITY_ENTRIES:
        for v in p["volumes"]:
            d = story.near(
                v["geometry"],
                float(v.get("radius_m") or 0.0),
                parse_utc(v["start"], field="start"),
                parse_utc(v["end"], field="end"),
            )
            if d is not None:
                story.activities[p["id"]] = min(d, story.activities.get(p["id"], d))
    elif type == EntryType.ZONE_DECLARED:
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

    if type in _ACTIVITY_ENTRIES and p.get("id") in story.activities:
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
        if type == EntryType.ACTIVITY_CANCELLED:
            return event(f"{who} cancelled {aid} (version {version})", **fields)
        notified = parse_utc(p["notified_at"], field="notified_at")
        fields["lead_s"] = (parse_utc(p["start"], field="start") - notified).total_seconds()
        kind = words.KIND_WORDS.get(p["kind"], "a " + p["kind"].replace("_", " "))
        if type == EntryType.ACTIVITY_NOTIFIED:
            return event(f"{who} notified {aid}, {kind}, {words.volumes(p['volumes'], at)}", **fields)
        return event(f"{who} amended {aid} to version {version}: {kind}, {words.volumes(p['volumes'], at)}", **fields)
    if type in (EntryType.ZONE_DECLARED, EntryType.ZONE_WITHDRAWN) and p.get("id") in story.zones:
        zid = p["id"]
        if type == EntryType.ZONE_WITHDRAWN:
            return event(f"{who} withdrew zone {zid}", zone=zid)
        forbids = words.and_(k.replace("_", " ").replace("air defence", "air-defence") for k in p["forbids"])
        since = parse_utc(p["valid_from"], field="valid_from")
        until = f" until {words.clock(parse_utc(p['valid_to'], field='valid_to'), at)} UTC" if p.get("valid_to") else ""
        return event(
            f"{who} declared {words.ZONE_WORDS.get(p['kind'], p['kind'])} {zid} ({p['name']}): "
            f"{words.footprint(p['geometry'], float(p.get('radius_m') or 0.0))}, forbidding {forbids}, "
            f"from {words.clock(since, at)} UTC{until}",
            zone=zid,
            zone_kind=p["kind"],
            owner=p["owner"],
            distance_km=round(story.zones[zid] / 1000, 2),
        )
    if type == EntryType.CONFLICT_DETECTED:
        involved = {p.get("activity"), p.get("other_activity")} & set(story.activities)
        if p.get("kind") in _TACTICAL:
            if not (involved or _tracks_near(p, at, story)):
                return None
        elif not involved and not (p.get("zone") in story.zones and _overlaps(p, story)):
            return None
        story.conflicts[p["id"]] = {"at": at, **p}
        return event(words.conflict_words(p, who, at), **words.conflict_fields(p))
    if type in (EntryType.CONFLICT_ACKNOWLEDGED, EntryType.CONFLICT_RESOLVED) and p.get("id") in story.conflicts:
        cid = p["id"]
        raised = story.conflicts[cid]
        if type == EntryType.CONFLICT_RESOLVED:
            note = f" ({p['note']})" if p.get("note") else ""
            alerts = list(p.get("messages", ()))
            closing = f"; its unacknowledged alert {words.and_(alerts)} closed with it" if alerts else ""
            return event(
                f"{who} closed conflict {cid} as {p['resolution']}{note}{closing}",
                conflict=cid,
                resolution=p["resolution"],
                note=p.get("note", ""),
                **({"alerts_closed": alerts} if alerts else {}),
            )
        alerts = list(p.get("messages", ()))
        settling = f", settling its alert {words.and_(alerts)}" if alerts else ""
        return event(
            words.ack_words(who, f"conflict {cid}", p["party"], at, raised["at"], raised.get("deadline"), "raised")
            + settling,
            conflict=cid,
            acknowledged_for=p["party"],
            **words.delay(at, raised["at"], raised.get("deadline")),
            **({"alerts_settled": alerts} if alerts else {}),
        )
    if type == EntryType.MESSAGE_SENT:
        about = p.get("about") or {}
        kind, ref = about.get("kind"), about.get("id")
        wanted = (
            (kind == "activity" and ref in story.activities)
            or (kind == "conflict" and ref in story.conflicts)
            or (kind == "zone" and ref in story.zones)
            or (kind == "message" and ref in story.messages and p.get("template") != "escalated_to")
        )
        # a phrase carries its subject in its ``ref`` ("Received and acknowledged: C5"), and what it settles
        settles = p.get("settles") or {}
        named = (p.get("params") or {}).get("ref") if p.get("template") != "escalated_to" else None
        wanted = (
            wanted
            or any(c in story.conflicts for c in settles.get("conflicts", ()))
            or any(m in story.messages for m in settles.get("messages", ()))
            or (isinstance(named, str) and (named in story.conflicts or named in story.activities))
        )
        if not wanted:
            return None
        story.messages[p["id"]] = (at, p)
        settled = [*settles.get("conflicts", ()), *settles.get("messages", ())]
        acknowledging = f"; this acknowledged {words.and_(settled)} for {p['from_party']}" if settled else ""
        extra = {"settles": settled} if settled else {}
        return event(words.message_words(p, who, at) + acknowledging, **words.message_fields(p), **extra)
    if type in (EntryType.MESSAGE_ACKNOWLEDGED, EntryType.MESSAGE_ESCALATED) and p.get("id") in story.messages:
        mid = p["id"]
        sent_at, sent = story.messages[mid]
        if type == EntryType.MESSAGE_ESCALATED:
            due = parse_utc(p["due_at"], field="due_at")
            return event(
                f"{who} escalated {mid} to the {p['name']}: no acknowledgement by {words.clock(due, at)} UTC",
                message=mid,
                rung=int(p["rung"]),
                rung_name=p["name"],
                due_at=p["due_at"],
            )
        return event(
            words.ack_words(who, mid, p["party"], at, sent_at, sent.get("deadline"), "sent"),
            message=mid,
            acknowledged_for=p["party"],
            **words.delay(at, sent_at, sent.get("deadline")),
        )
    return None


def _tracks_near(p: dict[str, Any], at: datetime, story: _Story) -> bool:
    """Whether a tactical conflict belongs to the story: raised, or predicted to last (``t_out_s`` after it was
    raised), within the window, with one of its tracks within the radius when it was raised (its last report)."""
    until = at + timedelta(seconds=float(p.get("t_out_s") or 0.0))
    if not (at < story.end and story.start <= until):
        return False
    for state in p.get("track_states", ()):
        point = {"type": "Point", "coordinates": [float(state["lon"]), float(state["lat"])]}
        if story.place.distance_m(point, 0.0) <= story.place.radius_m:
            return True
    return False


def _overlaps(p: dict[str, Any], story: _Story) -> bool:
    """Whether a conflict's time (its ``start`` and ``end``, when given) overlaps the story's window."""
    if not p.get("start") or not p.get("end"):
        return True
    return parse_utc(p["start"], field="start") < story.end and story.start < parse_utc(p["end"], field="end")
