"""The HTTP API: ``create_app(settings)`` builds the FastAPI application; nothing happens at import.

Writes run off the event loop, so a database that stalls holds only what waits on it (``/healthz`` and
the streams go on): the routes are sync functions FastAPI runs in its thread pool, and the busiest writes
(notify, send a message), when the request is plain, are answered by :mod:`deconflict.api.fast` without
FastAPI's dependency solver, in write threads of its own. Event streams read the record in worker threads, in
short pages. Other reads run in the thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from deconflict import logs
from deconflict.api import contract, errors, ops, web
from deconflict.api.body import BodyGuard
from deconflict.api.fast import Batches, FastWrites, WriteThreads
from deconflict.api.head import HeadAsGet
from deconflict.api.hub import Hub
from deconflict.api.routes import activities, conflicts, events, hotline, interop, mechanisms, tracks, zones
from deconflict.api.routes import kml as kml_routes
from deconflict.api.settings import Settings
from deconflict.formats.kml import KMZ_MEDIA_TYPE
from deconflict.service import Service
from deconflict.store import open_store, unreachable

API_PREFIX = "/api/v1"

DESCRIPTION = """
Deconfliction between parties sharing a theatre: notices of planned activity as 4D
volumes, automatic conflict detection between parties and against declared zones, and a
hash-chained record. Every request carries a member's bearer token
(`Authorization: Bearer dcf_...`, printed once by `deconflict member add`).
Errors are JSON `{"detail": "...", "field": "..."}`.
"""


GZIP_MIN_BYTES = 32 * 1024
"""Answers from this size are sent compressed to a client that accepts gzip (see :func:`create_app`)."""


class ApiGZip(GZipMiddleware):
    """Starlette's gzip middleware for the HTTP requests whose path starts with ``prefix``; every other
    request straight to the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        minimum_size: int,
        compresslevel: int,
        exclude_content_types: tuple[str, ...],
    ) -> None:
        super().__init__(
            app, minimum_size=minimum_size, compresslevel=compresslevel, exclude_content_types=exclude_content_types
        )
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await super().__call__(scope, receive, send)
        else:
            await self.app(scope, receive, send)


TICK_WAIT_S = 5.0
"""How long a server that stops waits for the duty loop's tick under way (a database that stalls is not waited
for long: the lease then runs out on its own)."""
SNAPSHOT_WAIT_S = 30.0
"""How long a server that stops waits for the replay snapshot being written before it closes the database (a
whole one takes seconds on an old record; one left unfinished is written again by the next start)."""


def _tracked(
    group: set[asyncio.Future[Any]], work: Callable[..., Any], *args: Any, **kwargs: Any
) -> asyncio.Future[Any]:
    """``work`` run in a worker thread, its future in ``group`` until done. Its exception is taken once done:
    the ticker, which awaits the tick, logs it; once the ticker has stopped (the server stopping) nobody would,
    and asyncio would say it was never retrieved."""

    def done(future: asyncio.Future[Any]) -> None:
        group.discard(future)
        if not future.cancelled():
            future.exception()

    future = asyncio.ensure_future(run_in_threadpool(work, *args, **kwargs))
    group.add(future)
    future.add_done_callback(done)
    return future


def create_app(settings: Settings, service: Service | None = None, *, closes_store: bool | None = None) -> FastAPI:
    """Build the application from settings (and optionally an existing service, for tests). ``closes_store``:
    when the server stops, close the service's store (every commit synced, the connections closed, and so
    SQLite's write-ahead log folded into the database file and removed); by default when this made the
    service. A store left open at the end of the process keeps its last commits in the ``-wal`` file beside
    the database: safe, but a copy of the database file alone lacks them."""
    closes = service is None if closes_store is None else closes_store
    service = service or Service(
        open_store(settings.db, group_commit=True),
        clock=settings.clock,
        checkpoint_interval_s=settings.checkpoint_interval_s,
    )
    hub = Hub()
    writes = WriteThreads()
    watch = ops.Watch(settings, service)
    batches = Batches(on_batch=lambda name, n: watch.batch_size.labels(name).observe(n))
    service.entry_listeners.append(hub.recent.committed)  # before the streams wake: they find the entries kept
    service.listeners.append(hub.publish)
    service.checkpoint_listeners.append(lambda mechanism, checkpoint: hub.publish(mechanism, checkpoint["seq"]))

    log = logging.getLogger("deconflict.api")

    def write_snapshots() -> None:
        try:
            service.write_due_snapshots()
        except DBAPIError as e:  # the tick says an outage once; a snapshot only makes replay faster
            if not errors.is_outage(e):
                log.exception("replay snapshots not written")
        except Exception:  # noqa: BLE001 - tried again after a later tick
            log.exception("replay snapshots not written")

    def warm(loop: asyncio.AbstractEventLoop, warmed: asyncio.Event) -> None:
        began = time.perf_counter()
        try:
            built = {m: n for m, n in service.warm().items() if n is not None}
        except DBAPIError as e:  # the first write builds them then
            log.warning("the record's rules were not read ahead (%s)", unreachable(e) if errors.is_outage(e) else e)
        except Exception:  # noqa: BLE001 - the first write builds them then
            log.exception("the record's rules were not read ahead")
        else:
            if built:
                said = ", ".join(f"{m} to entry {n}" for m, n in built.items())
                log.info("the record's rules read ahead in %.1f s: %s", time.perf_counter() - began, said)
        finally:
            try:
                loop.call_soon_threadsafe(warmed.set)
            except RuntimeError:  # the server has stopped meanwhile
                pass

    async def ticker(warmed: asyncio.Event) -> None:
        # Deadlines live in stored times; this only asks, every second, what has fallen due. In a worker
        # thread: a database that stalls holds the tick, never the requests the event loop serves. Replay
        # snapshots are written beside the tick, one at a time, in a worker thread of their own: a whole one
        # takes seconds on an old record (15.9 s at 1M entries), and the tick (escalations, line checks, the
        # tactical picture's alerts) must not wait for it. The first pass waits for the rules read ahead: the
        # first entry it writes would otherwise read them from entry 1 too, under the lock, at the same time.
        # Then it runs at once, not a tick later: what fell due while the service was down (an escalation, a
        # line check) is recorded as soon as the service can.
        outage = False
        snapshots: asyncio.Future[Any] | None = None
        await warmed.wait()
        while True:
            try:
                # shielded: a stop cancels the ticker, and the tick under way goes on in its thread; the
                # lifespan waits for it (``ticking``) before it gives up the lease and closes the store
                await asyncio.shield(_tracked(ticking, service.tick, snapshots=False))
                watch.ticked()
                if outage:
                    log.warning("hotline tick: the database answers again")
                    outage = False
                if snapshots is None or snapshots.done():
                    snapshots = _tracked(writing, write_snapshots)
            except DBAPIError as e:
                if not errors.is_outage(e):
                    log.exception("hotline tick failed")
                elif not outage:  # one line an outage, not a traceback a second
                    log.warning("hotline tick: the database is not reachable (%s); trying each second", unreachable(e))
                    outage = True
            except Exception:  # noqa: BLE001 - a failed tick is logged and retried next second
                log.exception("hotline tick failed")
            await asyncio.sleep(settings.tick_s)

    ticking: set[asyncio.Future[Any]] = set()
    """The duty loop's tick under way, if any (in a worker thread: cancelling the ticker does not stop it)."""
    writing: set[asyncio.Future[Any]] = set()
    """The replay snapshot being written, if any (the ticker's worker thread)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the routes' templates (from the OpenAPI document: 0.11 s of CPU, 0.5 s on a busy machine) before the
        # server takes its first request, which would otherwise build them on the event loop, every request
        # of the process waiting
        await run_in_threadpool(app.state.routes.table)
        hub.bind(asyncio.get_running_loop())
        service.follow()  # commits by other processes on the database move the picture and wake the streams
        # the record's authority rules read from entry 1 now, off the mechanisms' locks, not by the first write
        # after the start under its lock (1.8 s at 250k entries); a write that comes first builds them itself
        warmed = asyncio.Event()  # one a start: an event belongs to the loop that first waits on it
        loop = asyncio.get_running_loop()
        threading.Thread(target=warm, args=(loop, warmed), name="deconflict-warm", daemon=True).start()
        task = asyncio.create_task(ticker(warmed)) if settings.tick_s > 0 else None
        yield
        if task is not None:
            task.cancel()
            try:
                await asyncio.wait_for(task, timeout=5)
            except (asyncio.CancelledError, TimeoutError):
                pass
            if ticking:  # the tick under way ends first (a database that stalls is not waited for long)
                await asyncio.wait(ticking, timeout=TICK_WAIT_S)
            try:
                await run_in_threadpool(service.release_duty)
            except Exception as e:  # noqa: BLE001 - the lease then runs out on its own (LEASE_S)
                reason = unreachable(e) if isinstance(e, DBAPIError) else str(e)
                log.warning("the duty lease was not given up (%s): it runs out", reason)
        service.unfollow()
        writes.stop()
        batches.stop()
        if closes:
            # the threads that still read or write the store finish first: the rules read ahead, the snapshot
            try:
                await asyncio.wait_for(warmed.wait(), timeout=SNAPSHOT_WAIT_S)
            except TimeoutError:
                log.warning("the record's rules were still being read ahead as the server stopped")
            if writing:
                await asyncio.wait(writing, timeout=SNAPSHOT_WAIT_S)
            try:
                await run_in_threadpool(service.store.close)
            except Exception as e:  # noqa: BLE001 - the process ends anyway; what was committed is on the disk
                log.warning(
                    "the database was not closed cleanly (%s)", unreachable(e) if isinstance(e, DBAPIError) else e
                )
            else:  # a clean stop said so: in the log (journald, the terminal) it looked like a crash
                log.info("stopped: the event streams ended, every answer given is on the disk, the database closed")
        for left in (*ticking, *writing):  # not waited for (or for too long): their threads end on their own
            left.cancel()
        # the log lines still queued, before uvicorn ends a process stopped by SIGTERM with that signal (no
        # logging.shutdown then): the lines of the last requests and of this shutdown
        await run_in_threadpool(logs.flush_all)

    app = FastAPI(
        title="deconflict",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_size=None,  # BodyGuard applies settings.max_body_bytes, answering JSON
        openapi_url="/openapi.json",
        # an operation's id is its function's name (``get_conflict``, ``acknowledge_message``): what a client
        # generated from the document calls it (the framework's default adds the path and the method)
        generate_unique_id_function=lambda route: route.name,
        # FastAPI's own OpenTelemetry off, whatever the environment configures: it would hand a collector each
        # request's body and each refusal's input values (the places and times of the parties' activity, which
        # no log line, metric or trace of this service may hold), and it asked on every request whether a
        # provider had been set meanwhile (1.5% of a busy hotline's time). /metrics and the log are the service's.
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.state.service = service
    app.state.hub = hub
    app.state.batches = batches
    app.state.settings = settings
    errors.install(app)
    # Large answers compressed for a client that accepts gzip: a page reads the live tracks every 2 s (1 MB
    # at 5,000 tracks, 8x smaller at level 1 for about 4 ms). Inside FastWrites (the hotline's plain writes
    # never pass it) and only from GZIP_MIN_BYTES, so a small answer that may hold a secret (a token issued)
    # is never compressed beside what a client sent; a KMZ is compressed already, the event stream is not;
    # the API's answers only (the page's files keep one representation under their ETag).
    app.add_middleware(
        ApiGZip,
        prefix=API_PREFIX + "/",
        minimum_size=GZIP_MIN_BYTES,
        compresslevel=1,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, KMZ_MEDIA_TYPE),
    )
    app.add_middleware(HeadAsGet)  # outside the gzip: a HEAD's head is the GET's, compressed or not
    app.add_middleware(
        FastWrites, prefix=API_PREFIX, writes=writes, batches=batches
    )  # inside BodyGuard: sees checked bodies
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    for module in (mechanisms, activities, zones, conflicts, hotline, tracks, events, interop):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(kml_routes.router, prefix=API_PREFIX)  # picture.kml, picture.kmz
    web.install(app)
    ops.install(app, watch)  # last: its middleware times and logs each answer as the client gets it
    contract.install_openapi(app, API_PREFIX)
    return app
