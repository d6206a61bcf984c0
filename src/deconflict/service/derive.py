"""What the service writes itself after a party's entry, inside that entry's transaction: the conflicts a
new version of an activity raises and the ones it supersedes, the conflicts a cancelled activity or a
withdrawn zone closes, the conflicts a new zone raises against live activities, a line announced restored
when a party answers a line check after its line was reported down.

Each function appends through a :class:`~deconflict.service.writer.RecordWriter` and reads only through
its session, so the same code serves the live service and ``ledger verify``'s recomputation of a record
(:mod:`deconflict.service.recheck`), which runs it on the state the record had just before each entry and
compares what it would write with what the record holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from deconflict.detect import zone_applies, zone_findings
from deconflict.formats.docs import activity_from_doc, activity_to_doc, zone_to_doc
from deconflict.hotline import MessageType
from deconflict.model import Activity, ActivityState, Resolution, Zone
from deconflict.record.chain import EntryType
from deconflict.service import conflicts, findings, queries
from deconflict.service.findings import Finding
from deconflict.service.picture import Picture, Projected, ZoneShape, answering
from deconflict.service.posting import post_standard
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ActivityRow, MessageRow

__all__ = [
    "activities_in_zone",
    "lines_down",
    "record_cancel",
    "record_lines_restored",
    "record_version",
    "record_zone",
    "record_zone_withdrawn",
]


def record_version(
    w: RecordWriter,
    picture: Picture,
    activity: Activity,
    projected: Projected,
    found: list[Finding],
    actor: str,
    entry_type: EntryType,
    *,
    amended: bool,
) -> tuple[int, list[dict[str, Any]], list[str]]:
    """A version of an activity: its entry, the previous version's open conflicts closed as amended (an
    amendment), then one conflict with its alerts per finding. Returns (last seq, raised, closed)."""
    now = activity.notified_at
    w.append(actor, entry_type, activity_to_doc(activity), now)
    closed: list[str] = []
    carried = findings.carried_deadlines(w.session, activity.mechanism, activity.id) if amended else {}
    if amended:
        note = f"{activity.id} superseded by version {activity.version}"
        closed = conflicts.close_conflicts(w, picture, activity.id, now, Resolution.AMENDED, note, by=activity.party)
    raised = []
    for finding in found:
        doc = findings.raise_finding(w, picture, activity, projected, finding, now, carried=carried)
        raised.append(doc)
    return w.last_seq, raised, closed


def record_cancel(w: RecordWriter, activity: Activity, actor: str, picture: Picture | None) -> tuple[int, list[str]]:
    """A cancelled version of an activity and its open conflicts closed as cancelled. Returns (seq, closed)."""
    now = activity.notified_at
    w.append(actor, EntryType.ACTIVITY_CANCELLED, activity_to_doc(activity), now)
    closed = conflicts.close_conflicts(
        w, picture, activity.id, now, Resolution.CANCELLED, f"activity {activity.id} cancelled", by=activity.party
    )
    return w.last_seq, closed


def activities_in_zone(
    s: Session, picture: Picture, zone: Zone, zgeom: Any, now: datetime | None = None
) -> list[Activity]:
    """The live activities whose volumes meet the zone, and whose kind it forbids (read through ``s``); with
    ``now``, at least every one that ends after it (one that ended before raises nothing)."""
    if now is not None:
        picture.reach(now)
    t1 = zone.valid_to.timestamp() if zone.valid_to else 1e12
    found = picture.index.query(
        zgeom,
        zone.footprint.radius_m,
        zone.valid_from.timestamp(),
        t1,
        zone.floor_m,
        zone.ceiling_m,
        separation_m=0.0,
        vertical_separation_m=0.0,
    )
    out = []
    for aid in sorted({c.key[0] for c in found}):
        live = picture.activities[aid]
        probe = Activity(
            aid, zone.mechanism, live.party, live.kind, (), ActivityState.NOTIFIED, 0, zone.valid_from, zone.valid_from
        )
        if zone_applies(zone, probe):
            row = s.get(ActivityRow, (zone.mechanism, aid))
            if row is not None:
                out.append(activity_from_doc(row.doc, mechanism=zone.mechanism))
    return out


def record_zone(
    w: RecordWriter, picture: Picture, shape: ZoneShape, hits: list[Activity], actor: str, now: datetime
) -> tuple[int, list[dict[str, Any]]]:
    """A declared zone (already in ``picture.zones``) and a conflict for each live activity it forbids from
    now on (an activity that was there before now only raises nothing). Returns (last seq, raised)."""
    w.append(actor, EntryType.ZONE_DECLARED, zone_to_doc(shape.zone), now)
    raised = []
    for activity in hits:
        projected = picture.project(activity.volumes)
        for finding in zone_findings(activity, projected, [shape], picture.frame):
            if finding.end <= now:  # the activity was there before now only: nothing to prevent
                continue
            doc = findings.raise_finding(w, picture, activity, projected, finding, now)
            raised.append(doc)
    return w.last_seq, raised


def record_zone_withdrawn(
    w: RecordWriter, picture: Picture, zone_id: str, actor: str, party: str, now: datetime
) -> tuple[int, list[str]]:
    """A withdrawn zone and the conflicts it raised closed as withdrawn. Returns (last seq, closed)."""
    w.append(actor, EntryType.ZONE_WITHDRAWN, {"id": zone_id}, now)
    closed = conflicts.close_conflicts(
        w, picture, zone_id, now, Resolution.WITHDRAWN, f"zone {zone_id} withdrawn", by=party, zone=True
    )
    return w.last_seq, closed


def lines_down(s: Session, mechanism_id: str, message_ids: Iterable[str]) -> list[str]:
    """The line checks among ``message_ids`` whose line the service reported down (read through ``s``)."""
    return [
        mid
        for mid in message_ids
        if (row := s.get(MessageRow, (mechanism_id, mid))) is not None
        and row.type == MessageType.LINE_CHECK
        and queries.line_down_posted(s, mechanism_id, mid)
    ]


def record_lines_restored(w: RecordWriter, picture: Picture, party: str, checks: list[str], now: datetime) -> None:
    """Tell the other answering parties that ``party``'s line is back: one notice per line check it answered
    (by acknowledging it, or with a phrase settling it) after the service had reported the line down."""
    for check in checks:
        others = sorted(answering(picture) - {party})
        post_standard(
            w, picture, "line_restored", {"party": party, "t1": now}, others, (queries.ABOUT_MESSAGE, check), now
        )
