"""Wakes stream clients when the record grows; safe to call from worker threads."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Hub:
    """Per-mechanism wake-ups for event-stream subscribers."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.closed = False
        """Set when the server is stopping: every stream ends its response instead of waiting."""

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, mechanism_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._subscribers[mechanism_id].add(event)
        return event

    def unsubscribe(self, mechanism_id: str, event: asyncio.Event) -> None:
        self._subscribers[mechanism_id].discard(event)

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
        for events in self._subscribers.values():
            for event in list(events):
                event.set()

    def _wake(self, mechanism_id: str) -> None:
        for event in list(self._subscribers.get(mechanism_id, ())):
            event.set()
