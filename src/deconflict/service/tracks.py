"""The tactical picture: parties' position reports, the tracks each member may see (flown on to now),
and the conflicts tracks raise and clear by themselves: a predicted loss of separation between two
parties' tracks, a track outside its party's active volumes, a track inside another party's volume.
Each such conflict's ``conflict.detected`` entry carries ``track_states``: the reported state (id, at,
lat, lon, alt_m, gs_mps, trk_deg, vs_mps) of every track involved, so the record alone shows why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deconflict.clock import iso
from deconflict.formats.docs import activity_from_doc, parse_track_reports
from deconflict.geo import WGS84
from deconflict.model import ConflictKind, Disclosure, Member, Resolution, Role, Volume
from deconflict.record.chain import EntryType
from deconflict.service import conflicts, queries
from deconflict.service.context import LIVE_STATES, SYSTEM, Context, retrying
from deconflict.service.picture import Picture, party_member
from deconflict.service.posting import post_standard
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ActivityRow, ConflictRow, TrackReportRow, TrackRow
from deconflict.tactical import Tracks, find_track_conflicts, tracks_in_volumes

__all__ = ["CLEARED_NOTES", "report_tracks", "tactical_alerts", "tactical_tick", "tracks"]

CLEARED_NOTES = {  # why a tactical conflict closed as cleared, by kind
    ConflictKind.TRACKS.value: "no loss of separation predicted any more (or a track left the picture)",
    ConflictKind.CONFORMANCE.value: "the track is back within its party's notified volumes (or left the picture)",
    ConflictKind.INTRUSION.value: "the track is out of the other party's volume (or left the picture)",
}
_FIELDS = ("lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps")


@retrying
def report_tracks(ctx: Context, *, mechanism_id: str, actor: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a batch of a party's position reports (all of them or none), then check the tactical
    picture at once. Returns how many were stored and the conflicts raised and cleared.

    Reports are kept as the tracks' latest state and history, not as record entries; the conflicts
    they raise, and their alerts, are recorded.
    """
    with ctx.exclusive(mechanism_id) as picture:
        member = party_member(picture, actor)
        now = ctx.clock()
        states = parse_track_reports(reports, now=now, stale_s=picture.mechanism.rules.track_stale_s)
        with RecordWriter(ctx, mechanism_id, picture=picture) as w:
            s = w.session
            for st in states:
                fields = {k: st[k] for k in _FIELDS}
                s.merge(
                    TrackReportRow(mechanism_id=mechanism_id, party=member.party, id=st["id"], at=st["at"], **fields)
                )
                row = s.get(TrackRow, (mechanism_id, member.party, st["id"]))
                if row is None:
                    s.add(
                        TrackRow(
                            mechanism_id=mechanism_id,
                            party=member.party,
                            id=st["id"],
                            at=st["at"],
                            received_at=now,
                            **fields,
                        )
                    )
                elif row.at <= st["at"]:  # a late report never replaces a newer state
                    for k, v in {"at": st["at"], "received_at": now, **fields}.items():
                        setattr(row, k, v)
            s.flush()
            raised, cleared = _check(w, picture, now)
        return {"stored": len(states), "raised": raised, "cleared": cleared}


def tracks(ctx: Context, mechanism_id: str, *, reader: Member) -> list[dict[str, Any]]:
    """Tracks in the picture now (reported within the stale time) that ``reader`` may see, each with
    its position extrapolated to now. A party sees its own tracks, and others' under full disclosure
    or while they are in an open conflict with its own; facilitators and observers see all."""
    picture = ctx.pictures.get(mechanism_id)
    now = ctx.clock()
    with ctx.store.read() as s:
        rows = _fresh_tracks(s, picture, now)
        involved = {
            track
            for c in s.scalars(queries.open_tactical(mechanism_id))
            if reader.party in c.parties
            for track in (c.activity, c.other_activity)
        }
    whole = reader.role is not Role.PARTY or picture.mechanism.rules.disclosure is Disclosure.FULL
    out = []
    for row, (lat, lon, alt) in zip(rows, _extrapolated(rows, now), strict=True):
        name = f"{row.party}/{row.id}"
        if whole or row.party == reader.party or name in involved:
            out.append(
                {
                    "track": name,
                    "party": row.party,
                    "id": row.id,
                    "reported_at": iso(row.at),
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "alt_m": round(alt, 1),
                    "gs_mps": row.gs_mps,
                    "trk_deg": row.trk_deg,
                    "vs_mps": row.vs_mps,
                }
            )
    return out


def tactical_tick(ctx: Context, picture: Picture, now: datetime) -> int:
    """Keep the tactical picture current between reports: predictions move on with time, and a
    track that stops reporting leaves the picture (its conflicts clear). Returns conflicts raised and cleared."""
    mid = picture.mechanism.id
    since = now - timedelta(seconds=picture.mechanism.rules.track_stale_s)
    with ctx.store.read() as s:
        busy = s.scalar(
            select(func.count()).select_from(TrackRow).where(TrackRow.mechanism_id == mid, TrackRow.at >= since)
        ) or s.scalar(select(func.count()).select_from(queries.open_tactical(mid).subquery()))
    if not busy:
        return 0
    with RecordWriter(ctx, mid, picture=picture) as w:
        raised, cleared = _check(w, picture, now)
    return len(raised) + len(cleared)


def _fresh_tracks(s: Session, picture: Picture, now: datetime) -> list[TrackRow]:
    since = now - timedelta(seconds=picture.mechanism.rules.track_stale_s)
    stmt = select(TrackRow).where(TrackRow.mechanism_id == picture.mechanism.id, TrackRow.at >= since)
    return list(s.scalars(stmt.order_by(TrackRow.party, TrackRow.id)))


def _check(w: RecordWriter, picture: Picture, now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """Raise a conflict (and its alert) for each situation that is new, clear each that has ended.

    A situation is a pair of different parties' tracks predicted to lose separation within the
    look-ahead, a track outside every active volume of its party (beyond the tolerance), or a
    track inside another party's active volume. It raises one conflict while it lasts, however
    many reports arrive, and a new one if it comes back after it ended.
    """
    s = w.session
    rules = picture.mechanism.rules
    mid = picture.mechanism.id
    rows = _fresh_tracks(s, picture, now)
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    if rows:
        positions = np.array(_extrapolated(rows, now)).reshape(-1, 3)
        names = [f"{r.party}/{r.id}" for r in rows]
        party_of = {n: r.party for n, r in zip(names, rows, strict=True)}
        lat, lon, alt = positions[:, 0], positions[:, 1], positions[:, 2]
        t = Tracks.of(
            names, lat, lon, alt, [r.gs_mps for r in rows], [r.trk_deg for r in rows], [r.vs_mps for r in rows]
        )
        table = find_track_conflicts(
            t, rpz_m=rules.separation_m, hpz_m=rules.vertical_separation_m, lookahead_s=rules.track_lookahead_s
        )
        for c in table.conflicts(t):
            if party_of[c.a] != party_of[c.b]:
                found[(ConflictKind.TRACKS.value, c.a, c.b)] = {
                    "kind": ConflictKind.TRACKS.value,
                    "activity": c.a,
                    "other_activity": c.b,
                    "parties": sorted({party_of[c.a], party_of[c.b]}),
                    "awaiting": sorted({party_of[c.a], party_of[c.b]}),
                    "distance_m": round(c.dcpa_m, 1),
                    "tcpa_s": round(c.tcpa_s, 1),
                    "t_in_s": round(c.t_in_s, 1),
                    "t_out_s": round(c.t_out_s, 1),
                    "separation_m": rules.separation_m,
                    "vertical_separation_m": rules.vertical_separation_m,
                }
        volumes = _active_volumes(s, mid, now)
        for party in sorted(set(party_of.values())):
            mine = np.array([i for i, r in enumerate(rows) if r.party == party])
            own = [(a, v) for p, a, v in volumes if p == party]
            inside, _ = tracks_in_volumes(
                lon[mine], lat[mine], alt[mine], now, [v for _, v in own], tolerance_m=rules.conformance_tolerance_m
            )
            for k in sorted(set(range(len(mine))) - set(inside.tolist())):
                name = names[mine[k]]
                found[(ConflictKind.CONFORMANCE.value, name)] = {
                    "kind": ConflictKind.CONFORMANCE.value,
                    "activity": name,
                    "parties": [party],
                    "awaiting": [party],
                    "tolerance_m": rules.conformance_tolerance_m,
                }
            theirs = [(p, a, v) for p, a, v in volumes if p != party]
            hit_t, hit_v = tracks_in_volumes(lon[mine], lat[mine], alt[mine], now, [v for _, _, v in theirs])
            for k, j in zip(hit_t.tolist(), hit_v.tolist(), strict=True):
                name, (other, activity_id, _) = names[mine[k]], theirs[j]
                found.setdefault(
                    (ConflictKind.INTRUSION.value, name, activity_id),
                    {
                        "kind": ConflictKind.INTRUSION.value,
                        "activity": name,
                        "other_activity": activity_id,
                        "other_party": other,
                        "parties": sorted({party, other}),
                        "awaiting": sorted({party, other}),
                    },
                )
    open_rows = {_situation(c): c for c in s.scalars(queries.open_tactical(mid))}
    raised = []
    for key, doc in found.items():
        if key in open_rows:
            continue
        cid = w.next_conflict_id()
        by_name = {f"{r.party}/{r.id}": r for r in rows}
        track = by_name[doc["activity"]]
        involved = [doc["activity"]] + ([doc["other_activity"]] if key[0] == ConflictKind.TRACKS.value else [])
        doc = {
            "id": cid,
            **doc,
            "party": track.party,
            "deadline": iso(now + timedelta(seconds=rules.ack_deadline_s)),
            "track_states": [_evidence(by_name[name]) for name in involved],
        }
        w.append(SYSTEM, EntryType.CONFLICT_DETECTED, doc, now)
        tactical_alerts(w, picture, doc, now)
        raised.append(doc)
    cleared = []
    for key, row in open_rows.items():
        if key not in found:
            conflicts.record_resolution(w, picture, SYSTEM, row.id, Resolution.CLEARED, CLEARED_NOTES[row.kind], now)
            cleared.append(row.id)
    return raised, cleared


def _evidence(row: TrackRow) -> dict[str, Any]:
    """A track's state as its party last reported it (not flown on): what the record keeps as the
    evidence of a tactical conflict, so the record alone shows why it was raised."""
    return {
        "track": f"{row.party}/{row.id}",
        "party": row.party,
        "id": row.id,
        "at": iso(row.at),
        **{k: getattr(row, k) for k in _FIELDS},
    }


def tactical_alerts(w: RecordWriter, picture: Picture, conflict: dict[str, Any], now: datetime) -> None:
    """The alerts of a new tactical conflict: one to each party it awaits, each acknowledged on its own."""
    ref = conflict["id"]
    if conflict["kind"] == ConflictKind.TRACKS.value:
        template = "track_alert"
        params: dict[str, Any] = {
            "ref": ref,
            "track": conflict["activity"],
            "other_track": conflict["other_activity"],
            "minutes": round(conflict["t_in_s"] / 60, 1),
            "distance": round(conflict["distance_m"] / 1000, 1),
        }
    elif conflict["kind"] == ConflictKind.CONFORMANCE.value:
        template = "conformance_alert"
        params = {"ref": ref, "track": conflict["activity"], "distance": round(conflict["tolerance_m"] / 1000, 1)}
    else:
        template = "intrusion_alert"
        params = {"ref": ref, "track": conflict["activity"], "other_ref": conflict["other_activity"]}
    for party in conflict["awaiting"]:  # one alert each: each party acknowledges, and climbs, on its own
        post_standard(w, picture, template, params, [party], (queries.ABOUT_CONFLICT, ref), now)


def _active_volumes(s: Session, mechanism_id: str, now: datetime) -> list[tuple[str, str, Volume]]:
    """(party, activity id, volume) for every volume of a live activity whose window holds ``now``."""
    rows = s.scalars(
        select(ActivityRow).where(
            ActivityRow.mechanism_id == mechanism_id,
            ActivityRow.state.in_([x.value for x in LIVE_STATES]),
            ActivityRow.start <= now,
            ActivityRow.end > now,
        )
    )
    out = []
    for r in rows:
        activity = activity_from_doc(r.doc, mechanism=mechanism_id)
        out += [(activity.party, activity.id, v) for v in activity.volumes]
    return out


def _situation(row: ConflictRow) -> tuple[str, ...]:
    """What situation an open tactical conflict stands for (see ``_check``)."""
    if row.kind == ConflictKind.CONFORMANCE.value:
        return (row.kind, row.activity)
    return (row.kind, row.activity, str(row.other_activity))


def _extrapolated(rows: list[TrackRow], now: datetime) -> list[tuple[float, float, float]]:
    """Each track's (lat, lon, altitude) at ``now``, flown on from its report at its ground speed and track."""
    if not rows:
        return []
    dt = np.array([(now - r.at).total_seconds() for r in rows])
    lon, lat, _ = WGS84.fwd(
        np.array([r.lon for r in rows]),
        np.array([r.lat for r in rows]),
        np.array([r.trk_deg for r in rows]),
        np.array([r.gs_mps for r in rows]) * dt,
    )
    alt = np.array([r.alt_m for r in rows]) + np.array([r.vs_mps for r in rows]) * dt
    return list(zip(np.asarray(lat).tolist(), np.asarray(lon).tolist(), alt.tolist(), strict=True))
