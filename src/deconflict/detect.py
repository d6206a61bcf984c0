"""Strategic detection: volumes × volumes of other parties, activities × zones, and short notice.

Pure functions over domain types and frame geometries; no storage, no clock.
Two volumes conflict when their parties differ, their windows overlap
(``a.start < b.end and b.start < a.end``), their bands come within the vertical
separation V (``a.floor < b.ceiling + V and b.floor < a.ceiling + V``) and their
footprints are at most the horizontal separation M apart on the ground.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import shapely

from deconflict.geo import Frame, footprint_bounds
from deconflict.model import Activity, Volume, Zone
from deconflict.volumes import SEPARATION_PAD, VolumeIndex

MAX_FRAME_RADIUS_M = 2_500_000.0
"""Largest extent measured in a single frame; wider inputs are split into overlapping frames."""
CELL_DEG = 10.0
"""Size of the cells that own volumes when an input is split into several frames."""
SWEEP_CHUNK = 2048
"""Volumes (in order of start time) whose broad phase runs together; bounds the memory of a sweep step."""
_FAR_PAST = -1e12
_FAR_FUTURE = 1e12


@dataclass(frozen=True)
class VolumeConflict:
    """Two volumes of different parties closer than the separation minima."""

    a: str
    b: str
    party_a: str
    party_b: str
    distance_m: float
    """Ground distance between the footprints, 0 when they touch or overlap."""
    vertical_gap_m: float
    """Gap between the altitude bands, 0 when they overlap."""
    start: datetime | None
    """Start of the time overlap (None when neither volume has a start)."""
    end: datetime | None
    activity_a: str | None = None
    activity_b: str | None = None


@dataclass(frozen=True)
class ConflictTable:
    """Volume conflicts as columns, one row per pair, sorted by (id of a, id of b), id a < id b.

    ``a`` and ``b`` index the volumes the table was found in; times are epoch seconds
    (``start_s`` at or below -1e12 means unbounded, ``end_s`` at or above 1e12 likewise).
    ``start_from`` / ``end_from`` index the volume whose start / end bounds the overlap.
    """

    a: np.ndarray
    b: np.ndarray
    distance_m: np.ndarray
    """Ground distance between the footprints, metres, 0 when they touch or overlap."""
    vertical_gap_m: np.ndarray
    """Gap between the altitude bands, metres, 0 when they overlap."""
    start_s: np.ndarray
    end_s: np.ndarray
    start_from: np.ndarray
    end_from: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def conflicts(self, volumes: Sequence[Volume]) -> list[VolumeConflict]:
        """The rows as VolumeConflict objects."""
        rows = zip(
            self.a.tolist(),
            self.b.tolist(),
            self.distance_m.tolist(),
            self.vertical_gap_m.tolist(),
            self.start_s.tolist(),
            self.end_s.tolist(),
            strict=True,
        )
        out = []
        for a, b, d, gap, t0, t1 in rows:
            va, vb = volumes[a], volumes[b]
            out.append(
                VolumeConflict(
                    a=va.id,
                    b=vb.id,
                    party_a=va.party,
                    party_b=vb.party,
                    distance_m=d,
                    vertical_gap_m=gap,
                    start=from_epoch_s(t0),
                    end=from_epoch_s(t1),
                    activity_a=va.activity,
                    activity_b=vb.activity,
                )
            )
        return out


def epoch_s(t: datetime | None, default: float) -> float:
    """Seconds since 1970 (UTC) of an aware instant, or ``default`` for None."""
    return default if t is None else t.timestamp()


def from_epoch_s(s: float) -> datetime | None:
    if s <= _FAR_PAST or s >= _FAR_FUTURE:
        return None
    return datetime.fromtimestamp(s, UTC)


def frame_for_volumes(volumes: Sequence[Volume]) -> Frame:
    """The frame centred on the bounding box of all footprints."""
    b = footprint_bounds([v.footprint for v in volumes])
    return Frame.for_bounds((b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()))


@dataclass
class _Arrays:
    ids: list[str]
    parties: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    z0: np.ndarray
    z1: np.ndarray

    @classmethod
    def of(cls, volumes: Sequence[Volume]) -> _Arrays:
        codes: dict[str, int] = {}
        return cls(
            ids=[v.id for v in volumes],
            parties=np.array([codes.setdefault(v.party, len(codes)) for v in volumes], dtype=np.int32),
            t0=np.array([epoch_s(v.start, _FAR_PAST) for v in volumes], dtype=float),
            t1=np.array([epoch_s(v.end, _FAR_FUTURE) for v in volumes], dtype=float),
            z0=np.array([v.floor_m for v in volumes], dtype=float),
            z1=np.array([v.ceiling_m for v in volumes], dtype=float),
        )

    def interval_ok(self, i: np.ndarray, j: np.ndarray, vertical_m: float) -> np.ndarray:
        ok: np.ndarray = (
            (self.parties[i] != self.parties[j])
            & (self.t0[i] < self.t1[j])
            & (self.t0[j] < self.t1[i])
            & (self.z0[i] < self.z1[j] + vertical_m)
            & (self.z0[j] < self.z1[i] + vertical_m)
        )
        return ok


def _table(arr: _Arrays, i: np.ndarray, j: np.ndarray, dist: np.ndarray) -> ConflictTable:
    """Pairs (any order) with their distances as a ConflictTable: id a < id b, sorted by ids."""
    n = len(arr.ids)
    rank = np.empty(n, dtype=np.int64)
    rank[sorted(range(n), key=arr.ids.__getitem__)] = np.arange(n)
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    swap = rank[i] > rank[j]
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    order = np.lexsort((rank[b], rank[a]))
    return _table_sorted(arr, a[order], b[order], np.asarray(dist, dtype=float)[order])


def _table_sorted(arr: _Arrays, a: np.ndarray, b: np.ndarray, dist: np.ndarray) -> ConflictTable:
    """Pairs already in the table's order (id a < id b, sorted) with their distances as a ConflictTable."""
    start_from = np.where(arr.t0[a] >= arr.t0[b], a, b)
    end_from = np.where(arr.t1[a] <= arr.t1[b], a, b)
    return ConflictTable(
        a=a,
        b=b,
        distance_m=dist,
        vertical_gap_m=np.maximum(0.0, np.maximum(arr.z0[a], arr.z0[b]) - np.minimum(arr.z1[a], arr.z1[b])),
        start_s=arr.t0[start_from],
        end_s=arr.t1[end_from],
        start_from=start_from,
        end_from=end_from,
    )


def _boxes(b: np.ndarray) -> np.ndarray:
    return shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])


def _pairs_in_frame(
    frame: Frame, volumes: Sequence[Volume], arr: _Arrays, members: np.ndarray, separation_m: float, vertical_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conflicting pairs (global indices, i < j) among ``members``, measured in ``frame``.

    A sweep in order of start time: each volume is paired only with those that started
    before it (ties by index) and have not ended when the current chunk of ``SWEEP_CHUNK``
    volumes starts, so every pair that overlaps in time is met exactly once, from the
    volume that starts later, and pairs far apart in time are never formed.
    """
    geoms, radii = frame.project_footprints([volumes[k].footprint for k in members])
    env = frame.envelopes(geoms, radii)
    cx, cy = (env[:, 0] + env[:, 2]) / 2, (env[:, 1] + env[:, 3]) / 2
    pad = separation_m * frame.scale(cx, cy) * SEPARATION_PAD + 1.0
    grown = env + np.column_stack([-pad, -pad, pad, pad])
    t0, t1 = arr.t0[members], arr.t1[members]
    order = np.lexsort((members, t0))
    rank = np.empty(len(members), dtype=np.int64)
    rank[order] = np.arange(len(members))
    found_i, found_j, found_d = [], [], []
    for lo in range(0, len(members), SWEEP_CHUNK):
        homes = order[lo : lo + SWEEP_CHUNK]
        earlier = order[: lo + len(homes)]
        cand = earlier[t1[earlier] > t0[homes[0]]]
        tree = shapely.STRtree(_boxes(env[cand]))
        qi, ti = tree.query(_boxes(grown[homes]))
        li, lj = homes[qi], cand[ti]
        keep = rank[lj] < rank[li]
        li, lj = li[keep], lj[keep]
        gi, gj = members[li], members[lj]
        keep = arr.interval_ok(gi, gj, vertical_m)
        li, lj, gi, gj = li[keep], lj[keep], gi[keep], gj[keep]
        if len(li) == 0:
            continue
        swap = gi > gj  # measure from the lower global index, as every caller expects
        li, lj = np.where(swap, lj, li), np.where(swap, li, lj)
        gi, gj = np.where(swap, gj, gi), np.where(swap, gi, gj)
        dist = frame.ground_distance(geoms[li], radii[li], geoms[lj], radii[lj])
        ok = dist <= separation_m
        found_i.append(gi[ok])
        found_j.append(gj[ok])
        found_d.append(dist[ok])
    if not found_i:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


def _split_into_frames(volumes: Sequence[Volume], separation_m: float) -> list[tuple[Frame, np.ndarray, np.ndarray]]:
    """(frame, member indices, home mask) groups whose union finds every pair exactly once."""
    b = footprint_bounds([v.footprint for v in volumes])
    overall = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    whole = Frame.for_bounds(overall)
    everyone = np.arange(len(volumes))
    if whole.radius_m <= MAX_FRAME_RADIUS_M:
        return [(whole, everyone, np.ones(len(volumes), dtype=bool))]
    clat = (b[:, 1] + b[:, 3]) / 2
    clon = (b[:, 0] + b[:, 2]) / 2
    cells = np.floor(clat / CELL_DEG).astype(int) * 1000 + np.floor(clon / CELL_DEG).astype(int)
    dlat = separation_m / 110_000.0 * 1.01
    groups = []
    for cell in np.unique(cells):
        home = cells == cell
        hb = b[home]
        lat_min, lat_max = hb[:, 1].min() - dlat, hb[:, 3].max() + dlat
        coslat = np.cos(np.radians(min(89.0, max(abs(lat_min), abs(lat_max)))))
        dlon = separation_m / (111_000.0 * coslat) * 1.01
        lon_min, lon_max = hb[:, 0].min() - dlon, hb[:, 2].max() + dlon
        near = (b[:, 0] <= lon_max) & (lon_min <= b[:, 2]) & (b[:, 1] <= lat_max) & (lat_min <= b[:, 3])
        members = np.flatnonzero(near)
        mb = b[members]
        frame = Frame.for_bounds((mb[:, 0].min(), mb[:, 1].min(), mb[:, 2].max(), mb[:, 3].max()))
        groups.append((frame, members, home))
    return groups


def find_conflict_table(
    volumes: Sequence[Volume], *, separation_m: float, vertical_separation_m: float
) -> ConflictTable:
    """``find_conflicts`` as columns: what ``deconflict check`` writes, without an object per pair."""
    arr = _Arrays.of(volumes)
    if len(volumes) < 2:
        return _table(arr, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
    found_i, found_j, found_d = [], [], []
    for frame, members, home in _split_into_frames(volumes, separation_m):
        i, j, d = _pairs_in_frame(frame, volumes, arr, members, separation_m, vertical_separation_m)
        owned = home[i]
        found_i.append(i[owned])
        found_j.append(j[owned])
        found_d.append(d[owned])
    return _table(arr, np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d))


def find_conflicts(
    volumes: Sequence[Volume], *, separation_m: float, vertical_separation_m: float
) -> list[VolumeConflict]:
    """Every pair of volumes of different parties that conflict, ``a < b`` by id, sorted.

    Broad phase over footprint envelopes grown by the separation, interval filters on
    time and altitude, then the exact ground distance.
    """
    table = find_conflict_table(volumes, separation_m=separation_m, vertical_separation_m=vertical_separation_m)
    return table.conflicts(volumes)


def brute_force_conflicts(
    volumes: Sequence[Volume], *, separation_m: float, vertical_separation_m: float, frame: Frame | None = None
) -> list[VolumeConflict]:
    """The O(N²) reference: every pair tested with the same exact measure, no index."""
    if len(volumes) < 2:
        return []
    frame = frame or frame_for_volumes(volumes)
    arr = _Arrays.of(volumes)
    geoms, radii = frame.project_footprints([v.footprint for v in volumes])
    n = len(volumes)
    found_i, found_j, found_d = [], [], []
    for a in range(n - 1):
        j = np.arange(a + 1, n)
        i = np.full(len(j), a)
        ok = arr.interval_ok(i, j, vertical_separation_m)
        j = j[ok]
        if len(j) == 0:
            continue
        d = frame.ground_distance(geoms[a], radii[a], geoms[j], radii[j])
        keep = d <= separation_m
        found_i.append(np.full(int(keep.sum()), a))
        found_j.append(j[keep])
        found_d.append(d[keep])
    if not found_i:
        return []
    return _table(arr, np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)).conflicts(volumes)


# --- activity-level detection used by the service -------------------------------------------


@dataclass(frozen=True)
class SeparationFinding:
    """A new activity's volumes come within separation of another party's activity."""

    other_activity: str
    other_party: str
    distance_m: float
    start: datetime
    end: datetime
    floor_m: float
    ceiling_m: float
    volume_pairs: tuple[tuple[str, str], ...]
    """(this activity's volume id, the other's volume id) for each conflicting pair."""


@dataclass(frozen=True)
class ZoneFinding:
    """An activity's volume inside a zone that forbids its kind."""

    zone: str
    zone_owner: str
    start: datetime
    end: datetime
    volumes: tuple[str, ...]


@dataclass(frozen=True)
class ShortNotice:
    """A notice given later than the minimum lead time before the activity starts."""

    lead_time_s: float
    min_notice_s: float


def volume_bounds(volume: Volume) -> tuple[datetime, datetime]:
    """A volume's (start, end); raises ``ValueError`` if unbounded (allowed only in ``deconflict check`` input)."""
    if volume.start is None or volume.end is None:
        raise ValueError(f"volume {volume.id!r} has no bounded time window")
    return volume.start, volume.end


def volume_window(volume: Volume) -> tuple[float, float, float, float]:
    """(start, end) in epoch seconds and (floor, ceiling) in metres; raises ``ValueError`` if unbounded."""
    start, end = volume_bounds(volume)
    return start.timestamp(), end.timestamp(), volume.floor_m, volume.ceiling_m


def separation_findings(
    activity: Activity,
    projected: Sequence[tuple[object, float]],
    index: VolumeIndex,
    *,
    separation_m: float,
    vertical_separation_m: float,
) -> list[SeparationFinding]:
    """Conflicts of an activity (its volumes projected into the index's frame) with other parties'."""
    by_other: dict[str, list[tuple[Volume, int, float]]] = {}
    other_party: dict[str, str] = {}
    for volume, (geom, radius) in zip(activity.volumes, projected, strict=True):
        t0, t1, z0, z1 = volume_window(volume)
        for c in index.query(
            geom,
            radius,
            t0,
            t1,
            z0,
            z1,
            separation_m=separation_m,
            vertical_separation_m=vertical_separation_m,
            exclude_party=activity.party,
        ):
            other_id, _ = c.key
            by_other.setdefault(other_id, []).append((volume, c.slot, c.distance_m))
            other_party[other_id] = c.party
    findings = []
    for other_id, hits in sorted(by_other.items()):
        starts, ends, floors, ceilings = [], [], [], []
        for volume, slot, _ in hits:
            t0, t1, z0, z1 = volume_window(volume)
            starts.append(max(t0, index.t0[slot]))
            ends.append(min(t1, index.t1[slot]))
            floors.append(max(z0, index.z0[slot]))
            ceilings.append(min(z1, index.z1[slot]))
        lo, hi = float(min(floors)), float(max(ceilings))
        findings.append(
            SeparationFinding(
                other_activity=other_id,
                other_party=other_party[other_id],
                distance_m=min(h[2] for h in hits),
                start=datetime.fromtimestamp(min(starts), UTC),
                end=datetime.fromtimestamp(max(ends), UTC),
                floor_m=min(lo, hi),
                ceiling_m=max(lo, hi),
                volume_pairs=tuple(sorted((v.id, index.keys[s][1]) for v, s, _ in hits)),
            )
        )
    return findings


def zone_applies(zone: Zone, activity: Activity) -> bool:
    """Whether a zone forbids this activity's kind for this activity's party."""
    return activity.kind in zone.forbids and (zone.applies_to_owner or zone.owner != activity.party)


def zone_findings(
    activity: Activity,
    projected: Sequence[tuple[object, float]],
    zones: Sequence[tuple[Zone, object, float]],
    frame: Frame,
) -> list[ZoneFinding]:
    """Zones (with their frame geometry and radius) that forbid this activity where and when it is."""
    findings = []
    for zone, zgeom, zradius in zones:
        if not zone_applies(zone, activity):
            continue
        z_t0 = zone.valid_from.timestamp()
        z_t1 = epoch_s(zone.valid_to, _FAR_FUTURE)
        hit: list[Volume] = []
        for volume, (geom, radius) in zip(activity.volumes, projected, strict=True):
            t0, t1, z0, z1 = volume_window(volume)
            if not (t0 < z_t1 and z_t0 < t1 and z0 < zone.ceiling_m and zone.floor_m < z1):
                continue
            if frame.ground_distance(geom, radius, zgeom, zradius)[0] <= 0.0:
                hit.append(volume)
        if hit:
            windows = [volume_bounds(v) for v in hit]
            start = max(min(s for s, _ in windows), zone.valid_from)
            end = max(e for _, e in windows)
            if zone.valid_to is not None:
                end = min(end, zone.valid_to)
            findings.append(ZoneFinding(zone.id, zone.owner, start, end, tuple(v.id for v in hit)))
    return findings


def short_notice(activity: Activity, *, min_notice_s: float) -> ShortNotice | None:
    """The measured lead time when this version was notified later than the minimum notice."""
    lead = (activity.start - activity.notified_at).total_seconds()
    if lead < min_notice_s:
        return ShortNotice(lead_time_s=lead, min_notice_s=min_notice_s)
    return None
