"""What each member may see: overlap parts of notices, and record entries filtered by the disclosure policy.

Under ``full`` every member sees whole notices. Under ``conflicts-only`` a party sees
its own notices whole and another party's notice only as the part that conflicts with
its own (the intersection in space, altitude and time, with the separation minima
applied); facilitators and observers see conflicts, zones and the hotline, and notices
only as those overlap parts. An entry a member may not see keeps its place in the
sequence with its hashes and without its payload, so a copy still verifies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping

from deconflict.clock import iso
from deconflict.geo import Frame
from deconflict.model import Disclosure, Member, Role

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

    return mapping(shapely.transform(geom, back))  # type: ignore[no-any-return]


def overlap_part(
    frame: Frame,
    *,
    volume_id: str,
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

    Geometries are in ``frame`` metres; windows in epoch seconds; bands in metres.
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
    return {
        "volume": volume_id,
        "geometry": _to_lonlat(frame, shapely.normalize(space)),
        "floor_m": floor,
        "ceiling_m": ceiling,
        "start": iso(datetime.fromtimestamp(start, UTC)),
        "end": iso(datetime.fromtimestamp(end, UTC)) if end < 1e11 else None,
    }


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
    """Another party's notice as ``member`` may see it under conflicts-only: the overlap parts only."""
    parts: list[dict[str, Any]] = []
    for c in conflicts:
        if c.get("activity_version") is None or not sees_conflict(member, c):
            continue
        if c["activity"] == activity["id"] and c["activity_version"] == activity["version"]:
            parts += c.get("overlap_a", [])
        elif c.get("other_activity") == activity["id"] and c.get("other_version") == activity["version"]:
            parts += c.get("overlap_b", [])
    summary = {k: activity[k] for k in ("id", "party", "kind", "state", "version", "notified_at")}
    return {**summary, "partial": True, "volumes": [], "overlap": parts}


def entry_view(entry: dict[str, Any], member: Member, disclosure: Disclosure) -> dict[str, Any]:
    """A record entry as ``member`` may receive it: whole, or without its payload (hashes kept)."""
    kind = entry["type"]
    payload = entry.get("payload")
    visible = True
    if kind.startswith("activity.") and payload is not None:
        visible = sees_whole_notices(member, disclosure, payload.get("party", ""))
    elif kind.startswith("conflict.") and payload is not None:
        visible = sees_conflict(member, payload) if kind == "conflict.detected" else True
    elif kind == "message.sent" and payload is not None:
        to, from_party = payload.get("to", ()), payload.get("from_party")
        visible = sees_message(member, to=to, sender=str(entry.get("actor")), from_party=from_party)
    if visible:
        return entry
    view = {k: v for k, v in entry.items() if k != "payload"}
    view["withheld"] = True
    return view


def payload_of(entry_payload: str) -> Any:
    return json.loads(entry_payload)
