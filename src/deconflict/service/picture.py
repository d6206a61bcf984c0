"""The live picture of each mechanism, kept in memory per process: its members, frame, area, volume
index, zones and live activities (named records), the record's head it reflects, and the counters that
number new conflicts and messages; the cache of pictures; member lookups.

A picture follows the committed state: :class:`~deconflict.service.writer.RecordWriter` moves it on after
each commit, and :meth:`Pictures.fresh` rebuilds it when another process has written to the record.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deconflict.errors import Forbidden, InvalidInput, NotFound
from deconflict.formats.docs import activity_from_doc, zone_from_doc
from deconflict.geo import Frame
from deconflict.mechanisms import area_in_frame, beyond_area, mechanism_from_record
from deconflict.model import Activity, ActivityKind, Mechanism, Member, Role, Volume, Zone
from deconflict.record import chain
from deconflict.record.chain import EntryType
from deconflict.service.context import LIVE_STATES
from deconflict.store import Store, ledger
from deconflict.store.schema import (
    ActivityRow,
    CheckpointRow,
    ConflictRow,
    LedgerEntry,
    MechanismRow,
    MemberRow,
    MessageRow,
    ZoneRow,
)
from deconflict.volumes import VolumeIndex

__all__ = [
    "FRESHNESS_S",
    "LiveActivity",
    "Picture",
    "Pictures",
    "Projected",
    "ZoneShape",
    "answering",
    "any_member",
    "build_picture",
    "index_live",
    "catch_up",
    "party_member",
]

INDEX_REACH_S = 7 * 24 * 3600.0
"""How far before its build's now a picture's index reaches: the live activities that ended earlier are left
out (:attr:`Picture.indexed_after`). A mechanism that has run for a year has notified tens of thousands, and
nothing sets them ended: indexing every one made the first write after each start take seconds (4.7 s at
20,000 notices), growing with the record. A week covers any step back of the clock short of a week; a
larger one reads the rest first (:meth:`Picture.reach`). It holds because a finding that ends at or before
the time it is judged at raises nothing (``findings.findings``, ``derive.record_zone``): a change there must
change this bound too."""
FRESHNESS_S = 1.0
"""How often a write compares the stored head of the record with the in-memory picture."""

Projected = list[tuple[Any, float]]
"""Volumes' footprints in the mechanism's frame: (geometry, radius in metres) each."""


class ZoneShape(NamedTuple):
    """A zone in force with its footprint in the mechanism's frame (what detection compares against)."""

    zone: Zone
    geom: Any
    radius_m: float


@dataclass(frozen=True, slots=True)
class LiveActivity:
    """What the picture keeps of a live activity: enough to find it in the index and name its version."""

    party: str
    kind: ActivityKind
    volume_ids: tuple[str, ...]
    version: int


@dataclass
class Picture:
    """A mechanism's in-memory picture: its frame, volume index, zones and live activities."""

    mechanism: Mechanism
    frame: Frame
    allowed_area: Any
    """The area of responsibility (with its margin) in the frame, prepared for ``covers``."""
    index: VolumeIndex
    zones: dict[str, ZoneShape] = field(default_factory=dict)
    activities: dict[str, LiveActivity] = field(default_factory=dict)
    """activity id → what the index holds of it, for live activities."""
    head: chain.Head = chain.Head(0, chain.GENESIS_HASH)
    """The record's head this picture reflects."""
    last_at: datetime | None = None
    """The time of the head's entry, or of the newest checkpoint when later (None: neither): the record's
    times never go back below it."""
    activity_ids: dict[str, str] = field(default_factory=dict)
    """Every activity id ever notified → its party."""
    party_counts: Counter[str] = field(default_factory=Counter)
    """How many activities each party has notified."""
    conflict_count: int = 0
    message_count: int = 0
    checked_at: float = 0.0
    """When (monotonic seconds) the stored head was last compared with ``head``."""
    checkpointed_at: datetime | None = None
    """When, by the service's clock, the last checkpoint was signed (None: not since this picture was built)."""
    indexed_after: datetime | None = None
    """The index holds the live activities that end after this instant (None: every live activity). Those that
    ended before cannot conflict with a notice made after it (a finding's window ends by the other
    activity's end, and one wholly past raises nothing), so a picture built after months of operation leaves
    them out: :meth:`reach` puts them in first when a notice or zone is judged at an earlier instant."""
    older: Callable[[Picture], None] | None = None
    """Reads the live activities the index left out (``indexed_after``) into it (set by :class:`Pictures`)."""

    @property
    def id(self) -> str:
        return self.mechanism.id

    def project(self, volumes: tuple[Volume, ...]) -> Projected:
        """The volumes' footprints in the frame."""
        geoms, radii = self.frame.project_footprints([v.footprint for v in volumes])
        return list(zip(geoms, radii.tolist(), strict=True))

    def project_in_area(self, volumes: tuple[Volume, ...]) -> Projected:
        """The volumes' footprints in the frame, each checked to lie within the area of responsibility.

        Raises:
            InvalidInput: a footprint extends outside the area (the message names the volume).
        """
        projected = self.project(volumes)
        for n, (v, (geom, radius)) in enumerate(zip(volumes, projected, strict=True)):
            shape = shapely.buffer(geom, radius) if radius > 0 else geom
            if shape.is_empty:  # a circle too small for a ring of distinct points (5e-324 m): its centre
                shape = geom
            if not self.allowed_area.covers(shape):
                raise InvalidInput(
                    f"volume {n + 1} (id {v.id!r}) geometry: the footprint extends outside the mechanism's area of "
                    f"responsibility, {self.mechanism.area_name}{beyond_area(self.mechanism.rules.area_margin_m)}",
                    field="geometry",
                )
        return projected

    def index_activity(self, activity: Activity, projected: Projected) -> None:
        """Put a live activity's volumes in the index."""
        vols = activity.volumes
        self.index.add(
            [(activity.id, v.id) for v in vols],
            [activity.party] * len(vols),
            np.array([g for g, _ in projected], dtype=object),
            np.array([r for _, r in projected]),
            np.array([v.start.timestamp() for v in vols]),  # type: ignore[union-attr]
            np.array([v.end.timestamp() for v in vols]),  # type: ignore[union-attr]
            np.array([v.floor_m for v in vols]),
            np.array([v.ceiling_m for v in vols]),
        )
        self.activities[activity.id] = LiveActivity(
            activity.party, activity.kind, tuple(v.id for v in vols), activity.version
        )

    def reach(self, at: datetime) -> None:
        """Make sure the index holds every live activity that may conflict with what is judged at ``at`` (a
        notice notified then, a zone declared then): those ending after ``at``. Only a clock that stepped
        back behind :attr:`indexed_after` makes it read the ones left out."""
        if self.indexed_after is None or at >= self.indexed_after:
            return
        if self.older is None:
            raise RuntimeError("this picture's index leaves activities out and cannot read them")
        self.older(self)
        self.indexed_after = None

    def unindex_activity(self, activity_id: str) -> None:
        """Take an activity's volumes out of the index (nothing when it is not there)."""
        entry = self.activities.pop(activity_id, None)
        if entry is not None:
            for vid in entry.volume_ids:
                self.index.remove((activity_id, vid))

    def next_activity_id(self, party: str, pending: Mapping[str, str] | None = None) -> str:
        """The next free id of the form ``<party>-0001``; ``pending``: the activities notified in a transaction
        not committed yet (id → party), counted as if it were."""
        pending = pending or {}
        candidate = self.party_counts[party] + 1 + sum(1 for p in pending.values() if p == party)
        while (name := f"{party}-{candidate:04d}") in self.activity_ids or name in pending:
            candidate += 1
        return name


def any_member(picture: Picture, actor: str) -> Member:
    """The member ``actor`` of the picture's mechanism.

    Raises:
        NotFound: no such member.
    """
    for m in picture.mechanism.members:
        if m.id == actor:
            return m
    raise NotFound(f"member {actor!r} is not a member of mechanism {picture.mechanism.id!r}", field="member")


def party_member(picture: Picture, actor: str) -> Member:
    """The member ``actor``, who must act for a party.

    Raises:
        NotFound: no such member.
        Forbidden: the member is a facilitator or an observer.
    """
    member = any_member(picture, actor)
    if member.role is not Role.PARTY:
        article = "an" if member.role.value[0] in "aeiou" else "a"
        raise Forbidden(f"member {actor!r} is {article} {member.role.value}; only a party may do this")
    return member


def answering(picture: Picture) -> set[str]:
    """Parties and facilitators: the members who answer the hotline (observers only read it)."""
    return {m.party for m in picture.mechanism.members if m.role is not Role.OBSERVER}


class Pictures:
    """The pictures of this process, one per mechanism, built from the store on first use."""

    def __init__(
        self,
        store: Store,
        lock: threading.RLock,
        clock: Callable[[], datetime] | None = None,
        *,
        on_dropped: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._lock = lock
        self._clock = clock
        """The service's clock: a picture indexes the activities that end after :data:`INDEX_REACH_S` before
        it (None: every live activity)."""
        self._cache: dict[str, Picture] = {}
        self._on_dropped = on_dropped
        """Told a mechanism's id when :meth:`fresh` finds its record no longer continues the picture's (written
        over after a restore or a failover, or changed in what only a rebuild reads): what else this process
        keeps of the record is let go with the picture."""

    def peek(self, mechanism_id: str) -> Picture | None:
        """The cached picture, if there is one (never reads the store)."""
        return self._cache.get(mechanism_id)

    def drop(self, mechanism_id: str) -> None:
        """Forget a mechanism's picture: the next use rebuilds it."""
        self._cache.pop(mechanism_id, None)

    def expire(self, mechanism_id: str) -> None:
        """Make the next :meth:`fresh` read the stored head (another process may have written: the gate
        was just taken, or another process said so)."""
        picture = self._cache.get(mechanism_id)
        if picture is not None:
            picture.checked_at = float("-inf")

    def clear(self) -> None:
        """Forget every picture (another process appended: each is suspect)."""
        self._cache.clear()

    def fresh(self, mechanism_id: str) -> Picture:
        """The mechanism's picture, rebuilt if another process has written to its record since.

        The stored head is compared at most every FRESHNESS_S, or at the next use after :meth:`expire`
        (a write takes the record's gate, then expires its picture: see ``retrying``). A picture behind the
        record catches up on the entries it missed (:func:`catch_up`), or is rebuilt when they change what
        only a rebuild reads (members, zones).
        """
        picture = self.get(mechanism_id)
        if time.monotonic() - picture.checked_at < FRESHNESS_S:
            return picture
        with self._store.engine.connect() as conn:  # a connection, not a session: a third of the cost
            current = ledger.read_head(conn, mechanism_id)
        if current != picture.head:
            with self._store.read() as s:
                if not catch_up(s, picture, current):
                    self._cache.pop(mechanism_id, None)
                    if self._on_dropped is not None:
                        self._on_dropped(mechanism_id)
        picture = self.get(mechanism_id)
        picture.checked_at = time.monotonic()
        return picture

    def get(self, mechanism_id: str) -> Picture:
        """The mechanism's picture, built from the store when not cached.

        Raises:
            NotFound: the mechanism does not exist.
        """
        picture = self._cache.get(mechanism_id)
        if picture is not None:
            return picture
        after = self._clock() - timedelta(seconds=INDEX_REACH_S) if self._clock is not None else None
        with self._lock, self._store.read() as s:
            picture = build_picture(s, mechanism_id, after=after)
            picture.older = self._index_older
            self._cache[mechanism_id] = picture
            return picture

    def _index_older(self, picture: Picture) -> None:
        """Put the live activities ``picture``'s index left out into it."""
        assert picture.indexed_after is not None
        with self._store.read() as s:
            index_live(s, picture, ActivityRow.end <= picture.indexed_after)


def build_picture(s: Session, mechanism_id: str, *, after: datetime | None = None) -> Picture:
    """A mechanism's picture built from the tables read through ``s`` (the live store, or the tables
    ``ledger verify`` rebuilds from a record to recompute what the service should have written); ``after``:
    its index holds only the live activities that end after it (:attr:`Picture.indexed_after`).

    Raises:
        NotFound: the mechanism does not exist.
    """
    row = s.get(MechanismRow, mechanism_id)
    if row is None:
        raise NotFound(f"mechanism {mechanism_id!r} does not exist", field="mechanism")
    base = mechanism_from_record(row.doc)
    members = tuple(
        Member(id=m.id, name=m.name, role=Role(m.role), party=m.party, language=m.language)
        for m in s.scalars(select(MemberRow).where(MemberRow.mechanism_id == mechanism_id).order_by(MemberRow.id))
    )
    zone_rows = list(  # in the order they were declared, as a picture updated in place holds them: a notice that
        # breaks several is given their conflicts in this order, and `ledger verify` expects the order it keeps
        s.scalars(
            select(ZoneRow)
            .where(ZoneRow.mechanism_id == mechanism_id, ZoneRow.withdrawn_at.is_(None))
            .order_by(ZoneRow.declared_at, ZoneRow.id)
        )
    )
    zones = tuple(zone_from_doc(z.doc, mechanism=mechanism_id) for z in zone_rows)
    mechanism = Mechanism(
        id=base.id,
        name=base.name,
        area=base.area,
        area_name=base.area_name,
        rules=base.rules,
        members=members,
        zones=zones,
    )
    frame, allowed = area_in_frame(mechanism)
    picture = Picture(mechanism=mechanism, frame=frame, allowed_area=allowed, index=VolumeIndex(frame))
    for z in zones:
        picture.zones[z.id] = ZoneShape(z, frame.project(z.footprint.geometry), z.footprint.radius_m)
    picture.indexed_after = after
    index_live(s, picture, None if after is None else ActivityRow.end > after)
    picture.head = ledger.read_head(s, mechanism_id)
    last = s.scalar(
        select(LedgerEntry.at).where(LedgerEntry.mechanism_id == mechanism_id, LedgerEntry.seq == picture.head.seq)
    )
    signed = s.scalar(  # the newest checkpoint's time: what follows it is later
        select(CheckpointRow.at)
        .where(CheckpointRow.mechanism_id == mechanism_id)
        .order_by(CheckpointRow.seq.desc())
        .limit(1)
    )
    picture.last_at = signed if signed is not None and (last is None or signed > last) else last
    picture.activity_ids = {
        str(aid): str(party)
        for aid, party in s.execute(
            select(ActivityRow.id, ActivityRow.party).where(ActivityRow.mechanism_id == mechanism_id)
        ).all()
    }
    picture.party_counts = Counter(picture.activity_ids.values())
    _count(s, picture)
    return picture


def index_live(s: Session, picture: Picture, where: Any) -> None:
    """Index the live activities that meet ``where`` (None: all), as read through ``s``, but for those the
    index holds already (a version this process wrote or caught up on since)."""
    mid = picture.mechanism.id
    stmt = select(ActivityRow).where(
        ActivityRow.mechanism_id == mid, ActivityRow.state.in_([x.value for x in LIVE_STATES])
    )
    for r in s.scalars(stmt if where is None else stmt.where(where)):
        if r.id in picture.activities:
            continue
        activity = activity_from_doc(r.doc, mechanism=mid)
        picture.index_activity(activity, picture.project(activity.volumes))
    picture.index.rebuild()


def _count(s: Session, picture: Picture) -> None:
    """The picture's counts of conflicts and messages as stored (they number the next ones)."""
    mid = picture.mechanism.id
    picture.message_count = (
        s.scalar(select(func.count()).select_from(MessageRow).where(MessageRow.mechanism_id == mid)) or 0
    )
    picture.conflict_count = (
        s.scalar(select(func.count()).select_from(ConflictRow).where(ConflictRow.mechanism_id == mid)) or 0
    )


REBUILT_BY = frozenset(
    {EntryType.MECHANISM_DECLARED, EntryType.MEMBER_ADDED, EntryType.ZONE_DECLARED, EntryType.ZONE_WITHDRAWN}
)
"""Entries whose effect on a picture only a rebuild reads (the members and zones it was built with)."""
TOUCHES_ACTIVITIES = frozenset({EntryType.ACTIVITY_NOTIFIED, EntryType.ACTIVITY_AMENDED, EntryType.ACTIVITY_CANCELLED})


def catch_up(s: Session, picture: Picture, current: chain.Head) -> bool:
    """Move ``picture`` on to the record's ``current`` head from the entries it has not seen (another process
    wrote them): the activities they notified, amended or cancelled are read again and re-indexed, the
    conflicts and messages counted again, the head and its time taken. Returns False, leaving the picture
    as it was, when a rebuild is needed instead: an entry changes the members or zones, or the record does
    not continue from the picture's head (never expected: the caller rebuilds)."""
    mid = picture.mechanism.id
    t = LedgerEntry.__table__
    rows = s.execute(
        select(t.c.seq, t.c.type, t.c.payload, t.c.prev_hash, t.c.hash, t.c.at)
        .where(t.c.mechanism_id == mid, t.c.seq > picture.head.seq, t.c.seq <= current.seq)
        .order_by(t.c.seq)
    ).all()
    if not rows or rows[0].prev_hash != picture.head.hash or rows[-1].hash != current.hash:
        return False
    touched: list[str] = []
    for row in rows:
        kind = EntryType(row.type)
        if kind in REBUILT_BY:
            return False
        if kind in TOUCHES_ACTIVITIES:
            touched.append(str(json.loads(row.payload)["id"]))
    for aid in dict.fromkeys(touched):
        found = s.get(ActivityRow, (mid, aid))
        picture.unindex_activity(aid)
        if found is None:
            continue
        if aid not in picture.activity_ids:
            picture.activity_ids[aid] = found.party
            picture.party_counts[found.party] += 1
        if found.state in {x.value for x in LIVE_STATES}:
            activity = activity_from_doc(found.doc, mechanism=mid)
            picture.index_activity(activity, picture.project(activity.volumes))
    _count(s, picture)
    signed = s.scalar(
        select(CheckpointRow.at).where(CheckpointRow.mechanism_id == mid).order_by(CheckpointRow.seq.desc()).limit(1)
    )
    last = rows[-1].at
    picture.last_at = signed if signed is not None and signed > last else last
    picture.head = current
    return True
