"""Wakes stream clients when the record grows (safe to call from worker threads), and keeps count of the
open streams: each belongs to one member and one bearer token, so a member's streams are limited and a
revoked token's streams can be ended."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["Hub", "Subscription", "TooManyStreams"]


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


class Hub:
    """Per-mechanism wake-ups for event-stream subscribers, and the open streams per member."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self.closed = False
        """Set when the server is stopping: every stream ends its response instead of waiting."""

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, mechanism_id: str, member_id: str, token: str, *, limit: int = 0) -> Subscription:
        """A new open stream of ``member_id``.

        Raises:
            TooManyStreams: the member already holds ``limit`` streams (0: no limit).
        """
        if limit > 0 and self.streams_of(mechanism_id, member_id) >= limit:
            raise TooManyStreams(member_id, limit)
        sub = Subscription(mechanism_id, member_id, token)
        self._subscribers[mechanism_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers[sub.mechanism_id].discard(sub)

    def streams_of(self, mechanism_id: str, member_id: str) -> int:
        """How many streams the member holds open now."""
        return sum(1 for s in self._subscribers.get(mechanism_id, ()) if s.member_id == member_id)

    def open_streams(self) -> int:
        """How many event streams are open now, over every mechanism (for the operator's metrics)."""
        return sum(len(subs) for subs in self._subscribers.values())

    def publish(self, mechanism_id: str, seq: int) -> None:
        """Called after a commit, from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._wake, mechanism_id)

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
        for sub in list(self._subscribers.get(mechanism_id, ())):
            sub.wake.set()
