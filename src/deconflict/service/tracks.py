"""The tactical picture: parties' position reports, the tracks each member may see (flown on to now),
and the conflicts tracks raise and clear by themselves: a predicted loss of separation between two
parties' tracks, a track outside its party's active volumes, a track inside another party's volume.
Each such conflict's ``conflict.detected`` entry carries ``track_states``: the reported state (id, at,
lat, lon, alt_m, gs_mps, trk_deg, vs_mps) of every track involved, so the record alone shows why.
"""

from __future__ import annotations

import operator
import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Table, func, select, tuple_
from sqlalchemy.orm import Session

from deconflict.clock import ensure_utc, iso
from deconflict.formats.docs import activity_from_doc, parse_track_reports
from deconflict.geo import WGS84
from deconflict.model import ConflictKind, ConflictStatus, Disclosure, Member, Resolution, Role, Volume
from deconflict.record.chain import EntryType
from deconflict.service import conflicts, queries, tactical_shape
from deconflict.service.context import LIVE_STATES, SYSTEM, Context, retrying
from deconflict.service.picture import Picture, Pictures, party_member
from deconflict.service.posting import post_standard
from deconflict.service.writer import RecordWriter
from deconflict.store.durable import NotOnDisk
from deconflict.store.schema import ActivityRow, ConflictRow, TrackReportRow, TrackRow
from deconflict.tactical import Tracks, find_track_conflicts, tracks_in_volumes

__all__ = [
    "CLEARED_NOTES",
    "EARLIER_CLEARED_NOTES",
    "contact_lost",
    "report_tracks",
    "tactical_alerts",
    "tactical_tick",
    "tracks",
]

CLEARED_NOTES = {  # why a tactical conflict closed as cleared, by kind
    ConflictKind.TRACKS.value: "no loss of separation predicted any more",
    ConflictKind.CONFORMANCE.value: "the track is back within its party's notified volumes (or left the picture)",
    ConflictKind.INTRUSION.value: "the track is out of the other party's volume (or left the picture)",
}
EARLIER_CLEARED_NOTES = {
    ConflictKind.TRACKS.value: "no loss of separation predicted any more (or a track left the picture)",
}
"""The note of records written before 2026-12-05, when two aircraft predicted to lose separation also cleared
once either left the picture (a lost contact read as a resolution): they still verify."""
_FIELDS = ("lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps")


def report_tracks(ctx: Context, *, mechanism_id: str, actor: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a batch of a party's position reports (all of them or none), then check the tactical
    picture at once. Returns how many were stored and the conflicts raised and cleared.

    Reports are kept as the tracks' latest state and history, not as record entries; the conflicts
    they raise, and their alerts, are recorded. The batch is checked (all of it, before anything is
    stored), then queued; the first request to take the record's gate stores every batch queued by
    then in one transaction, checks the picture once for all of them and answers each (batches that
    arrive together share one check: ``raised`` and ``cleared`` are that check's). Each batch is
    written with two bulk statements, and the check runs on this process's copy of the live tracks
    (:class:`_Live`), brought up to date from the store first: no report reads the picture back.
    """
    with ctx.exclusive(mechanism_id) as picture:
        member = party_member(picture, actor)
        stale_s = picture.mechanism.rules.track_stale_s
    batch = _Batch(member.party, parse_track_reports(reports, now=ctx.clock(), stale_s=stale_s))
    with _QUEUE_LOCK:
        queue = _QUEUES.setdefault(ctx.pictures, {}).setdefault(mechanism_id, [])
        queue.append(batch)
    mine: list[_Batch] = []
    lost: NotOnDisk | None = None
    try:
        _store_queued(ctx, mechanism_id=mechanism_id, taken=mine)
    except BaseException as e:
        with _QUEUE_LOCK:  # the batches this request took and could not store: each is answered so
            for b in mine:
                if not b.done.is_set():
                    _answered(queue, b, None, e)
            if not batch.taken:  # nobody took it: it goes with this request's error
                _answered(queue, batch, None, e)
        if isinstance(e, NotOnDisk):
            lost = e
    batch.done.wait()  # stored (or failed) by this request, or by the one that took it
    if batch.error is not None:
        raise batch.error
    if lost is not None:  # stored, but no sync confirmed it on the disk: never a 2xx
        raise lost
    assert batch.result is not None
    return batch.result


class _Batch:
    """A party's checked reports waiting to be stored, then its answer (or the error that stopped it)."""

    def __init__(self, party: str, states: list[dict[str, Any]]) -> None:
        self.party = party
        self.states = states
        self.taken = False
        """A request holding the gate is storing it (set under :data:`_QUEUE_LOCK`)."""
        self.done = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None


_QUEUES: weakref.WeakKeyDictionary[Pictures, dict[str, list[_Batch]]] = weakref.WeakKeyDictionary()
"""Each process context's batches waiting to be stored, by mechanism."""
_QUEUE_LOCK = threading.Lock()


@retrying
def _store_queued(ctx: Context, *, mechanism_id: str, taken: list[_Batch]) -> None:
    """Store the batches queued for the mechanism that no other request took (none: they are stored
    already) in one transaction, check the picture once, and answer each. Run again on a fresh picture
    when the record moved (:func:`retrying`): the batches taken stay this request's (``taken``) until
    answered, and the caller answers them with the error if it gives up."""
    with _QUEUE_LOCK:
        queue = _QUEUES.setdefault(ctx.pictures, {}).setdefault(mechanism_id, [])
        for b in queue:
            if not b.taken:
                b.taken = True
                taken.append(b)
    batches = [b for b in taken if not b.done.is_set()]
    if not batches:
        return
    try:
        with ctx.exclusive(mechanism_id) as picture:
            now = ctx.clock()
            with RecordWriter(ctx, mechanism_id, picture=picture) as w:
                s = w.session
                live = _live(ctx, s, picture, now)
                received = live.stamp(now)
                for b in batches:
                    _store(s, mechanism_id, b.party, b.states, received)
                    live.apply(b.party, b.states, received)
                scope = np.zeros(len(live), dtype=bool)
                scope[[live.index[(b.party, st["id"])] for b in batches for st in b.states]] = True
                raised, cleared = _check(w, picture, now, live, scope)
    except BaseException:
        _forget(ctx, mechanism_id)  # what the copy holds may not be what was committed: read it again
        raise
    with _QUEUE_LOCK:
        for b in batches:  # each party hears of the conflicts that concern it only (batches share a check)
            mine_raised = [c for c in raised if b.party in c["parties"]]
            mine_cleared = [cid for cid, parties in cleared if b.party in parties]
            _answered(queue, b, {"stored": len(b.states), "raised": mine_raised, "cleared": mine_cleared}, None)


def _answered(queue: list[_Batch], batch: _Batch, result: dict[str, Any] | None, error: BaseException | None) -> None:
    """Give a batch its answer and take it off the queue (under :data:`_QUEUE_LOCK`)."""
    queue.remove(batch)
    batch.result, batch.error = result, error
    batch.done.set()


def _store(s: Session, mechanism_id: str, party: str, states: list[dict[str, Any]], received: datetime) -> None:
    """Write a batch: each report into the history (a report of the same track at the same instant
    replaces it), and into the track's latest state unless the stored state is newer (a late report
    never replaces a newer state). Two statements, each for the whole batch."""
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite":
        _store_sqlite(s, mechanism_id, party, states, received)
        return
    if dialect != "postgresql":  # the stores the service supports are SQLite and PostgreSQL; others row by row
        _store_rows(s, mechanism_id, party, states, received)
        return
    history = [{"mechanism_id": mechanism_id, "party": party, **st} for st in states]
    latest = [{**row, "received_at": received} for row in history]
    # PostgreSQL's dialect only here: an SQLite server never loads it (about 90 ms of every start)
    from sqlalchemy.dialects.postgresql import insert

    tracks_table: Table = TrackRow.__table__  # type: ignore[assignment]
    stmt = insert(_REPORTS_TABLE)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=list(_REPORT_KEY),
            set_={k: stmt.excluded[k] for k in _FIELDS},
        ),
        history,
    )
    stmt = insert(tracks_table)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["mechanism_id", "party", "id"],
            set_={k: stmt.excluded[k] for k in ("at", "received_at", *_FIELDS)},
            where=tracks_table.c.at <= stmt.excluded.at,
        ),
        latest,
    )


_KEYS = ("mechanism_id", "party", "id", "at")
_REPORTS_TABLE: Table = TrackReportRow.__table__  # type: ignore[assignment]
_REPORT_KEY = tuple(c.name for c in _REPORTS_TABLE.primary_key.columns)
"""The history's key, as the schema declares it (time first: migration 0013)."""
_SQLITE_REPORTS = (
    f"INSERT INTO track_reports ({', '.join((*_KEYS, *_FIELDS))}) VALUES ({', '.join('?' * (4 + len(_FIELDS)))}) "
    f"ON CONFLICT ({', '.join(_REPORT_KEY)}) DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in _FIELDS)}"
)
_SQLITE_TRACKS = (
    f"INSERT INTO tracks ({', '.join((*_KEYS, *_FIELDS, 'received_at'))}) "
    f"VALUES ({', '.join('?' * (5 + len(_FIELDS)))}) ON CONFLICT (mechanism_id, party, id) DO UPDATE SET "
    f"{', '.join(f'{k} = excluded.{k}' for k in ('at', *_FIELDS, 'received_at'))} WHERE tracks.at <= excluded.at"
)


def _store_sqlite(s: Session, mechanism_id: str, party: str, states: list[dict[str, Any]], received: datetime) -> None:
    """:func:`_store` on SQLite: the same two statements run by the driver in the session's transaction,
    the times written as the column type writes them (:func:`sqlite_stamp`, bit for bit what the ORM
    writes), without the per-row work of the SQL layer (a third of a batch's cost)."""
    conn = s.connection()
    values = _VALUES
    # a batch's reports share a few instants (a datetime keeps its hash); their times are UTC (parse_track_reports),
    # so equal times (the dict's keys) have equal stamps: no two local times of a DST fold
    stamps: dict[datetime, str] = {}
    for st in states:
        if st["at"] not in stamps:
            stamps[st["at"]] = sqlite_stamp(st["at"])
    rows = [(mechanism_id, party, st["id"], stamps[st["at"]], *values(st)) for st in states]
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.executemany(_SQLITE_REPORTS, rows)
    when = sqlite_stamp(received)
    driver.executemany(_SQLITE_TRACKS, [(*row, when) for row in rows])


_VALUES = operator.itemgetter(*_FIELDS)


def sqlite_stamp(at: datetime) -> str:
    """An aware time as SQLite keeps it: what :class:`~deconflict.store.schema.UTCDateTime` and
    SQLAlchemy's SQLite ``DATETIME`` make of it (UTC, no offset, always six digits of microseconds),
    in one call.

    >>> sqlite_stamp(datetime(2025, 4, 9, 9, 0, tzinfo=UTC))
    '2025-04-09 09:00:00.000000'
    """
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _store_rows(s: Session, mechanism_id: str, party: str, states: list[dict[str, Any]], received: datetime) -> None:
    """:func:`_store` through the ORM, one report at a time (a store other than SQLite or PostgreSQL)."""
    for st in states:
        fields = {k: st[k] for k in _FIELDS}
        s.merge(TrackReportRow(mechanism_id=mechanism_id, party=party, id=st["id"], at=st["at"], **fields))
        row = s.get(TrackRow, (mechanism_id, party, st["id"]))
        if row is None:
            s.add(
                TrackRow(
                    mechanism_id=mechanism_id, party=party, id=st["id"], at=st["at"], received_at=received, **fields
                )
            )
        elif row.at <= st["at"]:
            for k, v in {"at": st["at"], "received_at": received, **fields}.items():
                setattr(row, k, v)
    s.flush()


def tracks(ctx: Context, mechanism_id: str, *, reader: Member) -> list[dict[str, Any]]:
    """Tracks in the picture now (reported within the stale time) that ``reader`` may see, each with
    its position extrapolated to now. A party sees its own tracks, and others' under full disclosure
    or while they are in an open conflict with its own; facilitators and observers see all.

    Read as plain rows (a page asks every two seconds, and a live picture holds thousands of tracks and
    as many open conflicts: ORM objects made that 5-10 times dearer)."""
    picture = ctx.pictures.get(mechanism_id)
    now = ctx.clock()
    whole = reader.role is not Role.PARTY or picture.mechanism.rules.disclosure is Disclosure.FULL
    with ctx.store.read() as s:
        rows = _fresh_tracks(s, picture, now)
        involved = set() if whole else _involved(s, mechanism_id, reader.party)
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


MOST_NAMED = 2000
"""The most tracks :func:`contact_lost` names in its query (two values each); more are read with the rest."""


def contact_lost(ctx: Context, mechanism_id: str, conflicts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """For each unresolved tracks conflict among ``conflicts`` (id → its tracks no longer in the picture):
    the tracks not reported within the rules' stale time, each ``{"track", "last_report"}`` (the time of its
    last report, None when none is kept). Such a conflict stays open, contact lost, until its tracks are back
    and checked clear or a person resolves it (:func:`_check`); this says so to a reader of the conflict."""
    pairs = {
        c["id"]: [t for t in (c.get("activity"), c.get("other_activity")) if isinstance(t, str) and "/" in t]
        for c in conflicts
        if c.get("kind") == ConflictKind.TRACKS.value and c.get("status") != ConflictStatus.RESOLVED.value
    }
    names = {t for tracks in pairs.values() for t in tracks}
    if not names:
        return {}
    picture = ctx.pictures.get(mechanism_id)
    since = ctx.clock() - timedelta(seconds=picture.mechanism.rules.track_stale_s)
    keys = [tuple(name.split("/", 1)) for name in sorted(names)]
    with ctx.store.read() as s:
        stmt = select(TrackRow.party, TrackRow.id, TrackRow.at).where(TrackRow.mechanism_id == mechanism_id)
        if len(keys) <= MOST_NAMED:  # else every track of the mechanism, one row each, rather than a huge IN
            stmt = stmt.where(tuple_(TrackRow.party, TrackRow.id).in_(keys))
        last = {f"{party}/{id_}": at for party, id_, at in s.execute(stmt)}
    out: dict[str, list[dict[str, Any]]] = {}
    for cid, tracks in pairs.items():
        lost = [
            {"track": t, "last_report": iso(last[t]) if t in last else None}
            for t in tracks
            if t not in last or ensure_utc(last[t], field="at") < since
        ]
        if lost:
            out[cid] = lost
    return out


def _involved(s: Session, mechanism_id: str, party: str) -> set[str]:
    """The tracks (``party/id``) in the mechanism's open tactical conflicts that concern ``party``."""
    stmt = queries.open_tactical(mechanism_id).with_only_columns(
        ConflictRow.activity, ConflictRow.other_activity, ConflictRow.parties
    )
    return {
        track
        for activity, other, parties in s.execute(stmt)
        if party in parties
        for track in (activity, other)
        if track is not None
    }


def tactical_tick(ctx: Context, picture: Picture, now: datetime) -> int:
    """Keep the tactical picture current between reports: predictions move on with time, and a
    track that stops reporting leaves the picture (its conformance and intrusion clear; a pair predicted to
    lose separation stays open, contact lost). Returns conflicts raised and cleared.

    Runs under the record's gate (the duty loop's tick), like :func:`report_tracks`: the process's copy
    of the live tracks is brought up to date with what other processes stored, never read whole.

    The tick checks the tracks not checked for :data:`RECHECK_S` (those that stopped reporting), each
    against every other; a track reporting every second is checked at each report. Nothing to do when
    this process ran a check less than :data:`PAIRS_FRESH_S` ago and every track in the picture was
    checked since its last report (tracks reporting every second, the busy case). What changed since
    waits for the next check of the tracks concerned, at most about RECHECK_S + 1 s later: a pair coming
    into the look-ahead, a track leaving the picture (its conformance and intrusion cleared then), a rule
    changed or a conflict closed by hand."""
    mid = picture.mechanism.id
    since = now - timedelta(seconds=picture.mechanism.rules.track_stale_s)
    try:
        with ctx.store.read() as s:
            live = _live(ctx, s, picture, now)
            live.evict(since)
            fresh = live.fresh(since)
            busy = len(fresh) or s.scalar(select(func.count()).select_from(queries.open_tactical(mid).subquery()))
        if not busy:
            return 0
        unchecked = live.cols["checked_us"][: len(live)] <= _us(now) - int(RECHECK_S * 1e6)
        if 0 <= _us(now) - live.checked_us < PAIRS_FRESH_S * 1e6 and not unchecked[fresh].any():
            return 0
        with RecordWriter(ctx, mid, picture=picture) as w:
            raised, cleared = _check(w, picture, now, live, unchecked)
    except BaseException:
        _forget(ctx, mid)
        raise
    return len(raised) + len(cleared)


_SHOWN = (
    TrackRow.party,
    TrackRow.id,
    TrackRow.at,
    TrackRow.lat,
    TrackRow.lon,
    TrackRow.alt_m,
    TrackRow.gs_mps,
    TrackRow.trk_deg,
    TrackRow.vs_mps,
)
"""The columns of a track the picture shows (:func:`tracks`)."""


def _fresh_tracks(s: Session, picture: Picture, now: datetime) -> list[Any]:
    """The tracks reported within the stale time, as rows of :data:`_SHOWN`, by party and id."""
    since = now - timedelta(seconds=picture.mechanism.rules.track_stale_s)
    stmt = select(*_SHOWN).where(TrackRow.mechanism_id == picture.mechanism.id, TrackRow.at >= since)
    return list(s.execute(stmt.order_by(TrackRow.party, TrackRow.id)))


RECHECK_S = 2.0
"""The tick checks the tracks not checked for this long, for conformance, intrusion and against every
other track: those that missed about two reports at 1 Hz (a track reporting every second is checked at
each report; one that stopped, every other tick). At 1.0 s, the reporting period itself, the tick
checked about half of a busy picture again, the tracks whose next report was a little late (at 10,000
tracks reporting every second: 7% of the server's CPU, for what their reports' checks found a moment
later)."""
PAIRS_FRESH_S = 0.5
"""The tick leaves the picture alone when a check ran this recently (a report's, which also ends the
situations of tracks gone from the picture) and no track waits for its check."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _us(t: datetime) -> int:
    """Microseconds since 1970 (exact: the stores keep microseconds)."""
    return (t - _EPOCH) // _US


class _Live:
    """A mechanism's tracks (their latest reported states) as this process holds them between reports
    and ticks: what the check runs on, instead of reading every track back from the database.

    Kept equal to the stored ``tracks`` rows that are still in the picture: a batch this process
    stores is applied to it (the same rule as the store's: a state never replaces a newer one), and
    the rows other processes stored are read in before each use, under the record's gate. They are
    found by ``received_at``: every batch is stamped later than any stamp already stored
    (:meth:`stamp`), and batches are stored one at a time (the gate), so the rows stored since this
    copy was last brought up to date are exactly those stamped after its :attr:`marker`.
    """

    _COLUMNS = ("at_us", "checked_us", *_FIELDS)
    """Per track: when reported and when its conformance and intrusion were last checked (microseconds
    since 1970), and its reported state."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str], int] = {}
        self.party: list[str] = []
        self.ids: list[str] = []
        self.names: list[str] = []
        self.at: list[datetime] = []
        self.cols: dict[str, np.ndarray] = {
            k: np.empty(64, dtype=np.int64 if k.endswith("_us") else float) for k in self._COLUMNS
        }
        self.checked_us = -(2**62)
        """When this process last checked every pair of the picture (microseconds since 1970)."""
        self.marker: datetime | None = None
        """The newest ``received_at`` stored for the mechanism, by any process, that this copy includes."""
        self._order: np.ndarray | None = None
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.party)

    def stamp(self, now: datetime) -> datetime:
        """The ``received_at`` of a batch stored now: ``now``, or just after the newest stamp stored
        (another process's clock a little ahead), so that stamps only grow."""
        return now if self.marker is None or now > self.marker else self.marker + _US

    def sync(self, s: Session, mechanism_id: str, since: datetime) -> None:
        """Read in the rows stored since :attr:`marker` (all the rows still in the picture, the first time)."""
        cols = (
            TrackRow.party,
            TrackRow.id,
            TrackRow.at,
            TrackRow.received_at,
            *(getattr(TrackRow, k) for k in _FIELDS),
        )
        mine = TrackRow.mechanism_id == mechanism_id
        if self.marker is None:
            newest = s.scalar(select(func.max(TrackRow.received_at)).where(mine))
            rows = s.execute(select(*cols).where(mine, TrackRow.at >= since)).all()
        else:
            rows = s.execute(select(*cols).where(mine, TrackRow.received_at > self.marker)).all()
            newest = max((r[3] for r in rows), default=self.marker)
        for party, tid, at, _, *values in rows:
            self._put(party, tid, at, values, force=True)
        self.marker = newest

    def apply(self, party: str, states: list[dict[str, Any]], received: datetime) -> None:
        """A batch this process stored, stamped ``received``: what :meth:`_put` does report by report, for
        the whole batch at once (a batch naming a track twice goes report by report, in its order)."""
        self.marker = received if self.marker is None or received > self.marker else self.marker
        keys = [(party, st["id"]) for st in states]
        if len(set(keys)) != len(keys):
            for st in states:
                self._put(party, st["id"], st["at"], [st[k] for k in _FIELDS], force=False)
            return
        index = self.index
        idx = [index.get(key, -1) for key in keys]
        for k, i in enumerate(idx):
            if i < 0:  # a new track: never newer than its first report
                idx[k] = self._new(party, keys[k][1], states[k]["at"])
        stamps: dict[datetime, int] = {}
        at_us = np.array([stamps.get(st["at"]) or stamps.setdefault(st["at"], _us(st["at"])) for st in states])
        rows = np.array(idx, dtype=np.int64)
        newer = self.cols["at_us"][rows] <= at_us  # a late report never replaces a newer state
        if not newer.all():
            keep = np.flatnonzero(newer)
            rows, at_us, states = rows[keep], at_us[keep], [states[k] for k in keep.tolist()]
        at = self.at
        for i, st in zip(rows.tolist(), states, strict=True):
            at[i] = st["at"]
        self.cols["at_us"][rows] = at_us
        values = np.array([_VALUES(st) for st in states], dtype=float).reshape(len(states), len(_FIELDS))
        for col, name in enumerate(_FIELDS):
            self.cols[name][rows] = values[:, col]

    def _new(self, party: str, tid: str, at: datetime) -> int:
        """Room for a track not held yet; its index (its state is written by the caller)."""
        i = len(self.party)
        if i == len(self.cols["at_us"]):
            self.cols = {k: np.concatenate([v, np.empty_like(v)]) for k, v in self.cols.items()}
        self.index[(party, tid)] = i
        self.party.append(party)
        self.ids.append(tid)
        self.names.append(f"{party}/{tid}")
        self.at.append(at)
        self._order = self._arrays = None
        self.cols["checked_us"][i] = 0
        self.cols["at_us"][i] = -(2**62)
        return i

    def _put(self, party: str, tid: str, at: datetime, values: list[float], *, force: bool) -> None:
        i = self.index.get((party, tid))
        if i is None:
            i = self._new(party, tid, at)
        elif force or self.at[i] <= at:
            self.at[i] = at
        else:
            return  # a late report never replaces a newer state
        self.cols["at_us"][i] = _us(at)
        for k, v in zip(_FIELDS, values, strict=True):
            self.cols[k][i] = v

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every track's name and party, as arrays (object) indexed like the columns."""
        if self._arrays is None:
            self._arrays = (np.array(self.names, dtype=object), np.array(self.party, dtype=object))
        return self._arrays

    def order(self) -> np.ndarray:
        """Every track's index, ordered by (party, id)."""
        if self._order is None:
            self._order = np.array(
                sorted(range(len(self.party)), key=lambda i: (self.party[i], self.ids[i])), dtype=np.int64
            )
        return self._order

    def fresh(self, since: datetime) -> np.ndarray:
        """Indices of the tracks reported at or after ``since``, ordered by (party, id)."""
        order = self.order()
        fresh: np.ndarray = order[self.cols["at_us"][order] >= _us(since)]
        return fresh

    def evict(self, since: datetime) -> None:
        """Forget tracks that left the picture (reported before ``since``), once they are many: a
        report that brings one back is applied as a new track, like one read from the store."""
        n = len(self.party)
        keep = self.cols["at_us"][:n] >= _us(since)
        gone = n - int(keep.sum())
        if gone < max(64, n // 8):
            return
        kept = np.flatnonzero(keep)
        self.cols = {
            k: np.concatenate([v[kept], np.empty(max(64, len(kept)), dtype=v.dtype)]) for k, v in self.cols.items()
        }
        self.party = [self.party[i] for i in kept]
        self.ids = [self.ids[i] for i in kept]
        self.names = [self.names[i] for i in kept]
        self.at = [self.at[i] for i in kept]
        self.index = {(p, t): i for i, (p, t) in enumerate(zip(self.party, self.ids, strict=True))}
        self._order = self._arrays = None

    def extrapolated(self, idx: np.ndarray, now: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lat, lon, altitude) of tracks ``idx`` at ``now``, flown on from their reports at their
        ground speed and track (as :func:`_extrapolated`, to the bit)."""
        c = self.cols
        dt = (_us(now) - c["at_us"][idx]) / 1e6
        lon, lat, _ = WGS84.fwd(c["lon"][idx], c["lat"][idx], c["trk_deg"][idx], c["gs_mps"][idx] * dt)
        alt = c["alt_m"][idx] + c["vs_mps"][idx] * dt
        return np.asarray(lat, dtype=float), np.asarray(lon, dtype=float), alt

    def evidence(self, i: int) -> dict[str, Any]:
        """Track ``i``'s state as its party last reported it (not flown on): what the record keeps as the
        evidence of a tactical conflict, so the record alone shows why it was raised."""
        return {
            "track": self.names[i],
            "party": self.party[i],
            "id": self.ids[i],
            "at": iso(self.at[i]),
            **{k: float(self.cols[k][i]) for k in _FIELDS},
        }


_LIVE: weakref.WeakKeyDictionary[Pictures, dict[str, _Live]] = weakref.WeakKeyDictionary()
"""Each process context's live tracks, by mechanism (keyed by the context's pictures, which it alone has)."""


def _live(ctx: Context, s: Session, picture: Picture, now: datetime) -> _Live:
    """The mechanism's live tracks, brought up to date with the store (call it under the record's gate)."""
    mid = picture.mechanism.id
    live = _LIVE.setdefault(ctx.pictures, {}).setdefault(mid, _Live())
    live.sync(s, mid, now - timedelta(seconds=picture.mechanism.rules.track_stale_s))
    return live


def _forget(ctx: Context, mechanism_id: str) -> None:
    """Drop the copy of a mechanism's live tracks (a write failed part way): the next use reads them anew."""
    _LIVE.get(ctx.pictures, {}).pop(mechanism_id, None)


def _check(
    w: RecordWriter, picture: Picture, now: datetime, live: _Live, scope: np.ndarray | None = None
) -> tuple[list[dict[str, Any]], list[tuple[str, list[str]]]]:
    """Raise a conflict (and its alert) for each situation that is new, clear each that has ended; returns
    the conflicts raised and (id, parties) of those cleared.

    A situation is a pair of different parties' tracks predicted to lose separation within the
    look-ahead, a track outside every active volume of its party (beyond the tolerance), or a
    track inside another party's active volume. It raises one conflict while it lasts, however
    many reports arrive, and a new one if it comes back after it ended.

    ``scope``: which tracks (by index in ``live``) to check: those just reported (a report), or those
    not checked for :data:`RECHECK_S` (the tick); None: every track. A track in scope is checked for
    conformance and intrusion, and against every other track in the picture (each pair with a track in
    scope). A situation whose tracks are all out of scope (and still in the picture) stays as it is
    until one of them is checked again, at most about RECHECK_S + 1 s later: a track checked a moment ago
    has barely moved, and a pair's prediction is the same while neither reports (both fly on as
    reported). A pair predicted to lose separation with a track gone from the picture (not reported for
    ``track_stale_s``) stays open: contact lost in an encounter is not a resolution. Its alerts keep their
    deadlines and climb the ladder; it ends when its tracks are back and checked clear, or when a person
    resolves it. A track's conformance or intrusion ends when the track leaves the picture (an aircraft
    that landed, its feed ended, would otherwise leave every such conflict open for a person to close).
    """
    s = w.session
    rules = picture.mechanism.rules
    mid = picture.mechanism.id
    since = now - timedelta(seconds=rules.track_stale_s)
    idx = live.fresh(since)
    live.checked_us = _us(now)
    names: list[str] = live.arrays()[0][idx].tolist()
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    if len(idx):
        lat, lon, alt = live.extrapolated(idx, now)
        party_arr = live.arrays()[1][idx]
        parties: list[str] = party_arr.tolist()
        cols = live.cols
        # the live copy's columns are checked already (parse_track_reports) and its names unique (its index)
        t = Tracks(names, lat, lon, alt, cols["gs_mps"][idx], cols["trk_deg"][idx], cols["vs_mps"][idx])
        wanted = np.ones(len(idx), dtype=bool) if scope is None else scope[idx]
        table = find_track_conflicts(
            t,
            rpz_m=rules.separation_m,
            hpz_m=rules.vertical_separation_m,
            lookahead_s=rules.track_lookahead_s,
            among=wanted,
        )
        for c, pa, pb in zip(table.conflicts(t), party_arr[table.a].tolist(), party_arr[table.b].tolist(), strict=True):
            if pa != pb:
                found[(ConflictKind.TRACKS.value, c.a, c.b)] = {
                    "kind": ConflictKind.TRACKS.value,
                    "activity": c.a,
                    "other_activity": c.b,
                    "parties": sorted({pa, pb}),
                    "awaiting": sorted({pa, pb}),
                    "distance_m": round(c.dcpa_m, 1),
                    "tcpa_s": round(c.tcpa_s, 1),
                    "t_in_s": round(c.t_in_s, 1),
                    "t_out_s": round(c.t_out_s, 1),
                    "separation_m": rules.separation_m,
                    "vertical_separation_m": rules.vertical_separation_m,
                }
        volumes = _active_volumes(s, mid, now)
        live.cols["checked_us"][idx[wanted]] = _us(now)
        for party in sorted(set(parties)):
            mine = np.flatnonzero((party_arr == party) & wanted)
            if not len(mine):
                continue
            own = [(a, v) for p, a, v in volumes if p == party]
            inside, _ = tracks_in_volumes(
                lon[mine], lat[mine], alt[mine], now, [v for _, v in own], tolerance_m=rules.conformance_tolerance_m
            )
            outside = np.ones(len(mine), dtype=bool)
            outside[inside] = False
            for k in np.flatnonzero(outside).tolist():
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
        track = live.index[_key(doc["activity"])]
        involved = [doc["activity"]] + ([doc["other_activity"]] if key[0] == ConflictKind.TRACKS.value else [])
        doc = {
            "id": cid,
            **doc,
            "party": live.party[track],
            "deadline": iso(tactical_shape.deadline(key[0], doc.get("t_in_s"), w.floor(now), rules)),
            "track_states": [live.evidence(live.index[_key(name)]) for name in involved],
        }
        w.append(SYSTEM, EntryType.CONFLICT_DETECTED, doc, now)
        tactical_alerts(w, picture, doc, now)
        raised.append(doc)
    cleared: list[tuple[str, list[str]]] = []
    since_us = _us(since)
    for key, row in open_rows.items():
        present = _in_picture(key, live, since_us)
        if key[0] == ConflictKind.TRACKS.value and not present:
            continue  # contact lost: open until its tracks are back and checked clear, or a person resolves it
        if scope is not None and present and not _checked_now(key, live, scope):
            continue  # its tracks are in the picture and were not checked now: the next check sees it
        if key not in found:
            conflicts.record_resolution(w, picture, SYSTEM, row.id, Resolution.CLEARED, CLEARED_NOTES[row.kind], now)
            cleared.append((row.id, list(row.parties)))
    return raised, cleared


def _tracks_of(key: tuple[str, ...]) -> tuple[str, ...]:
    """The tracks a situation is about: a pair's two, or the one track of a conformance or an intrusion."""
    return key[1:3] if key[0] == ConflictKind.TRACKS.value else key[1:2]


def _in_picture(key: tuple[str, ...], live: _Live, since_us: int) -> bool:
    """Whether every track of the situation ``key`` is in the picture: held, and reported since ``since_us``."""
    for name in _tracks_of(key):
        i = live.index.get(_key(name))
        if i is None or live.cols["at_us"][i] < since_us:
            return False
    return True


def _checked_now(key: tuple[str, ...], live: _Live, scope: np.ndarray) -> bool:
    """Whether the check in ``scope`` looked at the situation ``key``, whose tracks are in the picture: a pair
    when either track is in the scope, a track's conformance or intrusion when it is."""
    return any(scope[live.index[_key(name)]] for name in _tracks_of(key))


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
    # tracks about to meet: the conflict's sooner deadline; else each alert's own (the rules', from its time)
    deadline = tactical_shape.shortened(conflict, w.floor(now), picture.mechanism.rules)
    for party in conflict["awaiting"]:  # one alert each: each party acknowledges, and climbs, on its own
        post_standard(w, picture, template, params, [party], (queries.ABOUT_CONFLICT, ref), now, deadline=deadline)


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


def _key(name: str) -> tuple[str, str]:
    """(party, id) of a track's name ``party/id``."""
    party, _, tid = name.partition("/")
    return party, tid


def _situation(row: ConflictRow) -> tuple[str, ...]:
    """What situation an open tactical conflict stands for (see ``_check``)."""
    if row.kind == ConflictKind.CONFORMANCE.value:
        return (row.kind, row.activity)
    return (row.kind, row.activity, str(row.other_activity))


def _extrapolated(rows: list[Any], now: datetime) -> list[tuple[float, float, float]]:
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
