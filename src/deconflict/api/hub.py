"""Wakes stream clients when the record grows; safe to call from worker threads."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Hub:
    """Per-mechanism wake-ups for event-stream subscribers."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[asyncio.Event]] = defaultdict(set)

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

    def _wake(self, mechanism_id: str) -> None:
        for event in list(self._subscribers.get(mechanism_id, ())):
            event.set()
