"""Replay snapshots: a mechanism's projected tables just after every ``EVERY``-th entry of its record,
kept so that replay at an instant loads the newest snapshot at or before it and applies only the
entries after it, instead of the whole record from entry 1.

A snapshot is derived from the record (:func:`write_due` rebuilds it by replay from the previous one)
and never trusted blindly:

* it names the hash of the entry it was taken at, which must be the chain's hash of that entry
  whenever it is used (:func:`usable` skips, with a warning, one that does not match);
* it carries the SHA-256 of its canonical JSON (sorted keys, orjson), checked on every load;
* the first entry applied after it must name that hash as its previous one (:mod:`deconflict.store.replay`);
* :func:`check` rebuilds the record from entry 1 in one pass and compares every snapshot with the
  tables as they stood at its entry (``deconflict replay --check-snapshots``).

What the hashes cannot catch is a snapshot whose rows were edited and rehashed by someone with write
access to the database: replay would use it until ``--check-snapshots`` (or a snapshot rebuilt after it)
shows it; the record itself, and ``ledger verify``, are unaffected.

Snapshots sit at fixed sequence numbers (multiples of ``EVERY``), so two processes that write one meet
on its primary key, and a restored or copied database keeps them (restore copies the table; each is
held against the restored record when used). The rows are compressed with zlib (about 13 to 1).

Costs (bench/replay.py): replay from a snapshot parses it (about 5 us a row) and applies the tail (about
0.6 ms an entry through the projection, at most ``EVERY``); writing one costs the same plus encoding
(about 4 us a row), in the duty loop, off the mechanism's lock.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deconflict.store import Store, ledger, replay
from deconflict.store.schema import LedgerEntry, ReplaySnapshot

__all__ = [
    "EVERY",
    "LEVEL",
    "Problem",
    "check",
    "decode",
    "encode",
    "entries",
    "kept",
    "make",
    "usable",
    "write_due",
    "Written",
]

EVERY = 1000
"""Entries between two snapshots: replay at any instant applies at most this many entries after loading
one (bench/replay.py measures the trade between this, the write cost and the size)."""
LEVEL = 1
"""zlib level: the fastest; level 6 saves little more on these documents and costs several times the CPU."""

log = logging.getLogger("deconflict.snapshots")


def encode(rows: dict[str, list[dict[str, Any]]]) -> tuple[bytes, str, int]:
    """A snapshot's rows as (zlib-compressed canonical JSON, its SHA-256 in hex, its size in bytes)."""
    raw = orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)
    return zlib.compress(raw, LEVEL), hashlib.sha256(raw).hexdigest(), len(raw)


def decode(row: ReplaySnapshot) -> dict[str, list[dict[str, Any]]]:
    """A stored snapshot's rows.

    Raises:
        ValueError: the body does not decompress to the content its hash names.
    """
    try:
        raw = zlib.decompress(row.body)
    except zlib.error as e:
        raise ValueError(f"snapshot at entry {row.seq} does not decompress ({e})") from None
    if hashlib.sha256(raw).hexdigest() != row.content_hash:
        raise ValueError(f"snapshot at entry {row.seq}: its content does not match its hash")
    with replay.no_collection():
        rows: dict[str, list[dict[str, Any]]] = orjson.loads(raw)
    return rows


def entries(session: Session, mechanism: str, *, after: int, upto: int | None = None) -> Iterator[dict[str, Any]]:
    """The record's entries after ``after`` (up to ``upto``), in order, read as the caller consumes them."""
    stmt = select(LedgerEntry).where(LedgerEntry.mechanism_id == mechanism, LedgerEntry.seq > after)
    if upto is not None:
        stmt = stmt.where(LedgerEntry.seq <= upto)
    for row in session.scalars(stmt.order_by(LedgerEntry.seq)).yield_per(2000):
        yield ledger.entry_doc(row)


_KEPT: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def kept(session: Session) -> bool:
    """Whether the database has the snapshots table (a database not yet migrated to 0011, opened read-only
    by the command line, has not: replay then starts from entry 1). Asked once per engine."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    if engine not in _KEPT:
        _KEPT[engine] = inspect(session.connection()).has_table(ReplaySnapshot.__tablename__)
    return _KEPT[engine]


def _entry_hash(session: Session, mechanism: str, seq: int) -> str | None:
    return session.scalar(select(LedgerEntry.hash).where(LedgerEntry.mechanism_id == mechanism, LedgerEntry.seq == seq))


def usable(
    session: Session, mechanism: str, *, at: datetime | None = None, seq: int | None = None
) -> replay.Start | None:
    """The newest snapshot taken at or before ``at`` (its entry's time) and at or before entry ``seq``
    whose entry hash is the chain's and whose content matches its hash; None when there is none.

    One that fails either check is skipped with a warning (``deconflict replay --check-snapshots`` says
    more), and the next older one is tried."""
    if not kept(session):
        return None
    stmt = select(ReplaySnapshot.seq, ReplaySnapshot.hash).where(ReplaySnapshot.mechanism_id == mechanism)
    if at is not None:
        stmt = stmt.where(ReplaySnapshot.at <= at)
    if seq is not None:
        stmt = stmt.where(ReplaySnapshot.seq <= seq)
    for found_seq, found_hash in session.execute(stmt.order_by(ReplaySnapshot.seq.desc())).all():
        if _entry_hash(session, mechanism, found_seq) != found_hash:
            log.warning(
                "%s: snapshot at entry %d names another hash than the record's entry; skipped", mechanism, found_seq
            )
            continue
        row = session.get(ReplaySnapshot, (mechanism, found_seq))
        assert row is not None
        try:
            rows = decode(row)
        except ValueError as e:
            log.warning("%s: %s; skipped", mechanism, e)
            continue
        return replay.Start(found_seq, found_hash, rows)
    return None


def make(store: Store, mechanism: str, target: int, now: datetime) -> ReplaySnapshot:
    """The snapshot of a mechanism's tables just after entry ``target`` (not stored): rebuilt by replay from
    the newest usable snapshot before it (from entry 1 when there is none).

    Raises:
        ValueError: the record has no entry ``target``.
    """
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
            body, digest, size = encode(rows)
    return ReplaySnapshot(
        mechanism_id=mechanism,
        seq=target,
        hash=reached.hash,
        at=at,
        content_hash=digest,
        rows=sum(len(r) for r in rows.values()),
        size=size,
        body=body,
        made_at=now,
    )


@dataclass(frozen=True)
class Written:
    """One snapshot written: its entry, rows, canonical and stored sizes, and the seconds it took."""

    seq: int
    rows: int
    size: int
    stored: int
    seconds: float


def write_due(
    store: Store,
    mechanism: str,
    now: datetime,
    *,
    every: int | None = None,
    budget: int = 1,
    timer: Callable[[], float] | None = None,
) -> list[Written]:
    """Write the snapshots due on a mechanism's record (every ``every``-th entry not yet snapshotted, oldest
    first, at most ``budget`` of them; ``every`` is :data:`EVERY` unless given), each rebuilt by replay from
    the newest usable snapshot before it.

    Reads, then one short transaction per snapshot: never under the mechanism's lock, so appends go on
    meanwhile. A snapshot another process wrote first is left as it is."""
    import time

    clock = timer or time.perf_counter
    every = every or EVERY
    done: list[Written] = []
    with store.read() as s:
        head = ledger.read_head(s, mechanism)
        last = s.scalar(select(func.max(ReplaySnapshot.seq)).where(ReplaySnapshot.mechanism_id == mechanism)) or 0
    target = (last // every + 1) * every
    while target <= head.seq and len(done) < budget:
        started = clock()
        snapshot = make(store, mechanism, target, now)
        try:
            with store.transaction() as s:
                s.add(snapshot)
        except IntegrityError:
            pass  # another process wrote it first (the same rows, derived from the same record)
        else:
            done.append(Written(target, snapshot.rows, snapshot.size, len(snapshot.body), clock() - started))
        target += every
    return done


@dataclass(frozen=True)
class Problem:
    """A snapshot that does not hold what the record says: its entry and what is wrong."""

    seq: int
    problem: str


def check(session: Session, mechanism: str) -> tuple[int, list[Problem]]:
    """Rebuild the record from entry 1 in one pass and compare every stored snapshot with the tables as
    they stood at its entry: its entry hash, its content hash, its body. Returns (snapshots checked,
    problems found)."""
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
    problems: list[Problem] = []
    seen: set[int] = set()

    def visit(head: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
        seen.add(head.seq)
        entry_hash, content_hash = stored[head.seq]
        if entry_hash != head.hash:
            problems.append(Problem(head.seq, "names another hash than the record's entry"))
            return
        if encode(rows)[1] != content_hash:
            problems.append(Problem(head.seq, "its content hash is not that of the tables rebuilt from entry 1"))
            return
        row = session.get(ReplaySnapshot, (mechanism, head.seq))
        assert row is not None
        try:
            kept = decode(row)
        except ValueError as e:
            problems.append(Problem(head.seq, str(e)))
            return
        if kept != rows:
            problems.append(Problem(head.seq, "its rows differ from the tables rebuilt from entry 1"))

    replay.walk(entries(session, mechanism, after=0), mechanism=mechanism, marks=set(stored), visit=visit)
    for seq in sorted(set(stored) - seen):
        problems.append(Problem(seq, "the record has no such entry"))
    return len(stored), sorted(problems, key=lambda p: p.seq)
