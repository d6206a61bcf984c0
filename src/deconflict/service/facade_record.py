"""The record's half of the :class:`~deconflict.service.Service` facade: replay, the chain, checkpoints and
the entries themselves, one short documented forward per method (the class the facade inherits)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from deconflict.record import chain
from deconflict.service import record
from deconflict.service.context import Context
from deconflict.store.follow import Follower
from deconflict.store.snapshots import Problem, Written

__all__ = ["RecordFacade"]


class RecordFacade:
    """What :class:`~deconflict.service.Service` answers about a mechanism's record."""

    _ctx: Context
    _follower: Follower | None = None

    def follow(self) -> Follower:
        """Follow the commits other processes make to the records, until :meth:`unfollow`: each moves on
        this process's picture of the mechanism (rebuilt at its next use) and is told to the listeners, from
        the follower's thread (:mod:`deconflict.store.follow`). A server process follows while it serves."""
        if self._follower is None:
            self._follower = Follower(self._ctx.store.engine, self._heard)
            self._follower.start()
        return self._follower

    def unfollow(self) -> None:
        """Stop following other processes' commits."""
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    def _heard(self, mechanism_id: str, seq: int) -> None:
        picture = self._ctx.pictures.peek(mechanism_id)
        if picture is None or picture.head.seq < seq:  # not this process's own commit
            self._ctx.pictures.expire(mechanism_id)
        for listener in self._ctx.listeners:
            listener(mechanism_id, seq)

    def replay(self, mechanism_id: str, at: datetime | None) -> dict[str, Any]:
        """The mechanism's state as it stood at ``at`` (now when None), rebuilt from its record alone."""
        return record.replay(self._ctx, mechanism_id, at)

    def replay_stored(self, mechanism_id: str, at: datetime | None, *, snapshots: bool = True) -> dict[str, Any]:
        """:meth:`replay` without looking the mechanism up first; with ``snapshots`` False, from entry 1."""
        return record.replay_stored(self._ctx, mechanism_id, at, snapshots=snapshots)

    def replay_around(
        self, mechanism_id: str, at: datetime, *, window: timedelta | None = None, snapshots: bool = True
    ) -> dict[str, Any]:
        """What was in force, open or awaited at ``at`` and what ended, closed or was sent in the ``window``
        before it (24 hours by default), at a cost that does not grow with the record; with ``snapshots``
        False, from entry 1."""
        if window is None:
            return record.replay_around(self._ctx, mechanism_id, at, snapshots=snapshots)
        return record.replay_around(self._ctx, mechanism_id, at, window=window, snapshots=snapshots)

    def write_snapshots(self, mechanism_id: str, *, every: int | None = None, budget: int = 1) -> list[Written]:
        """Write the replay snapshots due on the mechanism's record (every ``every``-th entry, by default
        :data:`~deconflict.store.snapshots.EVERY`; at most ``budget`` of them); the duty loop does at each tick."""
        return record.write_snapshots(self._ctx, mechanism_id, every=every, budget=budget)

    def check_snapshots(
        self, mechanism_id: str, *, progress: Callable[[int, int, int], None] | None = None
    ) -> tuple[int, list[Problem]]:
        """Rebuild the record from entry 1 and compare every replay snapshot with it: (checked, problems);
        ``progress`` is told (snapshots checked, snapshots kept, entry reached) after each one."""
        return record.check_snapshots(self._ctx, mechanism_id, progress=progress)

    def verify(self, mechanism_id: str) -> chain.ChainReport:
        """Recompute the mechanism's record chain."""
        return record.verify(self._ctx, mechanism_id)

    def checkpoint(self, mechanism_id: str, *, as_of: datetime | None = None) -> dict[str, Any] | None:
        """Sign the chain's head now (unless the last checkpoint already covers it); returns it or None.
        ``as_of``: as it stood at that earlier instant (:func:`deconflict.service.record.checkpoint`)."""
        return record.checkpoint(self._ctx, mechanism_id, as_of=as_of)

    def latest_checkpoint_seq(self, mechanism_id: str) -> int:
        """The newest checkpoint's sequence number (0: none), without a query once known."""
        return record.latest_checkpoint_seq(self._ctx, mechanism_id)

    def checkpoints(
        self,
        mechanism_id: str,
        *,
        after: int = 0,
        limit: int = 1000,
        latest: bool = False,
        with_cosignatures: bool = False,
    ) -> list[dict[str, Any]]:
        """Signed checkpoints of entries after ``after``, oldest first (only the newest with ``latest``);
        with ``with_cosignatures``, each note carries every party's cosignature collected so far."""
        return record.checkpoints(
            self._ctx, mechanism_id, after=after, limit=limit, latest=latest, with_cosignatures=with_cosignatures
        )

    def entries_after(self, mechanism_id: str, after: int, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Record entries with a sequence number above ``after``, in order (at most ``limit``)."""
        return record.entries_after(self._ctx, mechanism_id, after, limit=limit)

    def record_ids(self) -> list[str]:
        """The mechanisms that have a record in this database, in order."""
        return record.record_ids(self._ctx)

    def record(self, mechanism_id: str, *, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """Every entry of a mechanism's record in order (up to sequence number ``upto``), read in pages."""
        return record.record(self._ctx, mechanism_id, upto=upto)

    def head(self, mechanism_id: str) -> chain.Head:
        """The record's head: the last entry's sequence number and hash (0 and the genesis hash when empty)."""
        return record.head(self._ctx, mechanism_id)
