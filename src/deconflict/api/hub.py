"""Wakes stream clients when the record grows (safe to call from worker threads), keeps count of the
open streams (each belongs to one member and one bearer token, so a member's streams are limited and a
revoked token's streams can be ended), and shares the streams' reading of the newest entries
(:class:`Recent`): woken by one commit, every stream of the mechanism wants the same entries, and one read
of the store serves them all."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KEEP", "Hub", "Recent", "Subscription", "TooManyStreams"]

KEEP = 2000
"""How many of a mechanism's newest entries :class:`Recent` keeps for the streams."""

Reader = Callable[[str, int, int], list[dict[str, Any]]]
"""Reads (mechanism, after, limit) from the store: the entries after ``after``, in order, at most ``limit``."""


class TooManyStreams(Exception):
    """The member already holds as many open streams as the settings allow."""

    def __init__(self, member_id: str, limit: int) -> None:
        super().__init__(f"member {member_id!r} already has {limit} open event streams")
        self.member_id, self.limit = member_id, limit


@dataclass(eq=False)
class Subscription:
    """One open event stream: whose it is, the token that opened it, and its wake-up."""

    mechanism_id: str
    member_id: str
    token: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None
    """Why the stream must end now (its token was revoked), or None while it may go on."""


class Recent:
    """The newest entries of each mechanism's record as the streams of this process read them, shared.

    Entries are kept in order without a gap, as the store gave them (an entry never changes once committed:
    its hash covers it). A stream's read is answered from them when they reach the newest entry this process
    has heard of (:meth:`Hub.publish`); otherwise the store is read (once, whoever asks at the same time
    waits for that read) from the last entry kept, and what it returns must continue the entries kept (its
    first entry's ``prev_hash`` is the last one's ``hash``), else they are dropped and kept anew.
    """

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        """Held while the store is read: whoever asks meanwhile waits, then takes what that read kept."""
        self._heard_lock = threading.Lock()
        """Held to move a mechanism's newest heard entry on (commits are heard from several threads)."""
        self._entries: dict[str, list[dict[str, Any]]] = {}
        self._heard: dict[str, int] = {}
        self.reads = 0
        """How many times the store was read (the rest were answered from the entries kept)."""

    def heard(self, mechanism_id: str, seq: int) -> None:
        """The record reaches at least ``seq`` (a commit in this process or another)."""
        with self._heard_lock:
            if seq > self._heard.get(mechanism_id, 0):
                self._heard[mechanism_id] = seq

    def kept(self, mechanism_id: str, after: int, limit: int) -> list[dict[str, Any]] | None:
        """The entries after ``after`` (at most ``limit``) when those kept answer without reading the store
        (they reach every entry heard of, and nobody is reading it now); None otherwise."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            kept = self._entries.get(mechanism_id, [])
            if kept and kept[0]["seq"] <= after + 1 and kept[-1]["seq"] >= self._heard.get(mechanism_id, 0):
                return self._slice(kept, after, limit)
            return None
        finally:
            self._lock.release()

    def after(
        self, read: Reader, mechanism_id: str, after: int, limit: int, *, fresh: bool = False
    ) -> list[dict[str, Any]]:
        """The entries after ``after`` (at most ``limit``), as ``read`` would give them. ``fresh``: read the
        store whatever is kept (a stream that woke without a commit heard of: another process may have
        written unannounced)."""
        with self._lock:
            kept = self._entries.get(mechanism_id, [])
            if (
                kept
                and not fresh
                and kept[0]["seq"] <= after + 1
                and kept[-1]["seq"] >= self._heard.get(mechanism_id, 0)
            ):
                return self._slice(kept, after, limit)
            if kept and kept[0]["seq"] <= after + 1 <= kept[-1]["seq"] + 1:
                new = read(mechanism_id, kept[-1]["seq"], limit)
                self.reads += 1
                if not new and fresh:  # nothing after what is kept: does the store still hold it?
                    tail = read(mechanism_id, kept[-1]["seq"] - 1, 1)
                    self.reads += 1
                    if not tail or tail[0]["hash"] != kept[-1]["hash"]:
                        # the record was cut back (restored, failed over to a copy without its last entries):
                        # what is kept is no longer the record; read it anew, and hear it from there
                        kept = []
                        new = read(mechanism_id, after, limit)
                        self.reads += 1
                        with self._heard_lock:
                            self._heard[mechanism_id] = 0  # heard again from what the store holds (below)
                if new and kept and (new[0]["seq"] != kept[-1]["seq"] + 1 or new[0]["prev_hash"] != kept[-1]["hash"]):
                    kept = []  # not the record kept (never expected): keep it anew
                    new = read(mechanism_id, after, limit)
                    self.reads += 1
            else:
                kept = []
                new = read(mechanism_id, after, limit)
                self.reads += 1
            kept = kept + new
            found = self._slice(kept, after, limit)
            self._entries[mechanism_id] = kept[-self._keep :]
            if kept:
                self.heard(mechanism_id, kept[-1]["seq"])
            return found

    def committed(self, mechanism_id: str, entries: list[dict[str, Any]]) -> None:
        """Entries a write of this process has just committed, as a read of the store would give them: kept
        when they continue the entries kept (the streams the commit wakes then take them without reading the
        store); left when a stream is reading the store now (that read, or the next, brings them) or when
        they do not continue what is kept."""
        if not entries or not self._lock.acquire(blocking=False):
            return
        try:
            kept = self._entries.get(mechanism_id)
            if kept and entries[0]["seq"] == kept[-1]["seq"] + 1 and entries[0]["prev_hash"] == kept[-1]["hash"]:
                kept += entries
                if len(kept) > 2 * self._keep:  # trimmed now and then, not at each commit
                    del kept[: -self._keep]
        finally:
            self._lock.release()

    @staticmethod
    def _slice(kept: list[dict[str, Any]], after: int, limit: int) -> list[dict[str, Any]]:
        first = after + 1 - kept[0]["seq"] if kept else 0
        return kept[max(first, 0) : max(first, 0) + limit] if first < len(kept) else []


class Hub:
    """Per-mechanism wake-ups for event-stream subscribers, and the open streams per member."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self.closed = False
        """Set when the server is stopping: every stream ends its response instead of waiting."""
        self.recent = Recent()
        """The newest entries, read once for every stream (see :class:`Recent`)."""
        self._pending: set[str] = set()
        """Mechanisms whose wake-up is scheduled on the loop and has not run yet."""
        self._pending_lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._pending_lock:  # a wake-up scheduled on an earlier loop will never run
            self._pending.clear()
        self._loop = loop

    def subscribe(self, mechanism_id: str, member_id: str, token: str, *, limit: int = 0) -> Subscription:
        """A new open stream of ``member_id``.

        Raises:
            TooManyStreams: the member already holds ``limit`` streams (0: no limit).
        """
        self.check_room(mechanism_id, member_id, limit)
        sub = Subscription(mechanism_id, member_id, token)
        self._subscribers[mechanism_id].add(sub)
        return sub

    def check_room(self, mechanism_id: str, member_id: str, limit: int) -> None:
        """Refuse the member another stream when it holds ``limit`` already (0: no limit).

        Raises:
            TooManyStreams: the member already holds ``limit`` streams.
        """
        if limit > 0 and self.streams_of(mechanism_id, member_id) >= limit:
            raise TooManyStreams(member_id, limit)

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers[sub.mechanism_id].discard(sub)

    def streams_of(self, mechanism_id: str, member_id: str) -> int:
        """How many streams the member holds open now."""
        return sum(1 for s in self._subscribers.get(mechanism_id, ()) if s.member_id == member_id)

    def open_streams(self) -> int:
        """How many event streams are open now, over every mechanism (for the operator's metrics)."""
        return sum(len(subs) for subs in self._subscribers.values())

    def publish(self, mechanism_id: str, seq: int) -> None:
        """Called after a commit, from any thread. Commits that come while a wake-up of the mechanism's
        streams is already scheduled share it (each call to the loop from another thread is a system call
        that wakes it): the entry is heard of first, so the streams that wake read it."""
        self.recent.heard(mechanism_id, seq)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._pending_lock:
            if mechanism_id in self._pending:
                return
            self._pending.add(mechanism_id)
        try:
            loop.call_soon_threadsafe(self._wake, mechanism_id)
        except RuntimeError:  # the loop closed meanwhile (the server is stopping)
            with self._pending_lock:
                self._pending.discard(mechanism_id)

    def close(self) -> None:
        """The server is stopping: wake every subscriber so its stream ends now (safe from a signal handler)."""
        self.closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for subs in self._subscribers.values():
            for sub in list(subs):
                sub.wake.set()

    def _wake(self, mechanism_id: str) -> None:
        with self._pending_lock:  # a commit heard from now on schedules a wake-up of its own
            self._pending.discard(mechanism_id)
        for sub in list(self._subscribers.get(mechanism_id, ())):
            sub.wake.set()
