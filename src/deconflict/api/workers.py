"""Several server processes behind one address: ``deconflict serve --workers N``.

The parent binds the address once, migrates the database once, then runs N worker processes that accept
on that one socket (uvicorn's supervisor: it restarts a worker that dies, and stops them all on Ctrl-C or
SIGTERM). Each worker opens its own service on the database and serves the whole API. What keeps them
one service:

- appends to a record are serialised in the database (the record's gate and lock: a write waits for
  another process's instead of forking the chain or starving);
- each worker follows the others' commits (:mod:`deconflict.store.follow`: LISTEN/NOTIFY on
  PostgreSQL), so its picture moves on and its event streams deliver every entry, whichever worker
  wrote it; a client that reconnects to another worker resumes with ``Last-Event-ID``;
- exactly one worker runs the duty loop (the lease in :mod:`deconflict.service.ticker`); when it dies,
  another takes over within seconds.

What stays per process: the writes-per-minute limit and the failed-authentication limit (each worker
counts its own: with N workers a client may make up to N times as many before 429), and the cache of
token answers (a token revoked through another worker stops working here within ``TOKEN_CACHE_S``).

PostgreSQL is the store for several workers across machines. SQLite is made safe for several workers on
one machine (a local disk): its write lock and the gate file serialise appends, and the followers poll
``PRAGMA data_version``; an in-memory SQLite database cannot be shared and is refused.

The settings reach the workers in the environment (:data:`ENV`, JSON), since each starts a new
interpreter.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import re
import signal
import sys
import threading
from typing import Any

from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from deconflict.api import affinity
from deconflict.api.serving import TimedRequests, collect_less, return_big_buffers, uvicorn_config
from deconflict.api.settings import Settings
from deconflict.errors import DeconflictError

__all__ = ["ENV", "app_from_env", "serve_workers"]

ENV = "DECONFLICT_SERVE_SETTINGS"
"""The environment variable that carries the settings (and the log format) to each worker."""
PR_SET_PDEATHSIG = 1
"""prctl(2): the signal a process gets when its parent dies."""


def serve_workers(settings: Settings, workers: int, log_format: str, *, cpus: list[int] | None = None) -> None:
    """Serve the API from ``workers`` processes on one address until interrupted; with ``cpus``, each worker
    pinned to one of them (:func:`deconflict.api.affinity.pin_worker`).

    Raises:
        DeconflictError: the database cannot be shared by several processes (an in-memory SQLite one).
    """
    from deconflict.store import database_url, open_store

    url = database_url(settings.db)
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        raise DeconflictError(
            "--workers: an in-memory SQLite database cannot be shared by several processes; "
            "give a database file or a PostgreSQL URL",
            field="workers",
        )
    open_store(settings.db).close()  # migrate once, here, before the workers open it (never N at once)
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "clock"}
    os.environ[ENV] = json.dumps({"settings": fields, "log_format": str(log_format), "cpus": cpus})
    config = uvicorn_config(
        "deconflict.api.workers:app_from_env",
        settings,
        factory=True,
        workers=workers,
        http="deconflict.api.serving:TimedRequests",
        log_config=None,
    )
    # the supervisor's own lines (a worker died, was replaced, all stopped) reach the operator's log, a worker's
    # death as a warning
    supervisor = logging.getLogger("uvicorn.error")
    supervisor.setLevel(logging.INFO)
    supervisor.addFilter(_death_is_a_warning)
    if cpus is not None and len(cpus) < workers:
        logging.getLogger("deconflict.serve").warning(
            "--cpus: %d processes on %d CPU%s (%s): some share one",
            workers,
            len(cpus),
            "s" * (len(cpus) > 1),
            ",".join(map(str, cpus)),
        )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


_DIED = re.compile(r"Child process \[(\d+)\] died")


def _death_is_a_warning(record: logging.LogRecord) -> bool:
    """uvicorn's supervisor says a worker died, killed or crashed, at INFO, beside its routine lines: an
    operator who watches warnings and errors (``journalctl -p warning``, an alert on the JSON log's level)
    did not see it. Said at WARNING, in words, with what the supervisor does next."""
    found = _DIED.fullmatch(record.msg) if isinstance(record.msg, str) and not record.args else None
    if found is not None and record.levelno == logging.INFO:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = (
            f"worker process {found.group(1)} is gone (killed, crashed, or hung and stopped by the supervisor); a "
            "new one is started in its place"
        )
    return True


def app_from_env() -> FastAPI:
    """A worker's application: its own service on the database, with the settings the parent passed."""
    from deconflict import logs
    from deconflict.api import create_app
    from deconflict.service import Service
    from deconflict.store import open_store

    _end_with_parent()
    passed: dict[str, Any] = json.loads(os.environ[ENV])
    settings = Settings(**passed["settings"])
    logs.configure(passed["log_format"])
    if passed.get("cpus"):
        cpu = affinity.pin_worker(passed["cpus"])
        if cpu is not None:
            logging.getLogger("deconflict.serve").info("worker %d pinned to CPU %d", os.getpid(), cpu)
    TimedRequests.request_timeout_s = settings.request_timeout_s  # the protocol class uvicorn was named
    # FULL, not group commit: with several processes on one SQLite file, another worker could read (and answer
    # with) a commit before the process that made it has synced it (deconflict.store.durable)
    store = open_store(settings.db, migrate=False)
    service = Service(store, clock=settings.clock, checkpoint_interval_s=settings.checkpoint_interval_s)
    app = create_app(settings, service, closes_store=True)
    _streams_end_on_exit(app)
    collect_less()
    return_big_buffers()
    return app


def _streams_end_on_exit(app: FastAPI) -> None:
    """When this worker is told to stop (SIGTERM from the supervisor, SIGINT from a Ctrl-C), the hub ends its
    open event streams at once, as ``serve`` does in one process: left open, each held the worker until
    uvicorn's graceful shutdown ran out (5 s) and was then cancelled with a traceback. The worker's uvicorn
    server has installed its own handlers before it loads the application (this module's factory): they are
    wrapped, and uvicorn puts back the ones it found when it ends."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread hears signals
        return
    hub = app.state.hub
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):

            def ending(signum: int, frame: Any, handler: Any = handler) -> None:
                hub.close()
                handler(signum, frame)

            signal.signal(sig, ending)


def _end_with_parent() -> None:
    """Have Linux stop this worker (SIGTERM) when the parent that supervises it dies, even by SIGKILL: a
    worker left on its own would serve on without anyone to restart it or to stop it."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
