"""Operations: ``/healthz`` (the process answers), ``/readyz`` (it can serve: database reachable,
migrations at head, duty loop running), ``/metrics`` (Prometheus), and :class:`Observe`, the middleware
that times and logs every request.

None of the three needs a token: a load balancer, systemd or Prometheus calls them from inside the
deployment, and they say nothing about any party's plans. ``/metrics`` holds counts only (notices,
conflicts by kind, overdue messages by rung, line states by party, record heads, checkpoint age), never
an id, a geometry or a time of an activity; labels are the mechanism id, party codes, conflict kinds and
rung names, all public to every member. They are left out of ``/openapi.json``, which is the members'
contract; ``deploy/README.md`` documents them.

Figures that live in the database are read when Prometheus scrapes (:mod:`deconflict.api.metrics`), so
every process reports the same figures and no use case needs to count anything. Request latency is the
only figure kept in the process (``Watch.latency``, by route template, method and status class). Both
``/readyz`` and ``/metrics`` run one database read at a time (:class:`SingleFlight`), however many ask.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconflict.api.metrics import StoreCollector, lease_state
from deconflict.api.settings import Settings
from deconflict.logs import request_logger
from deconflict.service import Service
from deconflict.store.gate import sqlite_file, sqlite_uri

log = logging.getLogger("deconflict.api.ops")

__all__ = ["Observe", "Routes", "SingleFlight", "Watch", "install", "readiness"]

T = TypeVar("T")

OPS_PATHS = ("/healthz", "/readyz", "/metrics")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TICKS_LATE = 5
"""The duty loop is late (not ready) when its last pass is older than this many tick periods..."""
TICK_GRACE_S = 5.0
"""... and than this many seconds (a tick that signs a checkpoint may take a second or two)."""
PROBE_TIMEOUT_S = 3.0
"""How long ``/readyz`` waits for the database before it says unreachable."""
KNOWN_PATHS = 4096
"""Paths whose route template :class:`Routes` remembers (then it forgets them all and starts again)."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class SingleFlight:
    """One computation at a time, its answer shared: a caller that arrives while one runs waits for it and
    gets its answer (or its error). The operations routes need no token, so a flood of ``/readyz`` or
    ``/metrics`` must not become a flood of database connections and queries: however many ask at once,
    the database sees one probe and one set of counts in flight."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = False
        self._round = 0
        self.waiting = 0
        """Callers waiting for the computation in flight."""
        self._answer: tuple[Any, BaseException | None] = (None, None)

    def __call__(self, compute: Callable[[], T]) -> T:
        with self._cond:
            if self._running:
                waiting_for = self._round
                self.waiting += 1
                while self._round == waiting_for:
                    self._cond.wait()
                self.waiting -= 1
                shared, failed = self._answer
                if failed is not None:
                    raise failed
                return cast(T, shared)
            self._running = True
        outcome: tuple[Any, BaseException | None] = (None, None)
        try:
            answer = compute()
            outcome = (answer, None)
            return answer
        except BaseException as e:
            outcome = (None, e)
            raise
        finally:
            with self._cond:
                self._running = False
                self._answer = outcome
                self._round += 1
                self._cond.notify_all()


@dataclass
class Watch:
    """What operations know of one application: when its duty loop last completed a pass, its database
    probe, the metrics registry. ``monotonic`` is the process's clock (the service's clock may be pinned
    or moved by tests; the loop's liveness is a matter of real seconds)."""

    settings: Settings
    service: Service
    monotonic: Callable[[], float] = time.monotonic
    started: float = 0.0
    last_tick: float | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _probe: Engine | None = None
    _heads: tuple[str, ...] | None = None
    readiness_once: SingleFlight = field(default_factory=lambda: SingleFlight())
    figures_once: SingleFlight = field(default_factory=lambda: SingleFlight())

    def __post_init__(self) -> None:
        self.started = self.monotonic()
        self.latency = Histogram(
            "deconflict_http_request_duration_seconds",
            "Time to answer an HTTP request (an event stream: its whole life), by route template, method and "
            "status class.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "deconflict_write_batch_size",
            "Plain writes taken together (those that arrived while the ones before them were being written), by "
            "the function that takes them: send_messages (hotline messages: those that pass their checks and "
            "settle nothing are recorded in one transaction, the others answered or sent on their own) and "
            "notify_many (notices: recorded in one transaction, in order, each checked against those before it).",
            ["batch"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreCollector(self))  # the database's figures, read at each scrape

    def ticked(self) -> None:
        """The duty loop completed a pass (whether or not this process holds the duty lease)."""
        self.last_tick = self.monotonic()

    def tick_age_s(self) -> float | None:
        """Seconds since the duty loop's last completed pass (None: not yet)."""
        return None if self.last_tick is None else self.monotonic() - self.last_tick

    def probe(self) -> Engine:
        """An engine that opens a new connection for each probe (no pool): a database that cannot be
        reached any more is seen even while the service's pooled connections still hold it open. An
        SQLite file is opened read-write without being created, so a probe never leaves an empty file."""
        if self._probe is None:
            url = self.service.store.engine.url
            if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
                path = Path(url.database)
                self._probe = create_engine(
                    "sqlite://",
                    poolclass=NullPool,
                    creator=lambda: sqlite3.connect(sqlite_uri(path, "rw"), uri=True, timeout=PROBE_TIMEOUT_S),
                )
            elif url.get_backend_name() == "sqlite":
                self._probe = self.service.store.engine  # in memory: only the service's own connection sees it
            else:
                args = {"connect_timeout": int(PROBE_TIMEOUT_S)} if url.get_backend_name() == "postgresql" else {}
                self._probe = create_engine(url, poolclass=NullPool, connect_args=args)
        return self._probe

    def heads(self) -> tuple[str, ...]:
        """The migrations' head revisions (one: the chain is linear)."""
        if self._heads is None:
            from deconflict.store import head_revision

            self._heads = (head_revision(),)
        return self._heads


DISK_LOW_BYTES = 16 * 2**20
"""Below this much free space on an SQLite database's disk, ``/readyz`` says the disk is full: SQLite refuses a
write it cannot store whole (SQLITE_FULL), and the service would refuse every write."""


def disk_left(watch: Watch) -> int | None:
    """Bytes free on the disk of the service's SQLite file (None: not a file on this machine)."""
    database = sqlite_file(watch.service.store.engine.url)
    if database is None:
        return None
    try:
        return shutil.disk_usage(database.parent).free
    except OSError:
        return None


def readiness(watch: Watch) -> dict[str, dict[str, Any]]:
    """Each readiness check, ``{"ok": bool, "detail": words}``: ``database`` (a new connection answers),
    ``migrations`` (its revision is the head the code knows), ``ticker`` (the duty loop completed a pass
    within the last ``TICKS_LATE`` tick periods)."""
    from alembic.runtime.migration import MigrationContext

    checks: dict[str, dict[str, Any]] = {}
    current: tuple[str, ...] | None = None
    try:
        with watch.probe().connect() as conn:
            conn.execute(text("SELECT 1"))
            current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
            standby = conn.dialect.name == "postgresql" and bool(
                conn.execute(text("SELECT pg_is_in_recovery()")).scalar()
            )
        checks["database"] = (
            {
                "ok": False,
                "detail": "a standby: it takes no writes (name the primary, or every host with "
                "target_session_attrs=read-write)",
            }
            if standby
            else {"ok": True, "detail": "reachable"}
        )
    except Exception as e:  # noqa: BLE001 - any failure to reach the database is the answer itself
        # the driver's words may name hosts, ports, users or paths: they go to the log, not to the
        # unauthenticated answer
        log.warning("readiness: the database cannot be reached: %s", str(e).splitlines()[0] if str(e) else "")
        checks["database"] = {"ok": False, "detail": f"unreachable: {type(e).__name__} (the service's log says why)"}
    if watch.service.store.durable.failed is not None:  # a sync of the record failed: no write is safe
        checks["database"] = {"ok": False, "detail": "its disk refused to store writes: check the disk, then restart"}
    elif checks["database"]["ok"] and (left := disk_left(watch)) is not None and left < DISK_LOW_BYTES:
        checks["database"] = {
            "ok": False,
            "detail": f"its disk is full ({left // 2**20} MiB left): writes are refused until space is freed",
        }
    heads = watch.heads()
    if current is None:
        checks["migrations"] = {"ok": False, "detail": "unknown: the database cannot be reached"}
    elif current == heads:
        checks["migrations"] = {"ok": True, "detail": f"at head {', '.join(heads)}"}
    else:
        at = ", ".join(current) or "none (an empty database)"
        checks["migrations"] = {"ok": False, "detail": f"at {at}, the code's head is {', '.join(heads)}"}
    checks["ticker"] = _ticker_check(watch)
    if checks["database"]["ok"]:
        checks["ticker"]["lease"] = lease_state(watch.service)  # several processes: which one ticks
    return checks


def _ticker_check(watch: Watch) -> dict[str, Any]:
    tick_s = watch.settings.tick_s
    if tick_s <= 0:
        return {"ok": False, "detail": "the duty loop is off in this process (tick_s is 0)"}
    limit = max(TICKS_LATE * tick_s, TICK_GRACE_S)
    age = watch.tick_age_s()
    if age is None:
        up = watch.monotonic() - watch.started
        return {"ok": False, "detail": f"the duty loop has not completed a pass yet (started {up:.1f} s ago)"}
    if age > limit:
        return {"ok": False, "detail": f"the duty loop last completed a pass {age:.1f} s ago (limit {limit:g} s)"}
    return {"ok": True, "detail": f"last pass {age:.1f} s ago (every {tick_s:g} s)"}


def documented_paths(app: FastAPI) -> list[str]:
    """The paths of the application's OpenAPI document, read from its routes as FastAPI reads them to write
    it (each route of the routers, with their prefix, that the document shows), without writing the document:
    that took 0.2-0.4 s of CPU at every server's start, against 0.1 s (tests/api/test_ops.py holds the two
    equal)."""
    paths: dict[str, None] = {}
    for context in iter_route_contexts(app.routes):
        path = context.path_format
        if path is not None and isinstance(context.original_route, APIRoute) and context.include_in_schema:
            paths[path] = None
    return list(paths)


class Routes:
    """The application's route templates, to name a request's route without its ids: every path of the
    OpenAPI document (the routers' routes, with their prefix: :func:`documented_paths`) and the application's
    own routes and mounts (the page, ``/web/{path}``, these operations routes). Built on first use, once every route
    is in place; templates with fewer parameters are tried first, so a literal segment wins."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], str]] | None = None
        self._known: dict[str, str] = {}
        """path → its template, for the paths seen lately (a write's path repeats; at most ``KNOWN_PATHS``)."""

    def table(self) -> list[tuple[re.Pattern[str], str]]:
        if self._table is None:
            templates = {path: path for path in documented_paths(self.app)}
            for route in self.app.router.routes:
                path = getattr(route, "path", None)
                if isinstance(route, Mount) and isinstance(path, str):
                    templates[f"{path}/{{path:path}}"] = f"{path}/{{path}}"
                elif isinstance(path, str):
                    templates[path] = path
            ordered = sorted(templates.items(), key=lambda t: (t[0].count("{"), -len(t[0]), t[0]))
            self._table = [(compile_path(pattern)[0], label) for pattern, label in ordered]
        return self._table

    def template(self, path: str) -> str:
        """The template ``path`` matches (``/api/v1/mechanisms/{mechanism_id}``), or ``unmatched``: no
        label ever holds a raw path."""
        label = self._known.get(path)
        if label is None:
            label = next((label for regex, label in self.table() if regex.match(path)), "unmatched")
            if len(self._known) >= KNOWN_PATHS:
                self._known.clear()
            self._known[path] = label
        return label


class Observe:
    """ASGI middleware: times each HTTP request into :data:`Watch.latency` and logs it once answered
    (``deconflict.request``, INFO): method, route template, status, duration in milliseconds, and the
    member id when the request presented a token this process recognised. Never the token, a header,
    the path's ids, the query or the body."""

    def __init__(self, app: ASGIApp, *, watch: Watch, routes: Routes) -> None:
        self.app = app
        self.watch = watch
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - began
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            route = self.routes.template(scope.get("path", ""))
            self.watch.latency.labels(route, method, f"{status // 100}xx").observe(elapsed)
            member, mechanism = self._member(scope)
            request_logger.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "member": member,
                    "mechanism": mechanism,
                },
            )

    def _member(self, scope: Scope) -> tuple[str | None, str | None]:
        """The member whose bearer token the request presented: as the request's authentication recorded it,
        else from the service's token cache only; (None, None) when it cannot say without a query."""
        state = scope.get("state") or {}
        known = state.get("member") if isinstance(state, dict) else None
        if isinstance(known, tuple):
            return known[0], known[1]
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None, None
                found = self.watch.service.authenticate_cached(token.strip())
                if isinstance(found, tuple):
                    return found[1].id, found[0]
                return None, None
        return None, None


def install(app: FastAPI, watch: Watch) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` (outside the OpenAPI document) and time and log
    every request. Call after every other middleware is added, so that :class:`Observe` sees each
    answer as the client gets it (413s, security headers and all)."""
    app.state.watch = watch
    no_store = {"Cache-Control": "no-store"}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Alive: the process answers. Touches nothing else (a restart is the cure when it does not)."""
        return JSONResponse({"status": "alive"}, headers=no_store)

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Ready to serve: 200 when every check passes; 503 naming what is not ready otherwise."""
        checks = watch.readiness_once(lambda: readiness(watch))
        failing = [name for name, check in checks.items() if not check["ok"]]
        if not failing:
            return JSONResponse({"status": "ready", "checks": checks}, headers=no_store)
        detail = "not ready: " + "; ".join(f"{name}: {checks[name]['detail']}" for name in failing)
        body = {"status": "not ready", "detail": detail, "field": None, "not_ready": failing, "checks": checks}
        return JSONResponse(body, status_code=503, headers={**no_store, "Retry-After": "5"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text exposition of :class:`Watch`'s registry: counts only, no ids or geometry."""
        return Response(generate_latest(watch.registry), media_type=CONTENT_TYPE_LATEST, headers=no_store)

    app.state.routes = Routes(app)  # its table built as the server starts (create_app's lifespan)
    app.add_middleware(Observe, watch=watch, routes=app.state.routes)
