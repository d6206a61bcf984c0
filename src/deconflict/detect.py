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

from deconflict.geo import Frame
from deconflict.model import Activity, Volume, Zone
from deconflict.volumes import SEPARATION_PAD, VolumeIndex

MAX_FRAME_RADIUS_M = 2_500_000.0
"""Largest extent measured in a single frame; wider inputs are split into overlapping frames."""
CELL_DEG = 10.0
"""Size of the cells that own volumes when an input is split into several frames."""
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


def epoch_s(t: datetime | None, default: float) -> float:
    """Seconds since 1970 (UTC) of an aware instant, or ``default`` for None."""
    return default if t is None else t.timestamp()


def from_epoch_s(s: float) -> datetime | None:
    if s <= _FAR_PAST or s >= _FAR_FUTURE:
        return None
    return datetime.fromtimestamp(s, UTC)


def frame_for_volumes(volumes: Sequence[Volume]) -> Frame:
    """The frame centred on the bounding box of all footprints."""
    b = np.array([v.footprint.bounds() for v in volumes])
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
            t0=np.array([epoch_s(v.start, _FAR_PAST) for v in volumes]),
            t1=np.array([epoch_s(v.end, _FAR_FUTURE) for v in volumes]),
            z0=np.array([v.floor_m for v in volumes], dtype=float),
            z1=np.array([v.ceiling_m for v in volumes], dtype=float),
        )

    def interval_ok(self, i: np.ndarray, j: np.ndarray, vertical_m: float) -> np.ndarray:
        return (
            (self.parties[i] != self.parties[j])
            & (self.t0[i] < self.t1[j])
            & (self.t0[j] < self.t1[i])
            & (self.z0[i] < self.z1[j] + vertical_m)
            & (self.z0[j] < self.z1[i] + vertical_m)
        )


def _results(
    volumes: Sequence[Volume], arr: _Arrays, i: np.ndarray, j: np.ndarray, dist: np.ndarray
) -> list[VolumeConflict]:
    out = []
    for a, b, d in zip(i.tolist(), j.tolist(), dist.tolist(), strict=True):
        va, vb = volumes[a], volumes[b]
        if va.id > vb.id:
            va, vb = vb, va
        gap = max(0.0, max(va.floor_m, vb.floor_m) - min(va.ceiling_m, vb.ceiling_m))
        out.append(
            VolumeConflict(
                a=va.id,
                b=vb.id,
                party_a=va.party,
                party_b=vb.party,
                distance_m=d,
                vertical_gap_m=gap,
                start=from_epoch_s(max(arr.t0[a], arr.t0[b])),
                end=from_epoch_s(min(arr.t1[a], arr.t1[b])),
                activity_a=va.activity,
                activity_b=vb.activity,
            )
        )
    out.sort(key=lambda c: (c.a, c.b))
    return out


def _pairs_in_frame(
    frame: Frame, volumes: Sequence[Volume], arr: _Arrays, members: np.ndarray, separation_m: float, vertical_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conflicting pairs (global indices, i < j) among ``members``, measured in ``frame``."""
    geoms, radii = frame.project_footprints([volumes[k].footprint for k in members])
    env = frame.envelopes(geoms, radii)
    tree = shapely.STRtree(shapely.box(env[:, 0], env[:, 1], env[:, 2], env[:, 3]))
    cx, cy = (env[:, 0] + env[:, 2]) / 2, (env[:, 1] + env[:, 3]) / 2
    pad = separation_m * frame.scale(cx, cy) * SEPARATION_PAD + 1.0
    grown = shapely.box(env[:, 0] - pad, env[:, 1] - pad, env[:, 2] + pad, env[:, 3] + pad)
    qi, ti = tree.query(grown)
    gi, gj = members[qi], members[ti]
    keep = (gi < gj) & arr.interval_ok(gi, gj, vertical_m)
    qi, ti, gi, gj = qi[keep], ti[keep], gi[keep], gj[keep]
    dist = frame.ground_distance(geoms[qi], radii[qi], geoms[ti], radii[ti]) if len(qi) else np.empty(0)
    ok = dist <= separation_m
    return gi[ok], gj[ok], dist[ok]


def _split_into_frames(volumes: Sequence[Volume], separation_m: float) -> list[tuple[Frame, np.ndarray, np.ndarray]]:
    """(frame, member indices, home mask) groups whose union finds every pair exactly once."""
    b = np.array([v.footprint.bounds() for v in volumes])
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


def find_conflicts(
    volumes: Sequence[Volume], *, separation_m: float, vertical_separation_m: float
) -> list[VolumeConflict]:
    """Every pair of volumes of different parties that conflict, ``a < b`` by id, sorted.

    Broad phase over footprint envelopes grown by the separation, interval filters on
    time and altitude, then the exact ground distance.
    """
    if len(volumes) < 2:
        return []
    arr = _Arrays.of(volumes)
    found_i, found_j, found_d = [], [], []
    for frame, members, home in _split_into_frames(volumes, separation_m):
        i, j, d = _pairs_in_frame(frame, volumes, arr, members, separation_m, vertical_separation_m)
        owned = home[i]
        found_i.append(i[owned])
        found_j.append(j[owned])
        found_d.append(d[owned])
    return _results(volumes, arr, np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d))


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
    return _results(volumes, arr, np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d))


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


def volume_window(volume: Volume) -> tuple[float, float, float, float]:
    """(start, end) in epoch seconds and (floor, ceiling) in metres."""
    return volume.start.timestamp(), volume.end.timestamp(), volume.floor_m, volume.ceiling_m


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
            starts.append(max(volume.start.timestamp(), index.t0[slot]))
            ends.append(min(volume.end.timestamp(), index.t1[slot]))
            floors.append(max(volume.floor_m, index.z0[slot]))
            ceilings.append(min(volume.ceiling_m, index.z1[slot]))
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
            start = max(min(v.start for v in hit), zone.valid_from)
            end = max(v.end for v in hit)
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
