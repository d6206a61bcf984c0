"""When a commit is on the disk: group commit for a SQLite file.

With ``synchronous=FULL`` SQLite syncs its write-ahead log inside every commit, while the writer still holds
the record (0.1-0.2 ms of waiting for the disk here, and 60 µs of CPU). :class:`GroupSync`
instead lets the transaction commit with ``synchronous=NORMAL`` (the log written, not yet synced) and syncs
the log itself afterwards, once for every commit made up to then:

- nothing leaves the process before the sync that covers it: a write's answer waits for it
  (:meth:`Durability.wait`), so does every read's (:class:`deconflict.store.Store` does both), and so do the
  entry listeners that feed the event streams (:meth:`Durability.then`, run in commit order after the sync);
- the next writer works out its entries while the disk syncs the last ones (the wait is taken after the
  record's lock is let go: :meth:`Durability.deferred`), and one sync covers every commit made meanwhile.

A log synced after its commit is as durable as one synced inside it: SQLite wrote the commit's frames before
``COMMIT`` returned, ``fdatasync`` of the log file puts them on the disk, and after a power cut SQLite
recovers every commit whose frames are whole in the log (checksummed in order: never a later commit without
an earlier one). A checkpoint with NORMAL syncs the log before it and the database after it, as with FULL,
and the log's header when it starts the log again. The log's folder entry is synced once, as SQLite does for a
new log; a connection of this module's own keeps SQLite from removing the log while the store is open.

A sync that fails (``EIO``: the disk lost writes) is not retried: the kernel may report a lost page only once,
so a second sync that succeeds proves nothing (PostgreSQL's lesson of 2018). Every write waiting and every
one after it is refused with :class:`DiskFailed` (503), until the operator has checked the disk and restarted.

SQLite publishes a commit made with NORMAL to every connection at once, before anyone syncs it; within the
process the store waits for the sync before answering, but another process on the same file could read the
commit and answer with it a moment (one sync) before it is on the disk. So the service uses group commit only
when it serves alone (``deconflict serve``, ``demo``); ``serve --workers N`` keeps FULL, and so does every
other opening of the database (a CLI command, which may read a commit the server has not synced yet, as
above). Two separate ``serve`` processes on one file would each group their own commits, with that moment of
exposure: run them as ``--workers``, or on PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from deconflict.errors import DeconflictError

__all__ = ["CHECK_EVERY", "DiskFailed", "Durability", "GroupSync", "NotOnDisk", "SyncUnavailable"]

log = logging.getLogger(__name__)

CHECK_EVERY = 1024
"""Every this many syncs, the log's descriptor is checked to be the log's still."""


class NotOnDisk(DeconflictError):
    """A write was committed but is not confirmed on the disk: it must never be answered 2xx."""

    status = 503


class DiskFailed(NotOnDisk):
    """The disk refused to store the record's writes: nothing written since the last good sync is safe."""


class SyncUnavailable(NotOnDisk):
    """The log could not be reached to sync it just now (out of file descriptors, say): the write was stored
    but is not confirmed on the disk."""


class _Lost(Exception):
    """The log can no longer be synced (the sync failed, or the file is gone): the disk is not trusted."""


class Durability:
    """Commits the database makes durable itself (PostgreSQL; SQLite in memory): nothing to wait for."""

    newest = 0
    """Ticket of the newest commit (see :class:`GroupSync`)."""
    synced = 0
    """Every commit up to this ticket is on the disk."""
    syncs = 0
    """Syncs made (each covering every commit since the last)."""
    failed: str | None = None
    """Why the disk is no longer trusted (a sync failed), or None."""

    @property
    def deferring(self) -> bool:
        """Whether this thread is inside :meth:`deferred` (it waits at the end of it)."""
        return False

    def begin_commit(self) -> int:
        """A write transaction is about to commit: its ticket (call :meth:`end_commit` once the commit is done
        or failed). Reserved before the commit, so that a read that sees the commit waits for its sync."""
        return 0

    def end_commit(self, ticket: int) -> None:
        """The commit of ``ticket`` is done (or failed): a sync may now cover it."""

    def committed(self) -> int:
        """A write transaction has just committed: its ticket."""
        ticket = self.begin_commit()
        self.end_commit(ticket)
        return ticket

    def wait(self, ticket: int) -> None:
        """Return once the commit ``ticket`` (and every one before) is on the disk.

        Raises:
            DiskFailed: a sync failed.
        """

    def then(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the newest commit is on the disk (at once here), in commit order."""
        callback()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Within the block, commits and reads of this thread do not wait for the disk; the block's end waits
        for every commit made until then (taken outside a lock held in the block, the disk syncs while the
        next writer works)."""
        yield

    def sync(self) -> None:
        """Put every commit made so far on the disk now (before the database is closed)."""

    def close(self) -> None:
        """Nothing more will be committed (after :meth:`sync`)."""


class _Round:
    """One sync of the log: it covers every commit up to ``target`` (set when it starts). Its writers wait on
    ``woken`` (a condition on the store's lock): all of them when it ends, or one, to sync the next round."""

    __slots__ = ("target", "woken")

    def __init__(self, lock: threading.Lock) -> None:
        self.target = 0
        self.woken = threading.Condition(lock)


class GroupSync(Durability):
    """Group commit for the SQLite database file ``db`` (its write-ahead log beside it, ``<db>-wal``).

    The first writer to wait while no sync runs syncs the log itself, for every commit made until then (a
    writer alone never hands over to another thread); writers that wait meanwhile join the next round, and
    when a sync ends it wakes the writers it covered and one of the next round's, which syncs for all of
    them. A commit is announced before it is made (:meth:`begin_commit`): a read that may have seen it waits
    for it to land and be synced, and no sync claims to cover a commit still being made. ``sync`` is the
    system call that puts a file's data on the disk (``os.fdatasync``, as SQLite uses).

    The callbacks (:meth:`then`) run in the thread that syncs, one at a time, in commit order; they must not
    read the store (their own sync has not ended: refused with an error, never a deadlock).
    """

    def __init__(self, db: Path, *, sync: Callable[[int], None] | None = None) -> None:
        self._db = db
        self._sync: Callable[[int], None] = sync if sync is not None else getattr(os, "fdatasync", os.fsync)
        self._lock = threading.Lock()
        self._landed = threading.Condition(self._lock)
        """Notified when a commit announced is done."""
        self.newest = 0
        self.synced = 0
        self.syncs = 0
        self._inflight: set[int] = set()
        """Tickets announced whose commit is not done yet."""
        self._running: _Round | None = None
        """The sync in progress, if any."""
        self._next = _Round(self._lock)
        """The round the next sync covers (writers join it while a sync runs)."""
        self._after: deque[tuple[int, Callable[[], None]]] = deque()
        self.failed = None
        self._keeper: sqlite3.Connection | None = None
        """A connection of this object's own, open while it syncs: SQLite keeps the log meanwhile."""
        self._fd: int | None = None
        """The log file, kept open between syncs."""
        self._wal: Path | None = None
        self._local = threading.local()

    @property
    def deferring(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def begin_commit(self) -> int:
        with self._lock:
            self.newest += 1
            self._inflight.add(self.newest)
            return self.newest

    def end_commit(self, ticket: int) -> None:
        with self._lock:
            self._inflight.discard(ticket)
            self._landed.notify_all()

    def then(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self.failed is None and (self._after or self.newest > self.synced):
                self._after.append((self.newest, callback))
                return
        if self.failed is None:
            _tell(callback)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            self._local.depth = depth
            if depth == 0:  # what the block committed before it failed is synced all the same
                with suppress(DeconflictError):
                    self.wait(self.newest)
            raise
        self._local.depth = depth
        if depth == 0:
            self.wait(self.newest)

    def sync(self) -> None:
        self.wait(self.newest)

    def wait(self, ticket: int) -> None:
        if getattr(self._local, "telling", False):
            raise RuntimeError("a listener told of a commit may not read the store (its sync has not ended)")
        if ticket <= self.synced and self.failed is None:
            return
        with self._lock:
            while True:
                if self.failed is not None:
                    raise DiskFailed(self.failed)
                if ticket <= self.synced:
                    return
                running = self._running
                if running is None:
                    target = min(self._inflight) - 1 if self._inflight else self.newest
                    if target < ticket:  # a commit up to this ticket is still being made
                        self._landed.wait()
                        continue
                    round_, self._next = self._next, _Round(self._lock)  # this writer syncs, for all
                    round_.target = target
                    self._running = round_
                    break
                (running if ticket <= running.target else self._next).woken.wait()
        self._sync_round(round_)

    def _sync_round(self, round_: _Round) -> None:
        ended = False
        try:
            try:
                self._sync_log()
            except _Lost as e:
                self._fail(str(e))
                raise DiskFailed(self.failed or str(e)) from e
            except OSError as e:  # the log could not be opened: nothing is known; another writer tries again
                log.error("could not sync the record's log: %s", e)
                raise SyncUnavailable(
                    f"the database's log could not be synced just now ({e.strerror or e}); the write was stored "
                    "but is not confirmed on the disk: look before sending it again"
                ) from e
            self._local.telling = True
            while True:  # the callbacks due, in commit order, and those queued meanwhile, before it ends
                with self._lock:
                    due = []
                    while self._after and self._after[0][0] <= round_.target:
                        due.append(self._after.popleft()[1])
                    if not due:
                        self.synced = round_.target
                        self.syncs += 1
                        self._end(round_)
                        ended = True
                        return
                for callback in due:
                    _tell(callback)
        finally:
            self._local.telling = False
            if not ended:
                with self._lock:
                    self._end(round_)

    def _end(self, round_: _Round) -> None:
        """The round is over (held: ``_lock``): its writers look again, and one of the next round's syncs."""
        self._running = None
        round_.woken.notify_all()
        self._next.woken.notify()

    def _sync_log(self) -> None:
        """``fdatasync`` of the log, on a descriptor kept open, and nothing else: on this machine any other
        system call on the file at each sync (opening it, ``stat``) cost 30-50 µs of CPU more, as much as the
        sync itself. The descriptor stays the log's because a connection of this object's own stays open on
        the database: SQLite removes the log only when its last connection closes. Every
        :data:`CHECK_EVERY` syncs that is checked all the same.

        Raises:
            _Lost: the sync failed, or the log is gone (SQLite's connections write to a file no longer named).
            OSError: the log could not be opened.
        """
        if self._fd is None:
            self._open_log()
        elif self.syncs % CHECK_EVERY == 0 and os.fstat(self._fd).st_nlink == 0:
            raise _Lost(f"the write-ahead log {self._wal} was removed while the database was open")
        assert self._fd is not None
        try:
            self._sync(self._fd)
        except OSError as e:
            raise _Lost(f"the disk refused to store the record ({self._wal}: {e.strerror or e})") from e

    def _open_log(self) -> None:
        if self._keeper is None:
            keeper = sqlite3.connect(self._db, check_same_thread=False)
            try:
                keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the log, keeps it
                main = [row[2] for row in keeper.execute("PRAGMA database_list") if row[1] == "main"]
            except BaseException:
                keeper.close()
                raise
            self._keeper = keeper
            self._wal = Path((main[0] if main and main[0] else str(self._db)) + "-wal")  # where SQLite keeps it
        assert self._wal is not None
        try:
            self._fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise _Lost(f"the write-ahead log {self._wal} is not beside the database: commits cannot be synced") from e
        folder = os.open(self._wal.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(folder)  # the log file's name in the folder, once (as SQLite does for a new log)
        finally:
            os.close(folder)

    def close(self) -> None:
        with self._lock:
            if self._running is None:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                if self._keeper is not None:
                    self._keeper.close()
                    self._keeper = None

    def _fail(self, why: str) -> None:
        message = (
            f"{why}; writes since the last good sync may be lost. Nothing more is accepted: the operator must "
            "check the disk and restart the service"
        )
        log.critical("%s", message)
        with self._lock:
            self.failed = message
            self._after.clear()  # never tell a listener of what may not be on the disk
            self._running = None
            self._next.woken.notify_all()
            self._landed.notify_all()


def _tell(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - a listener's failure must not fail writes already on the disk
        log.exception("a listener failed after a commit")
