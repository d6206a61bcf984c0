"""The record in the database: append signed entries to a mechanism's chain and read them back.

The hashing, chaining and verification are pure and live in :mod:`deconflict.record`; this
module only moves entries between that and the ``ledger`` table.

Appends to one record are serialised in the database, not only by a process's own lock, so that several
server processes on one database never fork a chain (:func:`lock_record`, taken by the writer before it
reads the head): on PostgreSQL a transaction-level advisory lock keyed by the mechanism; on SQLite the
database's write lock, taken at once. In both, the ledger's primary key (mechanism, seq) still refuses a
second entry at the same place, should a writer append after a head it read before the lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, text
from sqlalchemy.orm import Session

from deconflict.clock import iso
from deconflict.record.chain import GENESIS_HASH, ChainReport, Head, Signer, draft
from deconflict.record.verify import verify_docs
from deconflict.store import direct
from deconflict.store.schema import LedgerEntry

__all__ = [
    "append",
    "connection_of",
    "docs_after",
    "entry_doc",
    "hash_at",
    "holds_lock",
    "lock_record",
    "payloads_between",
    "read_head",
    "record_lock_key",
    "row_doc",
    "store_docs",
    "verify_store",
]

_INSERT = insert(cast(Table, LedgerEntry.__table__))
"""The statement that stores one entry, built once (executed with one row's values: a single execute, not
an executemany of one, which costs SQLAlchemy a third more per entry)."""

_LOCKED = "deconflict.locked_records"
"""Key in a session's ``info``: the mechanisms whose record the session's transaction has locked."""
_CONNECTION = "deconflict.connection"
"""Key in a session's ``info``: (the session's transaction, its connection), for :func:`connection_of`."""


def record_lock_key(mechanism: str) -> int:
    """The advisory lock key of a mechanism's record on PostgreSQL: a signed 64-bit number from its id.

    >>> record_lock_key("tr-il-syria") == record_lock_key("tr-il-syria") != record_lock_key("other")
    True
    """
    digest = hashlib.blake2b(f"deconflict.record:{mechanism}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_record(session: Session, mechanism: str) -> None:
    """Hold a mechanism's record for this transaction (until it commits or rolls back), so that no other
    process appends to it meanwhile; call it before reading the head. A second call in the same transaction
    does nothing.

    PostgreSQL: ``pg_advisory_xact_lock`` on :func:`record_lock_key` (other records are not held up);
    another process's transaction waits here until this one ends, then reads the head it left. SQLite: a
    write statement that changes nothing, so that the driver's deferred ``BEGIN`` takes the database's
    write lock now (as ``BEGIN IMMEDIATE`` would) rather than at the first insert: the whole database is
    held, and another process waits (``busy_timeout``) instead of failing on the primary key.
    """
    locked: set[str] = session.info.setdefault(_LOCKED, set())
    if mechanism in locked:
        return
    conn = connection_of(session)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(_ADVISORY_XACT_LOCK, {"key": record_lock_key(mechanism)})
    elif dialect == "sqlite":
        direct.run(conn, _SQLITE_WRITE_LOCK)
    locked.add(mechanism)


def holds_lock(session: Session, mechanism: str) -> bool:
    """Whether the session's transaction has taken a mechanism's record lock (:func:`lock_record`)."""
    return mechanism in session.info.get(_LOCKED, ())


_ADVISORY_XACT_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_SQLITE_WRITE_LOCK = text("UPDATE ledger SET seq = seq WHERE 0 = 1")
_HEAD = (
    select(LedgerEntry.__table__.c.seq, LedgerEntry.__table__.c.hash)
    .where(LedgerEntry.__table__.c.mechanism_id == bindparam("mechanism"))
    .order_by(LedgerEntry.__table__.c.seq.desc())
    .limit(1)
)
"""The statements every write runs, built once and run on the connection (Core), not through the ORM
session: a statement built per call costs a cache-key walk, and the ORM's execution layer several times
the indexed lookup itself."""


def connection_of(session: Session | Connection) -> Connection:
    """The connection a session's transaction runs on, its pending ORM changes flushed first (as the session's
    own ``execute`` does): for statements built once and run through Core on the hot paths."""
    if isinstance(session, Connection):
        return session
    kept_in: dict[Any, Any] | None = None
    if isinstance(session, Session):  # a stand-in for a session (restore's BatchingSession) answers for itself
        session.flush()  # nothing to do (and next to no cost) when the session holds no pending change
        # The connection stays the same until the session's transaction ends: kept with that transaction, it
        # is not asked of the session again for every statement (a few an entry, each through its layers).
        kept_in = session.info
        kept = kept_in.get(_CONNECTION)
        if kept is not None and kept[0] is session.get_transaction() and kept[0] is not None and kept[0].is_active:
            return cast(Connection, kept[1])  # (a transaction a failed flush ended: the session says so below)
    connection = session.connection()
    if kept_in is not None:
        kept_in[_CONNECTION] = (session.get_transaction(), connection)
    return connection


_HASH_AT = select(LedgerEntry.__table__.c.hash).where(
    LedgerEntry.__table__.c.mechanism_id == bindparam("mechanism"), LedgerEntry.__table__.c.seq == bindparam("seq")
)


def hash_at(session: Session | Connection, mechanism: str, seq: int) -> str | None:
    """The stored hash of entry ``seq`` of a mechanism's record (None: no such entry)."""
    found = direct.rows(connection_of(session), _HASH_AT, {"mechanism": mechanism, "seq": seq})
    return str(found[0][0]) if found else None


def read_head(session: Session | Connection, mechanism: str) -> Head:
    """The chain's head as stored (one indexed lookup)."""
    conn = connection_of(session)
    found = direct.rows(conn, _HEAD, {"mechanism": mechanism})
    return Head(0, GENESIS_HASH) if not found else Head(int(found[0][0]), str(found[0][1]))


_UNREAD: Any = object()
"""No payload read yet (:func:`row_doc`)."""


def append(
    session: Session | Connection,
    *,
    mechanism: str,
    actor: str,
    type: str,
    payload: Any,
    at: datetime,
    sign: Signer,
    after: Head | None = None,
    rows: list[dict[str, Any]] | None = None,
    body: bytes | None = None,
) -> Head:
    """Append one signed entry to a mechanism's chain inside the caller's transaction; returns the new head.

    ``after`` is the chain's current head when the caller keeps it (the single writer does);
    otherwise it is read from the database. ``sign`` signs (or checks a signature made
    elsewhere for) the drafted entry, and may refuse by raising. ``rows``: the row stored is added to it
    (:func:`row_doc` makes it the entry document a read would give). ``body``: the payload's canonical JSON,
    when the caller has made it already.
    """
    last = after if after is not None else read_head(session, mechanism)
    row = draft(mechanism=mechanism, actor=actor, type=type, payload=payload, at=at, after=last, body=body)
    row["key_id"], row["signature"] = sign(row)
    direct.run(connection_of(session), _INSERT, row)
    if rows is not None:
        rows.append(row)
    return Head(row["seq"], row["hash"])


def row_doc(row: dict[str, Any], read: Any = _UNREAD) -> dict[str, Any]:
    """The entry document (:func:`entry_doc`) of a row :func:`append` stored, as reading it back would give
    it: the stored time is the one given (an entry's hash covers its ISO form) and the payload is read from
    the stored text, or is ``read`` when the caller holds it already (what ``json.loads`` reads from that text:
    :func:`~deconflict.record.chain.canonical_read`'s second value, which the caller then no longer changes)."""
    return _doc(*(row[name] for name in _ENTRY_COLUMNS), read=read)


def entry_doc(row: LedgerEntry) -> dict[str, Any]:
    """An entry as a JSON-able document (for export and the API)."""
    return _doc(*(getattr(row, name) for name in _ENTRY_COLUMNS))


def _doc(
    mechanism: str,
    seq: int,
    at: datetime,
    actor: str,
    type_: str,
    payload: str,
    payload_hash: str,
    prev_hash: str,
    hash_: str,
    key_id: str,
    signature: str,
    *,
    read: Any = _UNREAD,
) -> dict[str, Any]:
    """An entry's document from its stored columns, in :data:`_ENTRY_COLUMNS`' order (``read``: the payload
    as read from its text already)."""
    return {
        "mechanism": mechanism,
        "seq": seq,
        "at": iso(at),
        "actor": actor,
        "type": type_,
        "payload": json.loads(payload) if read is _UNREAD else read,
        "payload_hash": payload_hash,
        "prev_hash": prev_hash,
        "hash": hash_,
        "key_id": key_id,
        "signature": signature,
    }


_DOC_COLUMNS = ("seq", "at", "actor", "type", "payload", "payload_hash", "prev_hash", "hash", "key_id", "signature")
"""The columns of an entry document, in its order."""
_ENTRY_COLUMNS = ("mechanism_id", *_DOC_COLUMNS)
"""The same with the mechanism's id first: what :func:`_doc` takes."""
_AFTER = (
    select(*(LedgerEntry.__table__.c[name] for name in _ENTRY_COLUMNS))
    .where(LedgerEntry.__table__.c.mechanism_id == bindparam("mechanism"))
    .where(LedgerEntry.__table__.c.seq > bindparam("after"))
    .order_by(LedgerEntry.__table__.c.seq)
    .limit(bindparam("limit"))
)
"""A mechanism's entries after a sequence number, at most a number of them (:func:`docs_after`)."""
_BETWEEN = _AFTER.where(LedgerEntry.__table__.c.seq <= bindparam("upto"))
"""The same, up to a sequence number."""


def docs_after(
    session: Session | Connection, mechanism: str, after: int, limit: int, *, upto: int | None = None
) -> list[dict[str, Any]]:
    """The entry documents (:func:`entry_doc`) of a mechanism's entries after sequence number ``after`` (up to
    ``upto``), in order, at most ``limit``. Read as plain rows, not ORM objects: an event stream catching up
    reads the record this way, page after page, and building and tracking a ``LedgerEntry`` for each cost more
    than the read and the document together."""
    params = {"mechanism": mechanism, "after": after, "limit": limit}
    if upto is None:
        found = direct.rows(connection_of(session), _AFTER, params)
    else:
        found = direct.rows(connection_of(session), _BETWEEN, params | {"upto": upto})
    return [_doc(*row) for row in found]


_PAYLOADS = (
    select(LedgerEntry.__table__.c.seq, LedgerEntry.__table__.c.type, LedgerEntry.__table__.c.payload)
    .where(LedgerEntry.__table__.c.mechanism_id == bindparam("mechanism"))
    .where(LedgerEntry.__table__.c.seq > bindparam("after"))
    .where(LedgerEntry.__table__.c.seq <= bindparam("upto"))
    .order_by(LedgerEntry.__table__.c.seq)
    .limit(bindparam("limit"))
)
"""A mechanism's entries' sequence numbers, types and payload texts in a range, at most a number of them."""
PAYLOAD_PAGE = 5000
"""Entries :func:`payloads_between` reads at a time."""


def payloads_between(
    session: Session | Connection, mechanism: str, after: int, upto: int, *, page: int = PAYLOAD_PAGE
) -> Iterator[tuple[int, str, Any]]:
    """(sequence number, type, payload) of a mechanism's entries after ``after`` up to ``upto``, in order:
    what the authority rules take in (:func:`deconflict.record.authority.apply`), read as plain rows a page
    at a time. Rebuilding the rules' state from entry 1 (a restart, a transaction rolled back) from ORM
    objects and whole entry documents took 27 µs an entry: 6.7-6.8 s for the first write after a restart at
    250k entries, 1.8 s this way."""
    conn = connection_of(session)
    while after < upto:
        rows = direct.rows(conn, _PAYLOADS, {"mechanism": mechanism, "after": after, "upto": upto, "limit": page})
        if not rows:
            return
        for seq, type_, payload in rows:
            yield seq, type_, json.loads(payload)
        after = rows[-1][0]


def store_docs(session: Session, mechanism: str) -> Iterator[dict[str, Any]]:
    """A mechanism's entries as stored, in order of sequence number, as entry documents.

    Read as plain rows (SQLAlchemy Core, 2,000 at a time), not as ORM objects: building and tracking a
    ``LedgerEntry`` for each cost about 75 µs an entry here, three times the plain read.
    """
    t = LedgerEntry.__table__
    stmt = (
        select(*(t.c[name] for name in _DOC_COLUMNS))
        .where(t.c.mechanism_id == mechanism)
        .order_by(t.c.seq)
        .execution_options(yield_per=2000)
    )
    for seq, at, actor, type_, payload, payload_hash, prev_hash, hash_, key_id, signature in session.execute(stmt):
        yield {
            "seq": seq,
            "at": at,
            "actor": actor,
            "type": type_,
            "payload": _loads(payload),
            "payload_hash": payload_hash,
            "prev_hash": prev_hash,
            "hash": hash_,
            "key_id": key_id,
            "signature": signature,
        }


def verify_store(session: Session, mechanism: str, *, workers: int = 1) -> ChainReport:
    """Recompute a mechanism's chain as stored and check its signatures."""
    return verify_docs(mechanism, store_docs(session, mechanism), workers=workers)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"__unreadable__": text}
