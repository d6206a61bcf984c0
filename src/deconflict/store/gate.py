"""One writer at a time per record across every process on the database, for the whole of a use case.

The record's own lock (:func:`deconflict.store.ledger.lock_record`) is taken when the first entry is
appended, after the use case has worked out what to write from its picture; when another process
appended meanwhile, the writer finds the head moved and the use case runs again on a fresh picture
(:class:`deconflict.service.context.StaleRecord`). Two busy processes would keep beating each other to
it, and a write could run out of retries. The gate is taken before the use case starts: a second
process waits at the gate instead of computing on a picture that is about to go stale, so a write is
run again at most once (when its own picture was stale on entry), never starved.

- PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on a connection of its own, keyed
  apart from the record's transaction-level lock; released on the way out, and by the server when the
  connection dies (the connection is then thrown away, never pooled with the lock still held).
- SQLite: an exclusive ``flock`` on a file beside the database (``<db>-gate``, like SQLite's own
  ``-wal`` and ``-shm``): every process on the machine that opens the database waits there (SQLite is
  only safe for several processes on one machine, on a local disk). An in-memory database: no gate.

The gate is an optimisation of fairness, not of safety: the record's lock and its primary key still
refuse a forked chain if some writer came in without it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL, Engine, text
from sqlalchemy.exc import OperationalError

__all__ = ["WAIT_S", "Gate", "GateTimeout", "gate_key", "sqlite_file", "sqlite_uri"]

WAIT_S = 10.0
"""How long a write waits at the gate (as long as SQLite's busy timeout) before it is refused as busy."""


def sqlite_file(url: URL) -> Path | None:
    """The SQLite database file a URL names (None: another database, one in memory, or a ``file:`` URI).

    >>> from sqlalchemy import make_url
    >>> sqlite_file(make_url("sqlite:////srv/d.db")), sqlite_file(make_url("sqlite:///:memory:"))
    (PosixPath('/srv/d.db'), None)
    """
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_uri(path: Path, mode: str) -> str:
    """SQLite's URI of the file ``path`` opened in ``mode`` (``ro``, ``rw``) for ``sqlite3.connect(..., uri=True)``:
    the path quoted, so that a name holding '%', '?' or '#' is the file opened (not 'a b.db' for 'a%20b.db', nor
    'a' for 'a?b.db').

    >>> sqlite_uri(Path("/srv/case 7/a%20b?.db"), "ro")
    'file:///srv/case%207/a%2520b%3F.db?mode=ro'
    """
    return f"{path.absolute().as_uri()}?mode={mode}"


class GateTimeout(Exception):
    """Another process held the record's gate for longer than a write may wait (hung, or overloaded)."""


def gate_key(mechanism: str) -> int:
    """The advisory lock key of a record's gate on PostgreSQL (apart from the record's own lock key).

    >>> gate_key("tr-il-syria") != gate_key("other")
    True
    """
    digest = hashlib.blake2b(f"deconflict.gate:{mechanism}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Gate:
    """The gate of a store's records (one per :class:`deconflict.store.Store`)."""

    def __init__(self, engine: Engine, wait_s: float = WAIT_S) -> None:
        self._engine = engine
        self.wait_s = wait_s
        self._dialect = engine.dialect.name
        database = sqlite_file(engine.url)
        self._path = database.with_name(database.name + "-gate") if database is not None else None
        self._held = threading.local()

    def held_since(self, mechanism: str) -> float | None:
        """When (monotonic seconds) this thread took the gate of ``mechanism``'s record, or None when it does
        not hold it. A picture whose head was compared with the stored head since then is the record's: no
        writer that passes the gate can have appended meanwhile."""
        since: dict[str, float] = self._held.__dict__.setdefault("mechanisms", {})
        return since.get(mechanism)

    @contextmanager
    def hold(self, mechanism: str) -> Iterator[None]:
        """Hold the gate of ``mechanism``'s record until the block ends (re-entrant within a thread).

        Raises:
            GateTimeout: another process held it for longer than :attr:`wait_s`.
        """
        held: dict[str, float] = self._held.__dict__.setdefault("mechanisms", {})
        if mechanism in held:
            yield
            return
        try:
            if self._dialect == "postgresql":
                with self._advisory(mechanism):
                    held[mechanism] = time.monotonic()
                    yield
            elif self._path is not None:
                with self._flock():
                    held[mechanism] = time.monotonic()
                    yield
            else:
                held[mechanism] = time.monotonic()
                yield
        finally:
            held.pop(mechanism, None)

    @contextmanager
    def _advisory(self, mechanism: str) -> Iterator[None]:
        key = gate_key(mechanism)
        conn = self._engine.connect()
        try:
            conn.execute(text(f"SET LOCAL lock_timeout = {int(self.wait_s * 1000)}"))  # this transaction only
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            conn.commit()
        except OperationalError as e:
            conn.invalidate()
            conn.close()
            if getattr(e.orig, "sqlstate", None) == "55P03":  # lock_not_available: the wait ran out
                raise GateTimeout(f"{mechanism}: another process held the record for over {self.wait_s:g} s") from e
            raise
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
            except Exception:  # noqa: BLE001 - the connection is gone: so is its lock (thrown away below)
                conn.invalidate()
            conn.close()

    @contextmanager
    def _flock(self) -> Iterator[None]:
        assert self._path is not None
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.wait_s
            pause = 0.001
            while True:  # flock has no timeout of its own: try, and wait a little longer each time
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GateTimeout(f"another process held the database for over {self.wait_s:g} s") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.02)
            yield
        finally:
            os.close(fd)  # closing the file releases the lock
