"""From detection to the record: what a version of an activity conflicts with, and each finding recorded
as a conflict with its alerts, routed by role (docs/duty-loop.md). Under ``conflicts-only`` a conflict
carries the parts of each notice that overlap, the only parts other members may see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deconflict.clock import iso, parse_utc
from deconflict.detect import (
    SeparationFinding,
    ShortNotice,
    ZoneFinding,
    separation_findings,
    short_notice,
    zone_findings,
)
from deconflict.disclosure import overlap_part, recorded_conflict
from deconflict.model import Activity, ConflictKind, ConflictStatus, Disclosure, Role, Volume, Zone, ZoneKind
from deconflict.record.chain import EntryType
from deconflict.service import queries
from deconflict.service.context import SYSTEM
from deconflict.service.picture import Picture, Projected
from deconflict.service.posting import post_standard
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ConflictRow

__all__ = ["Carried", "Finding", "carried_deadlines", "findings", "raise_finding", "separation_overlaps"]

Finding = SeparationFinding | ZoneFinding | ShortNotice
Carried = dict[tuple[str, ...], tuple[str, datetime]]
"""situation → (conflict id, deadline) of open conflicts an amendment supersedes."""


def findings(picture: Picture, activity: Activity, projected: Projected) -> list[Finding]:
    """What a version of an activity conflicts with: other parties' notices, zones, the lead time."""
    rules = picture.mechanism.rules
    picture.reach(activity.notified_at)
    found: list[SeparationFinding | ZoneFinding] = []
    found += separation_findings(
        activity,
        projected,
        picture.index,
        separation_m=rules.separation_m,
        vertical_separation_m=rules.vertical_separation_m,
    )
    found += zone_findings(activity, projected, list(picture.zones.values()), picture.frame)
    # an overlap wholly past raises no conflict; the picture's index relies on this to leave out the activities
    # that ended before it reaches (picture.INDEX_REACH_S)
    out: list[Finding] = [f for f in found if f.end > activity.notified_at]
    late = short_notice(activity, min_notice_s=rules.min_notice_s)
    if late is not None:
        out.append(late)
    return out


def raise_finding(
    w: RecordWriter,
    picture: Picture,
    activity: Activity,
    projected: Projected,
    finding: Finding,
    now: datetime,
    *,
    carried: Carried | None = None,
) -> dict[str, Any]:
    """Record one finding as a conflict, with its alerts; returns the conflict (the writer's ``last_seq`` is its
    last alert's entry)."""
    rules = picture.mechanism.rules
    now = w.floor(now)  # the deadline runs from the entry's own time, even when the clock stepped back
    doc: dict[str, Any] = {
        "id": w.next_conflict_id(),
        "activity": activity.id,
        "activity_version": activity.version,
        "activity_kind": activity.kind.value,
        "party": activity.party,
        "deadline": iso(now + timedelta(seconds=rules.ack_deadline_s)),
    }
    others = sorted(picture.mechanism.parties() - {activity.party})
    if isinstance(finding, SeparationFinding):
        doc |= {
            "kind": ConflictKind.SEPARATION.value,
            "other_activity": finding.other_activity,
            "other_party": finding.other_party,
            "parties": sorted({activity.party, finding.other_party}),
            "awaiting": [finding.other_party],
            "distance_m": round(finding.distance_m, 1),
            "separation_m": rules.separation_m,
            "start": iso(finding.start),
            "end": iso(finding.end),
            "floor_m": finding.floor_m,
            "ceiling_m": finding.ceiling_m,
            "volume_pairs": [list(p) for p in finding.volume_pairs],
            "other_version": picture.activities[finding.other_activity].version,
        }
        if rules.disclosure is Disclosure.CONFLICTS_ONLY:
            doc["overlap_a"], doc["overlap_b"] = separation_overlaps(picture, activity, projected, finding)
    elif isinstance(finding, ZoneFinding):
        shape = picture.zones.get(finding.zone)
        zone = shape.zone if shape else None
        awaiting = [finding.zone_owner] if finding.zone_owner != activity.party else others
        doc |= {
            "kind": ConflictKind.ZONE.value,
            "zone": finding.zone,
            "zone_kind": zone.kind.value if zone else None,
            "zone_owner": finding.zone_owner,
            "parties": sorted({activity.party, finding.zone_owner, *awaiting}),  # whoever must answer sees it
            "awaiting": awaiting,
            "distance_m": 0.0,
            "start": iso(finding.start),
            "end": iso(finding.end),
            **_band_in_zone(activity, finding.volumes, zone),
            "volumes": list(finding.volumes),
        }
        if rules.disclosure is Disclosure.CONFLICTS_ONLY:
            doc["overlap_a"] = _zone_overlap(picture, activity, projected, finding)
            if zone is not None and zone.valid_to is not None and finding.end > zone.valid_to:
                doc["end"] = iso(zone.valid_to)  # the overlapping window: the zone's as much as the activity's
    else:
        doc |= {
            "kind": ConflictKind.SHORT_NOTICE.value,
            "parties": sorted({activity.party, *others}),
            "awaiting": others,
            "lead_time_s": round(finding.lead_time_s, 1),
            "min_notice_s": finding.min_notice_s,
            "start": iso(activity.start),
            "end": iso(activity.end),
            "floor_m": min(v.floor_m for v in activity.volumes),
            "ceiling_m": max(v.ceiling_m for v in activity.volumes),
        }
    inherited = (carried or {}).get(_situation(doc))
    if inherited is not None and inherited[1] < now + timedelta(seconds=rules.ack_deadline_s):
        # the same situation, re-raised by an amendment before those awaited acknowledged it: the deadline
        # (and the ladder) run on from the first detection, so amending cannot hold an alert at its first rung
        doc["deadline"], doc["supersedes"] = iso(inherited[1]), inherited[0]
    doc = recorded_conflict(doc, rules.disclosure)  # what every member who sees it may read (docs/disclosure.md)
    w.append(SYSTEM, EntryType.CONFLICT_DETECTED, doc, now)
    _alert(w, picture, activity, doc, now)
    return doc


def _alert(w: RecordWriter, picture: Picture, activity: Activity, conflict: dict[str, Any], now: datetime) -> None:
    """The hotline messages of a new conflict, routed by role (docs/duty-loop.md).

    Each party in ``awaiting`` gets its own alert, which it must acknowledge (acknowledging the
    alert or the conflict settles both); the party whose notice caused the conflict gets an
    information copy; the facilitator gets a copy of every red-line breach.
    """
    kind = conflict["kind"]
    about = (queries.ABOUT_CONFLICT, conflict["id"])
    common: dict[str, Any] = {"conflict": conflict["id"], "ref": activity.id}
    if kind in (ConflictKind.SEPARATION.value, ConflictKind.ZONE.value):
        common |= {
            "t1": parse_utc(conflict["start"], field="start"),
            "t2": parse_utc(conflict["end"], field="end"),
            "floor": round(conflict["floor_m"]),
            "ceiling": round(conflict["ceiling_m"]),
        }
    copies: list[tuple[str, dict[str, Any]]] = []
    if kind == ConflictKind.SEPARATION.value:
        other = conflict["other_party"]
        distance = round(conflict["distance_m"])
        alert = {
            **common,
            "ref": conflict["other_activity"],
            "other_ref": activity.id,
            "party": activity.party,
            "distance": distance,
        }
        info = {**common, "other_ref": conflict["other_activity"], "party": other, "distance": distance}
        alerts, info_template = ("separation_alert", alert), ("separation_info", info)
    elif kind == ConflictKind.ZONE.value:
        zone = {"place": conflict["zone"], "owner": conflict["zone_owner"]}
        alert = {**common, **zone, "party": activity.party}
        alerts, info_template = ("zone_breach_alert", alert), ("zone_breach_info", {**common, **zone})
        if conflict["zone_owner"] == activity.party:  # its own zone binds it: the others were alerted, not it
            alerted = ", ".join(conflict["awaiting"])
            info_template = ("own_zone_breach_info", {**common, "place": conflict["zone"], "alerted": alerted})
        if conflict.get("zone_kind") == ZoneKind.RED_LINE.value:
            copies = [("red_line_breach_copy", alert)]
    else:
        late = {
            **common,
            "t1": activity.notified_at,
            "t2": activity.start,
            "minutes": round(conflict["min_notice_s"] / 60),
        }
        alerts = ("late_notice_alert", {**late, "party": activity.party})
        info_template = ("late_notice_info", late)
    deadline = parse_utc(conflict["deadline"], field="deadline")
    for party in conflict["awaiting"]:
        post_standard(w, picture, alerts[0], alerts[1], [party], about, now, deadline=deadline)
    if activity.party not in conflict["awaiting"]:
        post_standard(w, picture, info_template[0], info_template[1], [activity.party], about, now)
    facilitators = sorted(
        {m.party for m in picture.mechanism.members if m.role is Role.FACILITATOR} - set(conflict["awaiting"])
    )
    for template, params in copies:
        if facilitators:
            post_standard(w, picture, template, params, facilitators, about, now)


def separation_overlaps(
    picture: Picture, activity: Activity, projected: Projected, finding: SeparationFinding
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parts of each activity's volumes within the separation minima of the other's (the notify path's
    conflict and the preview's answer alike)."""
    rules = picture.mechanism.rules
    mine = {v.id: (v, g, r) for v, (g, r) in zip(activity.volumes, projected, strict=True)}
    idx = picture.index
    part_a: list[dict[str, Any]] = []
    part_b: list[dict[str, Any]] = []
    for vid, other_vid in finding.volume_pairs:
        v, g, r = mine[vid]
        slot = idx.slot((finding.other_activity, other_vid))
        if slot is None:
            continue
        a = {"geom": g, "radius_m": r, "window": _window(v), "band": (v.floor_m, v.ceiling_m)}
        b = {
            "geom": idx.geoms[slot],
            "radius_m": float(idx.radii[slot]),
            "window": (float(idx.t0[slot]), float(idx.t1[slot])),
            "band": (float(idx.z0[slot]), float(idx.z1[slot])),
        }
        for part, me, near, volume_id in ((part_a, a, b, vid), (part_b, b, a, other_vid)):
            cut = overlap_part(
                picture.frame,
                volume_id=volume_id,
                **me,
                near_geom=near["geom"],
                near_radius_m=near["radius_m"],
                near_window=near["window"],
                near_band=near["band"],
                separation_m=rules.separation_m,
                vertical_separation_m=rules.vertical_separation_m,
            )
            if cut is not None:
                part.append(cut)
    return part_a, part_b


def _zone_overlap(
    picture: Picture, activity: Activity, projected: Projected, finding: ZoneFinding
) -> list[dict[str, Any]]:
    """The parts of an activity's volumes inside a zone."""
    zone, zgeom, zradius = picture.zones[finding.zone]
    window = (zone.valid_from.timestamp(), zone.valid_to.timestamp() if zone.valid_to else 1e12)
    parts = []
    for v, (g, r) in zip(activity.volumes, projected, strict=True):
        if v.id not in finding.volumes:
            continue
        cut = overlap_part(
            picture.frame,
            volume_id=v.id,
            geom=g,
            radius_m=r,
            window=_window(v),
            band=(v.floor_m, v.ceiling_m),
            near_geom=zgeom,
            near_radius_m=zradius,
            near_window=window,
            near_band=(zone.floor_m, zone.ceiling_m),
        )
        if cut is not None:
            parts.append(cut)
    return parts


def _situation(doc: dict[str, Any]) -> tuple[str, ...]:
    """What a strategic conflict is about, whatever the versions: the pair of activities, the activity and the
    zone, or the late activity. An amendment that leaves the situation in place re-raises the same situation."""
    kind = doc["kind"]
    if kind == ConflictKind.SEPARATION.value:
        return (kind, *sorted((doc["activity"], doc["other_activity"])))
    if kind == ConflictKind.ZONE.value:
        return (kind, doc["activity"], doc["zone"])
    return (kind, doc["activity"])


def carried_deadlines(s: Session, mechanism_id: str, activity_id: str) -> Carried:
    """The open conflicts of an activity about to be superseded that a party they await has not acknowledged:
    situation → (conflict id, deadline). Read before they are closed."""
    rows = s.scalars(
        select(ConflictRow).where(
            ConflictRow.mechanism_id == mechanism_id,
            ConflictRow.status == ConflictStatus.OPEN.value,
            ConflictRow.kind.not_in([k.value for k in queries.TACTICAL_KINDS]),
            (ConflictRow.activity == activity_id) | (ConflictRow.other_activity == activity_id),
        )
    )
    return {_situation(r.doc): (r.id, r.deadline) for r in rows}


def _band_in_zone(activity: Activity, volume_ids: Any, zone: Zone | None) -> dict[str, float]:
    """The altitude band of an activity's volumes inside a zone, clipped to the zone's own band."""
    vols = [v for v in activity.volumes if v.id in set(volume_ids)] or list(activity.volumes)
    floor, ceiling = min(v.floor_m for v in vols), max(v.ceiling_m for v in vols)
    if zone is not None:
        floor, ceiling = max(floor, zone.floor_m), min(ceiling, zone.ceiling_m)
    return {"floor_m": floor, "ceiling_m": ceiling}


def _window(v: Volume) -> tuple[float, float]:
    assert v.start is not None and v.end is not None
    return v.start.timestamp(), v.end.timestamp()
