"""What each member may see: overlap parts of notices, and record entries filtered by the disclosure policy.

Under ``full`` every member sees whole notices. Under ``conflicts-only`` a party sees
its own notices whole and another party's notice only as the part that conflicts with
its own (the intersection in space, altitude and time, with the separation minima
applied); facilitators and observers see conflicts, zones and the hotline, and notices
only as those overlap parts. An entry a member may not see keeps its place in the
sequence with its hashes and without its payload, so a copy still verifies.

This module is the one place that says it (docs/disclosure.md is the table): what a conflict
carries when it is recorded (``recorded_conflict``), how far one notice may reach
(``check_caps``), what a preview answers (``preview_separation``), what a list filter is
held to (``part_matches``), and who receives which record entry (``entry_view``). Every
route (the 201 answer, conflicts, activities, the record, the stream, replay, the preview)
reads through these.

The documents members read are shaped here too, live or replayed alike: a message worded in its reader's
language with where it stands, a conflict with its status, a registered key.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape

from deconflict import hotline
from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.geo import Frame
from deconflict.model import ConflictKind, Disclosure, Member, Role, Rules, Volume
from deconflict.record.chain import EntryType

__all__ = [
    "FOLLOW_UPS",
    "OVERLAP_QUAD_SEGS",
    "Audience",
    "audience_of",
    "WITHHELD_FROM_CONFLICT",
    "check_caps",
    "conflict_for",
    "conflict_public",
    "entry_view",
    "followed",
    "key_public",
    "listed_part",
    "message_status_view",
    "message_view",
    "overlap_part",
    "part_matches",
    "partial_activity",
    "payload_of",
    "preview_separation",
    "recorded_conflict",
    "sees_audience",
    "sees_conflict",
    "sees_message",
    "sees_whole_notices",
]

OVERLAP_QUAD_SEGS = 16
"""Quarter-circle segments used when a circle is cut into an overlap polygon."""


def _area(frame: Frame, geom: Any, radius_m: float) -> Any:
    if radius_m <= 0:
        return geom
    k = float(frame.scale(geom.x, geom.y))
    return shapely.buffer(geom, radius_m * k, quad_segs=OVERLAP_QUAD_SEGS)


def _to_lonlat(frame: Frame, geom: Any) -> dict[str, Any]:
    def back(coords: Any) -> Any:
        lon, lat = frame.to_lonlat(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([lon, lat]), 7)

    return mapping(shapely.transform(geom, back))


def overlap_part(
    frame: Frame,
    *,
    volume_id: str | None,
    geom: Any,
    radius_m: float,
    window: tuple[float, float],
    band: tuple[float, float],
    near_geom: Any,
    near_radius_m: float,
    near_window: tuple[float, float],
    near_band: tuple[float, float],
    separation_m: float = 0.0,
    vertical_separation_m: float = 0.0,
) -> dict[str, Any] | None:
    """The part of one volume that lies within the separation minima of another, or None.

    Geometries are in ``frame`` metres; windows in epoch seconds; bands in metres. ``volume_id`` None:
    the part names no volume (under ``conflicts-only`` a volume's id is the notice's own, not the overlap's).
    """
    mine = _area(frame, geom, radius_m)
    theirs = _area(frame, near_geom, near_radius_m)
    if separation_m > 0:
        theirs = shapely.buffer(theirs, separation_m * float(frame.scale(*shapely.get_coordinates(theirs.centroid)[0])))
    space = shapely.intersection(mine, theirs)
    if space.is_empty or space.area <= 0:
        return None
    start = max(window[0], near_window[0])
    end = min(window[1], near_window[1])
    floor = max(band[0], near_band[0] - vertical_separation_m)
    ceiling = min(band[1], near_band[1] + vertical_separation_m)
    if not (start < end and floor < ceiling):
        return None
    part: dict[str, Any] = {} if volume_id is None else {"volume": volume_id}
    k = float(frame.scale(*shapely.get_coordinates(space.centroid)[0]))
    return part | {
        "geometry": _to_lonlat(frame, shapely.normalize(space)),
        "area_km2": round(float(space.area) / (k * k) / 1e6, 3),
        "floor_m": floor,
        "ceiling_m": ceiling,
        "start": iso(datetime.fromtimestamp(start, UTC)),
        "end": iso(datetime.fromtimestamp(end, UTC)) if end < 1e11 else None,
    }


# --- what a conflict carries, how far a notice may reach, what a preview answers ----------------

WITHHELD_FROM_CONFLICT: dict[str, tuple[str, ...]] = {
    ConflictKind.SEPARATION.value: ("volume_pairs",),
    ConflictKind.ZONE.value: ("volumes",),
    ConflictKind.SHORT_NOTICE.value: ("start", "end", "floor_m", "ceiling_m"),
}
"""Under ``conflicts-only``, what a conflict of each kind does not carry: the volume ids of the notices (they
are the notices' own, not the overlap's) and, for short notice, the late notice's window and band (those
awaited need the fact and the lead time; where it overlaps their own notices a separation conflict says
so, with the overlap only)."""


def recorded_conflict(doc: dict[str, Any], disclosure: Disclosure) -> dict[str, Any]:
    """A conflict as it may be recorded (and so read by every member who sees it): whole under ``full``;
    under ``conflicts-only`` without what ``WITHHELD_FROM_CONFLICT`` names, and its overlap parts
    without volume ids. Idempotent, so a conflict recorded before this rule is read the same way."""
    if disclosure is Disclosure.FULL:
        return doc
    drop = WITHHELD_FROM_CONFLICT.get(str(doc.get("kind")), ())
    out = {k: v for k, v in doc.items() if k not in drop}
    for side in ("overlap_a", "overlap_b"):
        if side in out:
            out[side] = [{k: v for k, v in p.items() if k != "volume"} for p in out[side]]
    return out


def conflict_for(member: Member, doc: dict[str, Any], disclosure: Disclosure) -> dict[str, Any] | None:
    """A conflict as ``member`` may read it (None: it does not concern the member)."""
    if not sees_conflict(member, doc):
        return None
    return recorded_conflict(doc, disclosure)


def notice_area_km2(frame: Frame, projected: Sequence[tuple[Any, float]], *, grown_m: float) -> tuple[float, float]:
    """The ground a notice's footprints cover together (their union) and the ground they reach (that union
    grown by ``grown_m`` metres all round), km², from one union."""
    shapes = [_area(frame, g, r) for g, r in projected]
    union = shapely.union_all(shapes)
    if union.is_empty:
        return 0.0, 0.0
    k = float(frame.scale(*shapely.get_coordinates(union.centroid)[0]))
    grown = shapely.buffer(union, grown_m * k, quad_segs=OVERLAP_QUAD_SEGS) if grown_m > 0 else union
    return float(union.area) / (k * k) / 1e6, float(grown.area) / (k * k) / 1e6


def most_reach_km2(rules: Rules) -> float:
    """The most ground one notice may reach under ``conflicts-only``: what a disc of ``max_notice_area_km2``,
    the most compact footprint of that area, reaches grown by the separation minimum. A notice of the
    largest area allowed, drawn compactly, reaches this much; a thin or scattered one of small area reaches as
    far as a wide one, and is held to the same."""
    radius_km = math.sqrt(rules.max_notice_area_km2 / math.pi) + rules.separation_m / 1000
    return math.pi * radius_km * radius_km


def check_zone_caps(rules: Rules, frame: Frame, geom: Any, radius_m: float, *, circle: bool) -> None:
    """Hold a zone a party declares while the mechanism runs to a notice's area cap under ``conflicts-only``.
    A zone's conflicts show its owner the part of each other party's notice inside it (past notices at once,
    and every one to come while it stands): a zone over the whole theatre showed every notice of the other
    party whole (one of 450 km radius, declared and withdrawn, left them all in the owner's reads). The zones
    of the agreed mechanism file (declared with the mechanism, by the operator or by their owners) are not
    held to it.

    Raises:
        InvalidInput: naming ``radius_m`` (a circle) or ``geometry``.
    """
    if rules.disclosure is Disclosure.FULL:
        return
    area, reach = notice_area_km2(frame, [(geom, radius_m)], grown_m=rules.separation_m)
    if area > rules.max_notice_area_km2:
        field = "radius_m" if circle else "geometry"
        raise InvalidInput(
            f"{field}: the zone covers {area:,.0f} km², more than the "
            f"{rules.max_notice_area_km2:,.0f} km² a zone declared by a party may cover under conflicts-only "
            "(max_notice_area_km2), since it would show that party every other party's notice inside it; "
            "declare the area the zone protects, or agree a larger one in the mechanism's file",
            field=field,
        )
    # as a notice's: a comb of thin strips covering 80 km² cut a slice from every other notice in the country,
    # with its whole window and band
    most = most_reach_km2(rules)
    if reach > most:
        field = "radius_m" if circle else "geometry"
        raise InvalidInput(
            f"{field}: the zone reaches {reach:,.0f} km² within the separation minimum "
            f"({rules.separation_m / 1000:g} km around it), more than the {most:,.0f} km² a zone declared by a "
            f"party may reach under conflicts-only (what one round zone of {rules.max_notice_area_km2:,.0f} km² "
            "reaches): strips or scattered parts reach as far as a wide area; declare the area the zone protects",
            field=field,
        )


def check_caps(rules: Rules, frame: Frame, vols: Sequence[Volume], projected: Sequence[tuple[Any, float]]) -> None:
    """Hold one notice (or preview) to the rules' caps under ``conflicts-only``: the area its footprints
    cover together, each volume's band, and the span from its first start to its last end. What another
    party can learn from one notice is the overlap of that notice (grown by the separation minimum) with
    its own: the caps bound it, so one wide notice cannot capture every other notice whole. Under
    ``full`` everyone sees everything and the caps do not apply.

    Raises:
        InvalidInput: naming the volume and field (or ``volumes`` for the notice's area).
    """
    if rules.disclosure is Disclosure.FULL:
        return
    for n, v in enumerate(vols):
        band = v.ceiling_m - v.floor_m
        if band > rules.max_notice_band_m:
            raise InvalidInput(
                f"volume {n + 1} (id {v.id!r}) ceiling_m: the band is {band:g} m deep, more than the "
                f"{rules.max_notice_band_m:g} m one volume may cover under conflicts-only (max_notice_band_m); "
                "notify the band the activity needs",
                field="ceiling_m",
            )
    starts = [v.start for v in vols if v.start is not None]
    ends = [v.end for v in vols if v.end is not None]
    if starts and ends:
        span = (max(ends) - min(starts)).total_seconds()
        if span > rules.max_notice_hours * 3600:
            raise InvalidInput(
                f"end: the notice spans {span / 3600:g} hours from its first start to its last end, more than the "
                f"{rules.max_notice_hours:g} hours one notice may cover under conflicts-only (max_notice_hours); "
                "notify a longer activity in parts",
                field="end",
            )
    area, reach = notice_area_km2(frame, projected, grown_m=rules.separation_m)
    if area > rules.max_notice_area_km2:
        raise InvalidInput(
            f"volumes geometry: the footprints cover {area:,.0f} km² together, more than the "
            f"{rules.max_notice_area_km2:,.0f} km² one notice may cover under conflicts-only (max_notice_area_km2); "
            "notify the area the activity needs",
            field="geometry",
        )
    # what another party's notice shows the notifier is its overlap with these footprints grown by the
    # separation minimum: a comb of thin strips covered 245 km² and reached a whole country
    most = most_reach_km2(rules)
    if reach > most:
        raise InvalidInput(
            f"volumes geometry: the footprints reach {reach:,.0f} km² within the separation minimum "
            f"({rules.separation_m / 1000:g} km around them), more than the {most:,.0f} km² one notice may reach "
            f"under conflicts-only (what one round footprint of {rules.max_notice_area_km2:,.0f} km² reaches): "
            "strips or scattered shapes reach as far as a wide area; notify the area the activity needs",
            field="geometry",
        )


def preview_separation(
    *,
    other_party: str,
    parts: list[dict[str, Any]],
    disclosure: Disclosure,
    whole: dict[str, Any],
) -> dict[str, Any] | None:
    """What a preview answers of a separation conflict it would raise.

    Under ``full``: ``whole`` (the other notice's id, the distance, the window and band where they meet).
    Under ``conflicts-only``: exactly what the conflict would disclose, the other notice's parts within the
    separation minima of the draft (``overlap``: geometry, band ∩, window ∩, each part's area) and the
    hull of their windows and bands, never the other notice's own window, band, id or volume ids. None
    when nothing of it lies within the minima (nothing to say).
    """
    doc: dict[str, Any] = {"kind": ConflictKind.SEPARATION.value, "other_party": other_party}
    if disclosure is Disclosure.FULL:
        return doc | whole
    if not parts:
        return None
    ends = [p["end"] for p in parts]
    return doc | {
        "start": min(p["start"] for p in parts),
        "end": None if None in ends else max(ends),
        "floor_m": min(p["floor_m"] for p in parts),
        "ceiling_m": max(p["ceiling_m"] for p in parts),
        "overlap": [{k: v for k, v in p.items() if k != "volume"} for p in parts],
    }


def part_matches(
    part: dict[str, Any], *, area: Any = None, start: datetime | None = None, end: datetime | None = None
) -> bool:
    """Whether one overlap part answers a list filter: its geometry touches ``area`` (lon/lat), its
    window ends after ``start`` and begins before ``end``. Filters on another party's notice are held to
    the parts the reader may see, never to the whole notice."""
    if area is not None and not shape(part["geometry"]).intersects(area):
        return False
    if start is not None and part.get("end") is not None and parse_utc(part["end"], field="end") <= start:
        return False
    return end is None or parse_utc(part["start"], field="start") < end


def listed_part(
    activity: dict[str, Any],
    conflicts: list[dict[str, Any]],
    member: Member,
    *,
    area: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any] | None:
    """Another party's notice, which ``member`` sees only in part, as a list filtered by ``area``, ``start`` and
    ``end`` shows it: its overlap parts (:func:`partial_activity`, from the ``conflicts`` ``member`` sees) when
    one of them answers the filters (:func:`part_matches`), else None. Never judged by the whole notice, whose
    window and place its reader may not learn."""
    partial = partial_activity(activity, conflicts, member)
    if any(part_matches(p, area=area, start=start, end=end) for p in partial["overlap"]):
        return partial
    return None


# --- reading rights -------------------------------------------------------------------------


def sees_whole_notices(member: Member, disclosure: Disclosure, party: str) -> bool:
    """Whether ``member`` may see the whole notices of ``party``."""
    return disclosure is Disclosure.FULL or (member.role is Role.PARTY and member.party == party)


def sees_conflict(member: Member, conflict: dict[str, Any]) -> bool:
    """Facilitators and observers see every conflict; a party those that concern it."""
    return member.role is not Role.PARTY or member.party in conflict.get("parties", ())


def sees_message(member: Member, *, to: Any, sender: str, from_party: str | None) -> bool:
    """Facilitators and observers read the whole channel; a party what is addressed to it or sent by it."""
    return member.role is not Role.PARTY or member.party in to or sender == member.id or from_party == member.party


def partial_activity(activity: dict[str, Any], conflicts: list[dict[str, Any]], member: Member) -> dict[str, Any]:
    """Another party's notice as ``member`` may see it under conflicts-only: the overlap parts only (without
    volume ids), with its id, party, kind, state, version and when that version was notified."""
    parts: list[dict[str, Any]] = []
    for c in conflicts:
        if c.get("activity_version") is None or not sees_conflict(member, c):
            continue
        if c["activity"] == activity["id"] and c["activity_version"] == activity["version"]:
            parts += c.get("overlap_a", [])
        elif c.get("other_activity") == activity["id"] and c.get("other_version") == activity["version"]:
            parts += c.get("overlap_b", [])
    summary = {k: activity[k] for k in ("id", "party", "kind", "state", "version", "notified_at")}
    parts = [{k: v for k, v in p.items() if k != "volume"} for p in parts]
    return {**summary, "partial": True, "volumes": [], "overlap": parts}


FOLLOW_UPS: dict[str, str] = {
    EntryType.CONFLICT_ACKNOWLEDGED.value: "conflict",
    EntryType.CONFLICT_RESOLVED.value: "conflict",
    EntryType.MESSAGE_ACKNOWLEDGED.value: "message",
    EntryType.MESSAGE_ESCALATED.value: "message",
}
"""Entry types that follow a conflict or a message, named by the ``id`` in their payload: whoever may not
see that conflict or message does not receive them either (an acknowledgement, a resolution and its note,
an escalation step say what happened to it)."""

Audience = tuple[Any, ...]
"""Who may see a conflict (``("conflict", parties)``) or a message (``("message", to, sender, from_party)``):
what :func:`entry_view` holds a follow-up entry to (:func:`audience_of`)."""


def followed(entry: dict[str, Any]) -> tuple[str, str] | None:
    """The conflict or message a follow-up entry names, as ``(kind, id)``; None for any other entry.

    >>> followed({"type": "conflict.resolved", "payload": {"id": "C4", "resolution": "accepted"}})
    ('conflict', 'C4')
    >>> followed({"type": "message.sent", "payload": {"id": "M1"}}) is None
    True
    """
    kind = FOLLOW_UPS.get(entry["type"])
    payload = entry.get("payload")
    if kind is None or not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        return None
    return kind, payload["id"]


def audience_of(entry: dict[str, Any]) -> tuple[tuple[str, str], Audience] | None:
    """The conflict or message an entry records, and who may see it; None for any other entry."""
    payload = entry.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        return None
    if entry["type"] == EntryType.CONFLICT_DETECTED:
        return ("conflict", payload["id"]), ("conflict", tuple(payload.get("parties") or ()))
    if entry["type"] == EntryType.MESSAGE_SENT:
        audience = ("message", tuple(payload.get("to") or ()), str(entry.get("actor")), payload.get("from_party"))
        return ("message", payload["id"]), audience
    return None


def sees_audience(member: Member, audience: Audience | None) -> bool:
    """Whether ``member`` may see the conflict or message of that audience (None, unknown: no)."""
    if audience is None:
        return member.role is not Role.PARTY
    if audience[0] == "conflict":
        return sees_conflict(member, {"parties": audience[1]})
    return sees_message(member, to=audience[1], sender=audience[2], from_party=audience[3])


def entry_view(
    entry: dict[str, Any],
    member: Member,
    disclosure: Disclosure,
    audiences: dict[tuple[str, str], Audience] | None = None,
) -> dict[str, Any]:
    """A record entry as ``member`` may receive it: whole, or without its payload (hashes kept).

    ``audiences``: who may see each conflict and message the follow-up entries among those read name
    (:data:`FOLLOW_UPS`); a party receives a follow-up only of what it may see. None: the reader is no party,
    or none of the entries is a follow-up."""
    kind = entry["type"]
    payload = entry.get("payload")
    visible = True
    if kind.startswith("activity.") and payload is not None:
        visible = sees_whole_notices(member, disclosure, payload.get("party", ""))
    elif kind == EntryType.CONFLICT_DETECTED and payload is not None:
        visible = sees_conflict(member, payload)
    elif kind in FOLLOW_UPS and payload is not None and member.role is Role.PARTY:
        ref = followed(entry)
        visible = ref is not None and sees_audience(member, (audiences or {}).get(ref))
    elif kind == EntryType.MESSAGE_SENT and payload is not None:
        to, from_party = payload.get("to", ()), payload.get("from_party")
        visible = sees_message(member, to=to, sender=str(entry.get("actor")), from_party=from_party)
    if visible:
        return entry
    view = {k: v for k, v in entry.items() if k != "payload"}
    view["withheld"] = True
    return view


def payload_of(entry_payload: str) -> Any:
    return json.loads(entry_payload)


# --- the documents members read --------------------------------------------------------------


def message_view(doc: dict[str, Any], *, seq: int, sender: str, sent_at: datetime, reader: Member) -> dict[str, Any]:
    """A message as ``reader`` sees it when it is sent: agreed wording in the reader's language,
    free text as written with its original language."""
    if doc.get("template"):
        rendered = hotline.render(doc["template"], reader.language, doc["params"])
        text, original, lang = rendered.display or rendered.text, None, reader.language
    else:
        text, original, lang = doc["text"], {"text": doc["text"], "lang": doc["lang"]}, doc["lang"]
    return {
        "id": doc["id"],
        "seq": seq,
        "type": doc["type"],
        "from": sender,
        "to": doc["to"],
        "template": doc.get("template"),
        "params": doc.get("params", {}),
        "text": text,
        "lang": lang,
        "rtl": hotline.is_rtl(lang),
        "free_text": original is not None,
        "original": original,
        "about": doc.get("about"),
        "needs_ack": doc["needs_ack"],
        "sent_at": iso(sent_at),
        "deadline": doc.get("deadline"),
        "acknowledged": {},
        "acknowledged_at": None,
        "escalation_steps": 0,
        "status": "awaiting" if doc["needs_ack"] else "info",
        "awaiting": list(doc["to"]) if doc["needs_ack"] else [],
        "closed_at": None,
        "closed_note": None,
        "closed_resolution": None,
    }


def message_status_view(
    doc: dict[str, Any],
    *,
    seq: int,
    sender: str,
    sent_at: datetime,
    acknowledged: dict[str, Any],
    acknowledged_at: str | None,
    steps: int,
    reader: Member,
    closed_at: str | None = None,
    closed_note: str | None = None,
) -> dict[str, Any]:
    """A message worded for its reader, with where it stands (live or replayed).

    ``status``: ``info`` (needs no acknowledgement), ``awaiting`` (some recipient must still
    acknowledge: ``awaiting`` lists them), ``acknowledged``, or ``closed`` (the conflict it alerted
    to was resolved first: it stopped climbing; ``closed_note`` says why).
    """
    view = message_view(doc, seq=seq, sender=sender, sent_at=sent_at, reader=reader)
    view["acknowledged"] = acknowledged
    view["acknowledged_at"] = acknowledged_at
    view["escalation_steps"] = steps
    view["closed_at"], view["closed_note"] = closed_at, closed_note
    closed = re.fullmatch(r"conflict (\S+) resolved \((\w+)\)", closed_note or "")
    view["closed_resolution"] = closed.group(2) if closed else None
    if not doc["needs_ack"]:
        view["status"], view["awaiting"] = "info", []
    elif acknowledged_at is not None:
        view["status"], view["awaiting"] = "acknowledged", []
    elif closed_at is not None:
        view["status"], view["awaiting"] = "closed", []
    else:
        view["status"], view["awaiting"] = "awaiting", [p for p in doc["to"] if p not in acknowledged]
    return view


def conflict_public(
    doc: dict[str, Any],
    *,
    status: str,
    resolution: str | None,
    detected_at: str,
    acknowledged: dict[str, Any],
    resolved_at: str | None,
    resolved_by: str | None,
) -> dict[str, Any]:
    """A conflict as members read it: what was detected, and where it stands (live or replayed)."""
    return {
        **doc,
        "status": status,
        "resolution": resolution,
        "detected_at": detected_at,
        "acknowledged": acknowledged,
        "resolved_at": resolved_at,
        "resolved_by": resolved_by,
    }


def key_public(
    *,
    key_id: str,
    owner: str,
    public_key: str,
    custody: str,
    registered_seq: int,
    registered_at: datetime,
    revoked_seq: int | None,
) -> dict[str, Any]:
    """A public key as the record registered it (its fingerprint is its key id)."""
    return {
        "key_id": key_id,
        "fingerprint": key_id,
        "owner": owner,
        "public_key": public_key,
        "custody": custody,
        "registered_seq": registered_seq,
        "registered_at": iso(registered_at),
        "revoked_seq": revoked_seq,
    }
