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
    max_streams_per_member: int = 8
    """Event streams one member may hold open at once; the next gets 429 with ``Retry-After``."""
    session_check_s: float = 1.0
    """How often open event streams check that their token is still live: a revoked token's stream ends
    within this time (and at its next wake-up)."""
    auth_failures: int = 30
    """Failed authentications (a token presented that is unknown or revoked) one client address may make
    within ``auth_window_s``; beyond, every request from it that presents a token gets 429 until the
    window has moved on."""
    auth_window_s: float = 60.0
    writes_per_member: int = 600
    """Writes (POST, PUT, PATCH, DELETE) one member may make within ``writes_window_s`` (0: no limit); a
    duty officer writes a few a minute, so only a runaway client meets it."""
    writes_window_s: float = 60.0
    request_timeout_s: float = 10.0
    """Time a client has to send a whole request (headers and body) once it started; a slow or half-sent
    request is answered 408 and its connection closed (served by ``deconflict serve``/``demo``)."""
    max_connections: int = 1000
    """Connections served at once (uvicorn's ``limit_concurrency``: 503 beyond)."""
    docs: bool = False
    """Serve the interactive API documentation at ``/docs`` and ``/redoc`` (``serve --docs``); the
    OpenAPI document at ``/openapi.json`` is always served."""
    clock: Clock = field(default=system_clock)
