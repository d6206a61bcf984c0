"""Rate limits of the HTTP service: failed authentications per client address, writes per member.

Each is a sliding window on the service's clock (``Settings.clock``, so tests pin time instead of
sleeping): at most ``limit`` events per key within ``window_s``; beyond, the caller gets 429 with
``Retry-After`` saying when the oldest event leaves the window.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from fastapi import HTTPException

from deconflict.api.settings import Settings
from deconflict.clock import Clock

__all__ = ["KnownTokens", "Limits", "SlidingWindow", "too_many"]

MAX_KEYS = 10_000
"""Keys kept before the idle ones are forgotten (bounds the memory a spray of addresses can take)."""


@dataclass
class SlidingWindow:
    """At most ``limit`` events per key within ``window_s`` seconds of ``clock`` (limit 0: no limit)."""

    limit: int
    window_s: float
    clock: Clock
    _events: dict[Hashable, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _now(self) -> float:
        return self.clock().timestamp()

    def wait_s(self, key: Hashable) -> int:
        """Whole seconds before ``key`` may act again (0: now)."""
        if self.limit <= 0:
            return 0
        now = self._now()
        with self._lock:
            events = self._events.get(key)
            if not events:
                return 0
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) < self.limit:
                return 0
            return max(1, math.ceil(events[-self.limit] + self.window_s - now))

    def hit(self, key: Hashable) -> None:
        """Count one event of ``key`` now."""
        if self.limit <= 0:
            return
        now = self._now()
        with self._lock:
            if len(self._events) >= MAX_KEYS and key not in self._events:
                self._forget_idle(now)
            events = self._events.setdefault(key, deque())
            events.append(now)
            while len(events) > self.limit:
                events.popleft()

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window_s]
        for k in idle:
            del self._events[k]
        if len(self._events) >= MAX_KEYS:  # all busy: forget the oldest half rather than grow
            for k in sorted(self._events, key=lambda k: self._events[k][-1])[: MAX_KEYS // 2]:
                del self._events[k]


@dataclass
class KnownTokens:
    """The tokens each client address has presented successfully (their hashes, the latest ``per_address``).

    While an address is slowed down for failed authentications, a token it had already used successfully
    still passes: the duty officer whose page or terminal shares an address with a guessing client is not
    locked out. This is no oracle: a token first presented during the slow-down gets 429 whether or not
    it is valid.
    """

    per_address: int = 32
    _seen: dict[str, OrderedDict[bytes, None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _hash(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def add(self, address: str, token: str) -> None:
        key = self._hash(token)
        with self._lock:
            if address not in self._seen and len(self._seen) >= MAX_KEYS:
                self._seen.pop(next(iter(self._seen)))
            seen = self._seen.setdefault(address, OrderedDict())
            seen[key] = None
            seen.move_to_end(key)
            while len(seen) > self.per_address:
                seen.popitem(last=False)

    def __contains__(self, item: tuple[str, str]) -> bool:
        address, token = item
        with self._lock:
            return self._hash(token) in self._seen.get(address, {})


@dataclass
class Limits:
    """The service's rate limits, built from its settings."""

    auth_failures: SlidingWindow
    writes: SlidingWindow
    known: KnownTokens = field(default_factory=KnownTokens)

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            SlidingWindow(settings.auth_failures, settings.auth_window_s, settings.clock),
            SlidingWindow(settings.writes_per_member, settings.writes_window_s, settings.clock),
        )


def too_many(detail: str, wait_s: int) -> HTTPException:
    """A 429 answer with ``Retry-After``."""
    return HTTPException(429, f"{detail}; retry in {wait_s} s", {"Retry-After": str(wait_s)})
