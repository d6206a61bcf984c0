"""Replay snapshots: a mechanism's projected tables just after every ``EVERY``-th entry of its record,
kept so that replay at an instant loads the newest snapshot at or before it and applies only the
entries after it, instead of the whole record from entry 1.

A snapshot is derived from the record (:func:`write_due` rebuilds it by replay from the previous one)
and never trusted blindly:

* it names the hash and the time of the entry it was taken at, which must be the chain's hash and the
  entry's time whenever it is used (:func:`usable` skips, with a warning, one that does not match: a time
  moved earlier would have it used at instants before its entry);
* it carries the SHA-256 of its canonical JSON (sorted keys, orjson), checked on every load;
* the first entry applied after it must name that hash as its previous one (:mod:`deconflict.store.replay`);
* :func:`check` rebuilds the record from entry 1 in one pass and compares every snapshot with the
  tables as they stood at its entry (``deconflict replay --check-snapshots``).

What the hashes cannot catch is a snapshot whose rows were edited and rehashed by someone with write
access to the database: replay would use it until ``--check-snapshots`` (or a snapshot rebuilt after it)
shows it; the record itself, and ``ledger verify``, are unaffected.

Replay around an instant (what the page's time bar asks for, :func:`deconflict.store.replay.around`) reads
a snapshot's *live piece* instead: the rows in force, open or awaited at its entry and those that ended,
closed or were sent in the 48 hours before (:func:`deconflict.store.replay.live` with
:data:`~deconflict.store.replay.KEEP`), a few thousand rows whatever the record's age while conflicts get
resolved and messages answered (each one left unresolved or unanswered stays in every piece). A whole snapshot
carries its piece (migration 0012); between two whole ones, a piece alone (no whole state: ``body`` NULL) is
written every ``PIECE_EVERY`` entries from the piece before it, so replay around an instant applies at most
that many entries. A piece is held to the same rules: its entry hash against the chain, its own content
hash (``live_hash``) on every load, and ``--check-snapshots`` compares it with the record rebuilt from entry
1 cut the same way. A row the entries after a piece change but the piece does not hold (an old notice
amended, an old message acknowledged late) is read from the whole state at the piece's entry
(:func:`whole_at`), only then. Snapshots written before 0012 have no piece: replay around an instant skips
them, and the writer gives those at a piece's place theirs.

Snapshots sit at fixed sequence numbers (multiples of ``EVERY``), so two processes that write one meet
on its primary key, and a restored or copied database keeps them (restore copies the table; each is
held against the restored record when used). The rows are compressed with zlib (about 13 to 1).

Each whole snapshot stands for the whole state, which grows with the record: stored in full, their total
grew with the square of the record's length (161 MB beside a 107 MB database after 14 months, about 17 GB
at 1M entries). Only every ``FULL_EVERY``-th is stored in full now; the others are stored as a delta
(migration 0016): the rows changed or added since the whole snapshot ``EVERY`` entries before (its base)
and the keys of the rows gone, a few thousand rows whatever the record's age. Loading one reads the full
snapshot below it and the deltas up to it, each held to its own hash and its base named by its entry's hash
(:func:`whole`); ``content_hash`` is still the hash of the whole state, checked against the state the deltas
add up to on every load, and ``--check-snapshots`` compares that state with the record rebuilt from entry 1,
as for a full one.

Costs (bench/replay.py): replay from a snapshot parses it (about 5 us a row) and applies the tail (about
0.6 ms an entry through the projection, at most ``EVERY``); writing one costs the same plus encoding
(about 4 us a row), in the duty loop, off the mechanism's lock. Replay around an instant parses a piece
(a few thousand rows) and applies at most ``PIECE_EVERY`` entries; writing a piece alone costs the same.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, Engine, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deconflict.errors import DeconflictError
from deconflict.store import Store, ledger, replay
from deconflict.store.schema import LedgerEntry, ReplaySnapshot

__all__ = [
    "EVERY",
    "FULL_EVERY",
    "LEVEL",
    "PIECE_EVERY",
    "Problem",
    "check",
    "decode",
    "decode_piece",
    "encode",
    "encode_piece",
    "entries",
    "kept",
    "make",
    "make_piece",
    "thin_one",
    "piece",
    "usable",
    "usable_piece",
    "whole",
    "whole_at",
    "write_due",
    "Written",
]

EVERY = 1000
"""Entries between two snapshots: replay at any instant applies at most this many entries after loading
one (bench/replay.py measures the trade between this, the write cost and the size)."""
PIECE_EVERY = 250
"""Entries between two live pieces (a whole snapshot carries one too): replay around an instant applies at most
this many entries after reading one (about 0.6 ms each), so it stays well under a second at any age."""
FULL_EVERY = 16
"""Whole snapshots stored in full: those at every ``FULL_EVERY``-th (their entry a multiple of ``EVERY *
FULL_EVERY``), and any whose base is not usable; the others are deltas on the one before. Loading one
decodes the full one below it and at most ``FULL_EVERY - 1`` deltas, merged first, so the whole state is
walked once (bench/replay.py measures the load and the storage against every snapshot in full)."""
LEVEL = 1
"""zlib level: the fastest; level 6 saves little more on these documents and costs several times the CPU."""

log = logging.getLogger("deconflict.snapshots")


def _canonical(doc: Any) -> bytes:
    """The canonical JSON the stored hashes are of: orjson, keys sorted."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def encode(rows: dict[str, list[dict[str, Any]]]) -> tuple[bytes, str, int]:
    """A snapshot's rows as (zlib-compressed canonical JSON, its SHA-256 in hex, its size in bytes)."""
    raw = _canonical(rows)
    return zlib.compress(raw, LEVEL), _sha256(raw), len(raw)


Key = tuple[Any, ...]


def _keyer(name: str) -> Callable[[dict[str, Any]], Key]:
    columns = replay.key_columns(name)
    return lambda row: tuple(row[c] for c in columns)


def delta(base: replay.Start, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What ``rows`` (the state some entries after ``base``) holds that ``base`` does not: per table, the rows
    changed or added (``rows``) and the keys of the rows gone (``gone``), with the base's entry and hash."""
    changed: dict[str, list[dict[str, Any]]] = {}
    gone: dict[str, list[list[Any]]] = {}
    for name in sorted(set(base.rows) | set(rows)):
        before, after = base.rows.get(name, []), rows.get(name, [])
        if before is after:
            continue
        key = _keyer(name)
        was = {key(r): r for r in before}
        new = [r for r in after if (old := was.pop(key(r), None)) is not r and old != r]
        if new:
            changed[name] = new
        if was:
            gone[name] = [list(k) for k in was]
    return {"base": base.seq, "base_hash": base.hash, "rows": changed, "gone": gone}


def encode_delta(doc: dict[str, Any]) -> tuple[bytes, str]:
    """A delta (:func:`delta`) as (zlib-compressed canonical JSON, its SHA-256 in hex)."""
    raw = _canonical(doc)
    return zlib.compress(raw, LEVEL), _sha256(raw)


def decode_delta(row: ReplaySnapshot) -> dict[str, Any]:
    """A stored snapshot's delta.

    Raises:
        ValueError: it has none, or it does not decompress to the content its hash names.
    """
    if row.delta_body is None or row.delta_hash is None:
        raise ValueError(f"snapshot at entry {row.seq} is a live piece alone")
    doc: dict[str, Any] = orjson.loads(_unpacked(row.seq, row.delta_body, row.delta_hash, "its delta"))
    return doc


def _unpacked(seq: int, body: bytes, digest: str, what: str) -> bytes:
    """``body`` decompressed, once its SHA-256 is found to be ``digest``.

    Raises:
        ValueError: it does not decompress, or to other content (``what`` of the snapshot at entry ``seq``).
    """
    try:
        raw = zlib.decompress(body)
    except zlib.error as e:
        raise ValueError(f"snapshot at entry {seq}: {what} does not decompress ({e})") from None
    if _sha256(raw) != digest:
        raise ValueError(f"snapshot at entry {seq}: {what} does not match its hash")
    return raw


def apply_deltas(
    rows: dict[str, list[dict[str, Any]]], deltas: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """``rows`` with ``deltas`` put in, oldest first, in one pass over each table they touch; each table in
    the order the deltas' own snapshots hold it (key order once a row has come in, else the base's)."""
    merged: dict[str, dict[Key, dict[str, Any] | None]] = {}
    came: dict[str, bool] = {}
    present: dict[str, set[Key]] = {}
    for d in deltas:
        for name in set(d["gone"]) | set(d["rows"]):
            key = _keyer(name)
            now = merged.setdefault(name, {})
            if name not in present:
                present[name] = {key(r) for r in rows.get(name, [])}
            there = present[name]
            for k in d["gone"].get(name, []):
                now[tuple(k)] = None
                there.discard(tuple(k))
            for r in d["rows"].get(name, []):
                k = key(r)
                if k not in there:  # a row that comes in: that snapshot put its table in key order
                    came[name] = True
                    there.add(k)
                now[k] = r
    out = dict(rows)
    for name, now in merged.items():
        key = _keyer(name)
        kept: list[dict[str, Any]] = []
        for r in rows.get(name, []):
            k = key(r)
            if k in now:
                replaced = now.pop(k)
                if replaced is not None:
                    kept.append(replaced)
            else:
                kept.append(r)
        kept += [r for r in now.values() if r is not None]
        out[name] = sorted(kept, key=key) if came.get(name) else kept
    return out


def decode(row: ReplaySnapshot) -> dict[str, list[dict[str, Any]]]:
    """A stored snapshot's rows, from its full body (:func:`whole` reads one stored as a delta too).

    Raises:
        ValueError: the body does not decompress to the content its hash names.
    """
    if row.body is None:
        raise ValueError(f"snapshot at entry {row.seq} is a live piece alone")
    raw = _unpacked(row.seq, row.body, row.content_hash or "", "its content")
    with replay.no_collection():
        rows: dict[str, list[dict[str, Any]]] = orjson.loads(raw)
    return rows


def encode_piece(
    rows: dict[str, list[dict[str, Any]]], keep: timedelta, rule: int = replay.LIVE_RULE
) -> tuple[bytes, str]:
    """A live piece (rows cut with ``keep`` by :func:`replay.live`'s ``rule``) as (zlib-compressed canonical
    JSON, its SHA-256 in hex)."""
    raw = _canonical({"keep_s": keep.total_seconds(), "rows": rows, "rule": rule})
    return zlib.compress(raw, LEVEL), _sha256(raw)


def decode_piece(seq: int, body: bytes, content_hash: str) -> tuple[timedelta, dict[str, list[dict[str, Any]]], int]:
    """A stored live piece's window, rows and the rule it was cut by (1: written before rule 2, which says none).

    Raises:
        ValueError: the body does not decompress to the content its hash names.
    """
    raw = _unpacked(seq, body, content_hash, "its live piece")
    with replay.no_collection():
        doc = orjson.loads(raw)
    return timedelta(seconds=doc["keep_s"]), doc["rows"], int(doc.get("rule", 1))


def piece(rows: dict[str, list[dict[str, Any]]], at: datetime) -> tuple[bytes, str, int]:
    """The live piece of a snapshot of ``rows`` taken at ``at`` (cut with :data:`replay.KEEP`): (stored
    body, hash, rows)."""
    cut = replay.live(rows, at=at, window=replay.KEEP)
    body, digest = encode_piece(cut, replay.KEEP)
    return body, digest, sum(len(r) for r in cut.values())


ENTRY_PAGE = 2000
"""Entries :func:`entries` reads at a time."""


def entries(session: Session, mechanism: str, *, after: int, upto: int | None = None) -> Iterator[dict[str, Any]]:
    """The record's entries after ``after`` (up to ``upto``), in order, read a page at a time as the caller
    consumes them, as plain rows (:func:`deconflict.store.ledger.docs_after`, as the event streams read them),
    not ORM objects. Each page continues from the last entry read: entries appended meanwhile come after it, so
    what is read is always a stretch of the record without a gap."""
    while upto is None or after < upto:
        page = ledger.docs_after(session, mechanism, after, ENTRY_PAGE, upto=upto)
        yield from page
        if len(page) < ENTRY_PAGE:
            return
        after = page[-1]["seq"]


_KEPT: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _layout(session: Session) -> str:
    """``"current"``: the database has the snapshots table as this release writes it; ``"none"``: no such
    table (not yet migrated to 0011); ``"older"``: the table of an earlier release (not yet migrated to
    0016). The command line opens a database without migrating it. Asked once per engine."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    if engine not in _KEPT:
        found = inspect(session.connection())
        name = ReplaySnapshot.__tablename__
        if not found.has_table(name):
            _KEPT[engine] = "none"
        elif {c["name"] for c in found.get_columns(name)} >= set(ReplaySnapshot.__table__.columns.keys()):
            _KEPT[engine] = "current"
        else:
            _KEPT[engine] = "older"
    return _KEPT[engine]


_WARNED: weakref.WeakSet[Engine] = weakref.WeakSet()


def kept(session: Session) -> bool:
    """Whether the database has the snapshots table as this release writes it (a database not yet migrated,
    opened read-only by the command line, has not: replay then starts from entry 1, said once)."""
    layout = _layout(session)
    engine = session.get_bind()
    if layout == "older" and isinstance(engine, Engine) and engine not in _WARNED:
        _WARNED.add(engine)
        log.warning(
            "the database is not yet migrated to this release's schema: replay starts from entry 1, without its "
            "snapshots, until a service of this release has opened it once (deconflict serve)"
        )
    return layout == "current"


def _not_the_records(session: Session, mechanism: str, seq: int, entry_hash: str, at: datetime) -> str | None:
    """What a snapshot's entry hash and time say that the record's entry ``seq`` does not, or None. The time
    matters as much as the hash: replay at an instant picks the newest snapshot whose time is not after it, so
    a snapshot that gave an earlier time would be used for instants before its entry."""
    found = session.execute(
        select(LedgerEntry.hash, LedgerEntry.at).where(LedgerEntry.mechanism_id == mechanism, LedgerEntry.seq == seq)
    ).one_or_none()
    if found is None or found[0] != entry_hash:
        return "names another hash than the record's entry"
    if found[1] != at:
        return "names another time than the record's entry"
    return None


def whole(session: Session, mechanism: str, row: ReplaySnapshot) -> dict[str, list[dict[str, Any]]]:
    """The whole state a stored snapshot stands for: its full body, or its delta put on the state of its base
    (resolved the same way, down to a full one). Each delta is held to its hash, each base it names must be
    the snapshot at that entry with that entry hash, the chain's, and the state they add up to is held to the
    snapshot's content hash, as a full body is.

    Raises:
        ValueError: a body or delta does not match its hash, or a base is missing or not the chain's.
    """
    top = row
    deltas: list[dict[str, Any]] = []
    while row.body is None:
        found = decode_delta(row)
        base_seq, base_hash = found["base"], found["base_hash"]
        base = session.get(ReplaySnapshot, (mechanism, base_seq)) if base_seq < row.seq else None
        if base is None or base.hash != base_hash or ledger.hash_at(session, mechanism, base_seq) != base_hash:
            raise ValueError(
                f"snapshot at entry {row.seq}: the whole snapshot it was made from (entry {base_seq}) is missing "
                "or is not the record's"
            )
        deltas.append(found)
        row = base
    rows = decode(row)
    if not deltas:
        return rows
    with replay.no_collection():
        rows = apply_deltas(rows, deltas[::-1])
    if _sha256(_canonical(rows)) != top.content_hash:
        raise ValueError(
            f"snapshot at entry {top.seq}: its deltas do not add up to the content its hash names (the full "
            f"snapshot at entry {row.seq} and the {len(deltas)} deltas after it, up to this one)"
        )
    return rows


_WHOLE = or_(ReplaySnapshot.body.is_not(None), ReplaySnapshot.delta_body.is_not(None))
"""A whole snapshot, stored in full or as a delta (not a live piece alone)."""


def usable(
    session: Session, mechanism: str, *, at: datetime | None = None, seq: int | None = None
) -> replay.Start | None:
    """The newest snapshot taken at or before ``at`` (its entry's time) and at or before entry ``seq``
    whose entry hash is the chain's and whose content matches its hash; None when there is none.

    One that fails either check is skipped with a warning (``deconflict replay --check-snapshots`` says
    more), and the next older one is tried."""
    if not kept(session):
        return None
    stmt = select(ReplaySnapshot.seq, ReplaySnapshot.hash, ReplaySnapshot.at).where(
        ReplaySnapshot.mechanism_id == mechanism, _WHOLE
    )
    if at is not None:
        stmt = stmt.where(ReplaySnapshot.at <= at)
    if seq is not None:
        stmt = stmt.where(ReplaySnapshot.seq <= seq)
    for found_seq, found_hash, found_at in session.execute(stmt.order_by(ReplaySnapshot.seq.desc())).all():
        wrong = _not_the_records(session, mechanism, found_seq, found_hash, found_at)
        if wrong is not None:
            log.warning("%s: snapshot at entry %d %s; skipped", mechanism, found_seq, wrong)
            continue
        row = session.get(ReplaySnapshot, (mechanism, found_seq))
        assert row is not None
        try:
            rows = whole(session, mechanism, row)
        except ValueError as e:
            log.warning("%s: %s; skipped", mechanism, e)
            continue
        return replay.Start(found_seq, found_hash, rows)
    return None


def whole_at(session: Session, mechanism: str, seq: int) -> dict[str, list[dict[str, Any]]]:
    """Every projected row just after entry ``seq``: from the newest usable whole snapshot at or before it
    (entry 1 without one) and the entries after it.

    Raises:
        ValueError: the record has no entry ``seq``.
    """
    start = usable(session, mechanism, seq=seq)
    reached, rows = replay.rebuild(
        entries(session, mechanism, after=start.seq if start else 0, upto=seq),
        mechanism=mechanism,
        upto=seq,
        start=start,
    )
    if reached.seq != seq:
        raise ValueError(f"{mechanism}: the record has no entry {seq}")
    return rows


def usable_piece(
    session: Session,
    mechanism: str,
    *,
    at: datetime,
    window: timedelta,
    seq: int | None = None,
    rule: int | None = None,
) -> tuple[replay.Piece, Callable[[], dict[str, list[dict[str, Any]]]]] | None:
    """The live piece of the newest snapshot taken at or before ``at`` that has one cut with a window at
    least ``window``, whose entry hash is the chain's and whose piece matches its hash; with a function
    that reads the whole state at its entry (:func:`whole_at`) when replay needs a row the piece does not
    hold. None when there is none. One that fails a check is skipped with a warning, and the next
    older one tried; only the piece is read (the whole state stays on disk unless asked for). ``rule``: only a
    piece cut by that rule of :func:`replay.live` (a new piece is never made from one of an earlier rule; an
    answer may come from any, one of rule 1 lacking only the activities cancelled in its window)."""
    if not kept(session):
        return None
    stmt = (
        select(ReplaySnapshot.seq, ReplaySnapshot.hash, ReplaySnapshot.at)
        .where(ReplaySnapshot.mechanism_id == mechanism, ReplaySnapshot.at <= at, ReplaySnapshot.live_body.is_not(None))
        .order_by(ReplaySnapshot.seq.desc())
    )
    if seq is not None:
        stmt = stmt.where(ReplaySnapshot.seq <= seq)
    for found_seq, found_hash, found_at in session.execute(stmt).all():
        wrong = _not_the_records(session, mechanism, found_seq, found_hash, found_at)
        if wrong is not None:
            log.warning("%s: snapshot at entry %d %s; skipped", mechanism, found_seq, wrong)
            continue
        body, digest = session.execute(
            select(ReplaySnapshot.live_body, ReplaySnapshot.live_hash).where(
                ReplaySnapshot.mechanism_id == mechanism, ReplaySnapshot.seq == found_seq
            )
        ).one()
        try:
            keep, rows, cut_by = decode_piece(found_seq, body or b"", digest or "")
        except ValueError as e:
            log.warning("%s: %s; skipped", mechanism, e)
            continue
        if keep < window or (rule is not None and cut_by != rule):
            continue

        def history(seq: int = found_seq) -> dict[str, list[dict[str, Any]]]:
            return whole_at(session, mechanism, seq)

        return replay.Piece(found_seq, found_hash, found_at, keep, rows), history
    return None


def make(
    store: Store, mechanism: str, target: int, now: datetime, *, every: int | None = None, full_every: int | None = None
) -> ReplaySnapshot:
    """The snapshot of a mechanism's tables just after entry ``target`` (not stored): rebuilt by replay from
    the newest usable snapshot before it (from entry 1 when there is none). Stored as a delta on that one when
    it is the whole snapshot ``every`` (:data:`EVERY`) entries before and ``target`` is not a ``full_every``-th
    (:data:`FULL_EVERY`); in full otherwise.

    Raises:
        ValueError: the record has no entry ``target``.
    """
    every, full_every = every or EVERY, full_every or FULL_EVERY
    with store.read() as s:
        start = usable(s, mechanism, seq=target - 1)
        # the collector held off while a snapshot's rows are alive (see deconflict.service.record.replay_stored)
        with replay.no_collection() if start is not None else nullcontext():
            reached, rows = replay.rebuild(
                entries(s, mechanism, after=start.seq if start else 0, upto=target),
                mechanism=mechanism,
                upto=target,
                start=start,
            )
            at = s.scalar(
                select(LedgerEntry.at).where(LedgerEntry.mechanism_id == mechanism, LedgerEntry.seq == target)
            )
            if reached.seq != target or at is None:
                raise ValueError(f"{mechanism}: the record has no entry {target}")
            raw = _canonical(rows)
            digest, size = _sha256(raw), len(raw)
            body: bytes | None = None
            delta_body = delta_hash = None
            if start is not None and start.seq == target - every and (target // every) % full_every:
                delta_body, delta_hash = encode_delta(delta(start, rows))
            else:
                body = zlib.compress(raw, LEVEL)
            del raw
            live_body, live_hash, live_rows = piece(rows, at)
    return ReplaySnapshot(
        mechanism_id=mechanism,
        seq=target,
        hash=reached.hash,
        at=at,
        content_hash=digest,
        rows=sum(len(r) for r in rows.values()),
        size=size,
        body=body,
        delta_body=delta_body,
        delta_hash=delta_hash,
        made_at=now,
        live_body=live_body,
        live_hash=live_hash,
        live_rows=live_rows,
    )


def make_piece(store: Store, mechanism: str, target: int, now: datetime) -> ReplaySnapshot:
    """A live piece alone just after entry ``target`` (not stored): from the newest usable piece before it
    and the entries after it (:func:`replay.live_at`), or cut from the whole state when there is none.

    Raises:
        ValueError: the record has no entry ``target``.
    """
    with store.read() as s, replay.no_collection():
        found = s.execute(
            select(LedgerEntry.at, LedgerEntry.hash).where(
                LedgerEntry.mechanism_id == mechanism, LedgerEntry.seq == target
            )
        ).one_or_none()
        if found is None:
            raise ValueError(f"{mechanism}: the record has no entry {target}")
        at, entry_hash = found
        # never from a piece cut by an earlier rule: the new one would lack the rows that rule left out
        start = usable_piece(s, mechanism, at=at, window=replay.KEEP, seq=target - 1, rule=replay.LIVE_RULE)
        if start is None:
            rows = replay.live(whole_at(s, mechanism, target), at=at, window=replay.KEEP)
        else:
            older, history = start
            tail = entries(s, mechanism, after=older.seq, upto=target)
            reached, rows = replay.live_at(
                tail, mechanism=mechanism, at=at, upto=target, window=replay.KEEP, piece=older, history=history
            )
            if reached.seq != target:
                raise ValueError(f"{mechanism}: the record has no entry {target}")
        body, digest = encode_piece(rows, replay.KEEP)
    return ReplaySnapshot(
        mechanism_id=mechanism,
        seq=target,
        hash=entry_hash,
        at=at,
        content_hash=None,
        rows=0,
        size=0,
        body=None,
        made_at=now,
        live_body=body,
        live_hash=digest,
        live_rows=sum(len(r) for r in rows.values()),
    )


def _store(store: Store, snapshot: ReplaySnapshot) -> bool:
    """Store a snapshot: a new row, or the half a row at its entry lacks (a whole state under a piece alone,
    a piece beside a whole state written before 0012). False when another process wrote it first."""
    try:
        with store.transaction() as s:
            there = s.get(ReplaySnapshot, (snapshot.mechanism_id, snapshot.seq))
            if there is None:
                s.add(snapshot)
                return True
            if there.content_hash is None and snapshot.content_hash is not None:
                there.content_hash, there.rows, there.size = snapshot.content_hash, snapshot.rows, snapshot.size
                there.body, there.delta_body, there.delta_hash = snapshot.body, snapshot.delta_body, snapshot.delta_hash
                return True
            if there.live_body is None and snapshot.live_body is not None:
                there.live_body, there.live_hash = snapshot.live_body, snapshot.live_hash
                there.live_rows = snapshot.live_rows
                return True
            return False
    except IntegrityError:
        return False  # another process wrote it first (the same rows, derived from the same record)


@dataclass(frozen=True)
class Written:
    """One snapshot written: its entry, rows, canonical and stored sizes, and the seconds it took."""

    seq: int
    rows: int
    size: int
    stored: int
    seconds: float
    piece: bool = False
    """A live piece alone, or added to a whole snapshot written before 0012 (``rows`` its rows, ``size`` 0)."""
    thinned: bool = False
    """A whole snapshot stored in full before 0016 stored again as a delta (:func:`thin_one`; ``stored`` its
    delta's size)."""


def write_due(
    store: Store,
    mechanism: str,
    now: datetime,
    *,
    every: int | None = None,
    piece_every: int | None = None,
    budget: int = 1,
    timer: Callable[[], float] | None = None,
) -> list[Written]:
    """Write the snapshots due on a mechanism's record: whole ones (every ``every``-th entry not yet
    snapshotted, oldest first, at most ``budget`` of them; ``every`` is :data:`EVERY` unless given), each
    rebuilt by replay from the newest usable snapshot before it and carrying its live piece; then live pieces
    alone (every ``piece_every``-th entry, :data:`PIECE_EVERY` unless given, at most ``budget``), each from the
    newest piece before it; a whole snapshot written before 0012 gets its piece so. When none was due, one
    whole snapshot stored in full before 0016 is stored as a delta (:func:`thin_one`), so that an older
    database's snapshots shrink too, at the duty loop's pace.

    Reads, then one short transaction per snapshot: never under the mechanism's lock, so appends go on
    meanwhile. A snapshot another process wrote first is left as it is."""
    import time

    clock = timer or time.perf_counter
    every = every or EVERY
    piece_every = piece_every or PIECE_EVERY
    done: list[Written] = []
    mine = ReplaySnapshot.mechanism_id == mechanism
    with store.read() as s:
        head = ledger.read_head(s, mechanism)
        last = s.scalar(select(func.max(ReplaySnapshot.seq)).where(mine, _WHOLE)) or 0
        last_piece = (
            s.scalar(select(func.max(ReplaySnapshot.seq)).where(mine, ReplaySnapshot.live_body.is_not(None))) or 0
        )
    target = (last // every + 1) * every
    while target <= head.seq and len(done) < budget:
        started = clock()
        snapshot = make(store, mechanism, target, now, every=every)
        if _store(store, snapshot):
            stored = len(snapshot.body or snapshot.delta_body or b"")
            done.append(Written(target, snapshot.rows, snapshot.size, stored, clock() - started))
        target += every
    pieces = 0
    target = (last_piece // piece_every + 1) * piece_every
    while target <= head.seq and pieces < budget:
        started = clock()
        snapshot = make_piece(store, mechanism, target, now)
        pieces += 1
        if _store(store, snapshot):
            stored = len(snapshot.live_body or b"")
            done.append(Written(target, snapshot.live_rows or 0, 0, stored, clock() - started, piece=True))
        target += piece_every
    if not done:  # nothing due: one snapshot stored in full before 0016 stored as a delta, if any is left
        started = clock()
        thinned = thin_one(store, mechanism, every=every)
        if thinned is not None:
            done.append(Written(thinned[0], 0, 0, thinned[1], clock() - started, thinned=True))
    return done


_UNFIT: weakref.WeakKeyDictionary[Engine, set[tuple[str, int]]] = weakref.WeakKeyDictionary()
"""Snapshots :func:`thin_one` found it could not store as a delta (a base that does not hold), per engine:
not tried again by this process."""


def thin_one(
    store: Store, mechanism: str, *, every: int | None = None, full_every: int | None = None
) -> tuple[int, int] | None:
    """Store the oldest whole snapshot that is in full but would be a delta today (written before 0016: not at
    a ``full_every``-th, the whole snapshot ``every`` entries before it there) as a delta on that one, once
    the delta put on its base gives exactly its rows; (its entry, the delta's size), or None when none is left.
    Reads, then one short transaction that changes the row only if it is still as read."""
    every, full_every = every or EVERY, full_every or FULL_EVERY
    unfit = _UNFIT.setdefault(store.engine, set())
    mine = ReplaySnapshot.mechanism_id == mechanism
    with store.read() as s:
        candidates = s.scalars(
            select(ReplaySnapshot.seq)
            .where(mine, ReplaySnapshot.body.is_not(None), ReplaySnapshot.seq > every)
            .where(ReplaySnapshot.seq % every == 0, ReplaySnapshot.seq % (every * full_every) != 0)
            .order_by(ReplaySnapshot.seq)
        ).all()
        for seq in candidates:
            if (mechanism, seq) in unfit:
                continue
            row, base = s.get(ReplaySnapshot, (mechanism, seq)), s.get(ReplaySnapshot, (mechanism, seq - every))
            assert row is not None
            try:
                if base is None or base.content_hash is None:
                    raise ValueError("no whole snapshot before it")
                if _not_the_records(s, mechanism, base.seq, base.hash, base.at) is not None:
                    raise ValueError("the one before it is not the record's")
                before, rows = whole(s, mechanism, base), decode(row)
                found = delta(replay.Start(base.seq, base.hash, before), rows)
                if apply_deltas(before, [found]) != rows:
                    raise ValueError("its delta does not give its rows back")
            except ValueError as e:
                log.warning("%s: snapshot at entry %d stays in full (%s)", mechanism, seq, e)
                unfit.add((mechanism, seq))
                continue
            body, digest = encode_delta(found)
            content_hash = row.content_hash
            break
        else:
            return None
    with store.transaction() as s:
        changed = s.execute(
            update(ReplaySnapshot)
            .where(mine, ReplaySnapshot.seq == seq, ReplaySnapshot.body.is_not(None))
            .where(ReplaySnapshot.content_hash == content_hash)
            .values(body=None, delta_body=body, delta_hash=digest)
        )
    return (seq, len(body)) if cast(CursorResult[Any], changed).rowcount == 1 else None


@dataclass(frozen=True)
class Problem:
    """A snapshot that does not hold what the record says: its entry and what is wrong."""

    seq: int
    problem: str


def check(
    session: Session, mechanism: str, *, progress: Callable[[int, int, int], None] | None = None
) -> tuple[int, list[Problem]]:
    """Rebuild the record from entry 1 in one pass and compare every stored snapshot with the tables as
    they stood at its entry: its entry hash, its content hash, its body, its live piece. Returns (snapshots checked,
    problems found). ``progress`` is told (snapshots checked so far, snapshots stored, the entry reached) after
    each one: on a long record the check takes minutes."""
    if _layout(session) == "older":
        raise DeconflictError(
            "the database is not yet migrated to this release's schema: its replay snapshots are checked once a "
            "service of this release has opened it (deconflict serve), or with the release that wrote them",
            field="db",
        )
    if not kept(session):
        return 0, []
    stored = {
        seq: (h, c)
        for seq, h, c in session.execute(
            select(ReplaySnapshot.seq, ReplaySnapshot.hash, ReplaySnapshot.content_hash).where(
                ReplaySnapshot.mechanism_id == mechanism
            )
        )
    }
    if not stored:
        return 0, []
    problems: list[Problem] = []
    seen: set[int] = set()

    def visit(head: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
        seen.add(head.seq)
        try:
            compare(head, rows)
        finally:
            if progress is not None:
                progress(len(seen), len(stored), head.seq)

    def compare(head: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
        entry_hash, content_hash = stored[head.seq]
        row = session.get(ReplaySnapshot, (mechanism, head.seq))
        assert row is not None
        wrong = _not_the_records(session, mechanism, head.seq, entry_hash, row.at)  # the walk read that entry
        if wrong is not None:
            problems.append(Problem(head.seq, wrong))
            return
        if content_hash is None:  # a live piece alone
            check_piece(row, rows)
            return
        if _sha256(_canonical(rows)) != content_hash:
            problems.append(Problem(head.seq, "its content hash is not that of the tables rebuilt from entry 1"))
            return
        try:
            kept = whole(session, mechanism, row)
        except ValueError as e:
            problems.append(Problem(head.seq, str(e).removeprefix(f"snapshot at entry {head.seq}: ")))
            return
        if kept != rows:
            problems.append(Problem(head.seq, "its rows differ from the tables rebuilt from entry 1"))
            return
        check_piece(row, rows)

    def check_piece(row: ReplaySnapshot, rows: dict[str, list[dict[str, Any]]]) -> None:
        if row.live_body is None or row.live_hash is None:
            return  # written before live pieces (0012): replay around an instant skips it
        try:
            keep, cut, rule = decode_piece(row.seq, row.live_body, row.live_hash)
        except ValueError as e:
            problems.append(Problem(row.seq, str(e).removeprefix(f"snapshot at entry {row.seq}: ")))
            return
        if cut != replay.live(rows, at=row.at, window=keep, rule=rule):
            problems.append(Problem(row.seq, "its live piece differs from the tables rebuilt from entry 1"))

    last = max(stored)  # (no further: nothing after the last snapshot is compared)
    replay.walk(entries(session, mechanism, after=0, upto=last), mechanism=mechanism, marks=set(stored), visit=visit)
    for seq in sorted(set(stored) - seen):
        problems.append(Problem(seq, "the record has no such entry"))
    return len(stored), sorted(problems, key=lambda p: p.seq)
