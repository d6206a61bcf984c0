"""When a commit is on the disk: group commit for a SQLite file.

With ``synchronous=FULL`` SQLite syncs its write-ahead log inside every commit, while the writer still holds
the record (about 0.15 ms of waiting for the disk here, a fifth of a hotline message). :class:`GroupSync`
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
an earlier one). A log SQLite has checkpointed and removed needs nothing (with NORMAL a checkpoint syncs the
log before it and the database after it); a new log file also has its folder synced once, as SQLite does.

A sync that fails (``EIO``: the disk lost writes) is not retried: the kernel may report a lost page only once,
so a second sync that succeeds proves nothing (PostgreSQL's lesson of 2018). Every write waiting and every
one after it is refused with :class:`DiskFailed` (503), until the operator has checked the disk and restarted.

With several processes on one file each syncs the log for its own commits (a sync of the file covers every
process's frames in it). An answer of one process may carry another's entry up to one sync (about 0.15 ms)
before that process has synced it; PostgreSQL (the database for several servers) commits durably itself.
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

__all__ = ["CHECK_EVERY", "DiskFailed", "Durability", "GroupSync"]

log = logging.getLogger(__name__)

CHECK_EVERY = 1024
"""Every this many syncs, the log's descriptor is checked to be the log's still."""


class DiskFailed(DeconflictError):
    """The disk refused to store the record's writes: nothing written since the last good sync is safe."""

    status = 503


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

    def committed(self) -> int:
        """A write transaction has just committed: its ticket."""
        return 0

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
    """Group commit for the SQLite database whose write-ahead log is ``wal`` (``<db>-wal``).

    The first writer to wait while no sync runs syncs the log itself, for every commit made until then (a
    writer alone never hands over to another thread); writers that wait meanwhile join the next round, and
    when a sync ends it wakes the writers it covered and one of the next round's, which syncs for all of
    them. ``sync`` is the system call that puts a file's data on the disk (``os.fdatasync``, as SQLite uses).
    """

    def __init__(self, wal: Path, *, sync: Callable[[int], None] = os.fdatasync) -> None:
        self._wal = wal
        self._sync = sync
        self._lock = threading.Lock()
        self.newest = 0
        self.synced = 0
        self.syncs = 0
        self._running: _Round | None = None
        """The sync in progress, if any."""
        self._next = _Round(self._lock)
        """The round the next sync covers (writers join it while a sync runs)."""
        self._after: deque[tuple[int, Callable[[], None]]] = deque()
        self.failed = None
        self._db = wal.with_name(wal.name.removesuffix("-wal"))
        self._keeper: sqlite3.Connection | None = None
        """A connection of this object's own, open while it syncs: the log is not removed meanwhile."""
        self._fd: int | None = None
        """The log file, kept open between syncs."""
        self._local = threading.local()

    @property
    def deferring(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def committed(self) -> int:
        with self._lock:
            self.newest += 1
            return self.newest

    def then(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self.failed is None and (self._after or self.newest > self.synced):
                self._after.append((self.newest, callback))
                return
        if self.failed is None:
            callback()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            self._local.depth = depth
            if depth == 0:  # what the block committed before it failed is synced all the same
                with suppress(DiskFailed):
                    self.wait(self.newest)
            raise
        self._local.depth = depth
        if depth == 0:
            self.wait(self.newest)

    def sync(self) -> None:
        self.wait(self.newest)

    def wait(self, ticket: int) -> None:
        if ticket <= self.synced and self.failed is None:
            return
        with self._lock:
            while True:
                if self.failed is not None:
                    raise DiskFailed(self.failed)
                if ticket <= self.synced:
                    return
                running = self._running
                if running is None:  # nobody syncs: this writer does, for every commit made until now
                    round_, self._next = self._next, _Round(self._lock)
                    round_.target = self.newest
                    self._running = round_
                    break
                (running if ticket <= running.target else self._next).woken.wait()
        self._sync_round(round_)

    def _sync_round(self, round_: _Round) -> None:
        try:
            self._sync_log()
        except OSError as e:
            self._fail(e, round_)
            raise DiskFailed(self.failed or str(e)) from e
        except BaseException:
            with self._lock:
                self._running = None
                round_.woken.notify_all()
                self._next.woken.notify()
            raise
        with self._lock:
            due = []
            while self._after and self._after[0][0] <= round_.target:
                due.append(self._after.popleft()[1])
        for callback in due:  # in commit order, before the next sync begins
            try:
                callback()
            except Exception:  # noqa: BLE001 - a listener's failure must not fail writes already on the disk
                log.exception("a listener failed after a commit")
        with self._lock:
            self.synced = round_.target
            self.syncs += 1
            self._running = None
            round_.woken.notify_all()
            self._next.woken.notify()  # one of the next round's writers syncs for it (none waiting: nothing)

    def _sync_log(self) -> None:
        """``fdatasync`` of the log, on a descriptor kept open, and nothing else: on this machine any other
        system call on the file at each sync (opening it, ``stat``) cost 30-50 µs of CPU more, as much as the
        sync itself. The descriptor stays the log's because a connection of this object's own stays open on
        the database: SQLite removes the log only when its last connection closes. Every
        :data:`CHECK_EVERY` syncs the descriptor is checked all the same (a log removed after all is opened
        again, its folder entry synced)."""
        if self._fd is None or self.syncs % CHECK_EVERY == 0 and os.fstat(self._fd).st_nlink == 0:
            self._open_log()
            if self._fd is None:
                return  # no log at all: every commit is in the database file, synced by a checkpoint
        self._sync(self._fd)

    def _open_log(self) -> None:
        self._close_log()
        if self._keeper is None:
            self._keeper = sqlite3.connect(self._db, check_same_thread=False)
            self._keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the log, keeps it
        try:
            self._fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        folder = os.open(self._wal.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(folder)  # the log file's name in the folder, once (as SQLite does for a new log)
        finally:
            os.close(folder)

    def _close_log(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            if self._running is None:
                self._close_log()
                if self._keeper is not None:
                    self._keeper.close()
                    self._keeper = None

    def _fail(self, e: OSError, round_: _Round) -> None:
        message = (
            f"the disk refused to store the record ({self._wal.name}: {e.strerror or e}); writes since the last "
            "good sync may be lost. Nothing more is accepted: the operator must check the disk and restart the "
            "service"
        )
        log.critical("%s", message)
        with self._lock:
            self.failed = message
            self._after.clear()  # never tell a listener of what may not be on the disk
            self._running = None
            round_.woken.notify_all()
            self._next.woken.notify_all()
