"""Settings of the HTTP service, built once and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from deconflict.clock import Clock, system_clock

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """How the service runs."""

    db: str = "deconflict.db"
    """Database URL, or a path to an SQLite file."""
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576
    """Largest request body accepted (413 above)."""
    stream_keepalive_s: float = 15.0
    """How long a quiet event stream waits before it checks again."""
    tick_s: float = 1.0
    """How often the hotline checks for escalations and line checks that fell due (0: never)."""
    checkpoint_interval_s: float = 60.0
    """How often (at most, on the service's clock) the service signs a checkpoint of each record's head
    when it has moved; checked at each tick, so never more often than ``tick_s``."""
    clock: Clock = field(default=system_clock)
