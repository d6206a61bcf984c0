"""The live server for HTTP tests: the app served by uvicorn on loopback in a thread, on a real SQLite
file with the service's clock pinned; and what its clients need (bearer headers, a Server-Sent Events
reader, waiting on a condition rather than for a fixed time)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from deconflict.api import create_app
from deconflict.api.serving import uvicorn_config
from deconflict.api.settings import Settings
from deconflict.clock import Clock, iso
from deconflict.service import Service
from deconflict.store import open_store

from .builders import MEMBERS, A, M, vol

__all__ = [
    "LiveServer",
    "SSEReader",
    "auth",
    "free_port",
    "next_events_of",
    "post_notice",
    "start_server",
    "wait_until",
]

T = TypeVar("T")


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for clients' source ports (32768-60999 where it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


# Ports are handed out outside the kernel's ephemeral range (below it, or above it where the range starts too
# low), so that no client socket of any test (an httpx request, a PostgreSQL connection) is given the port as
# its source between our check and the server's bind, and each pytest-xdist worker has its own slice, so that
# two workers never hand out the same port; a test run starts at a place of its own in the slice (another run
# on the same machine, beside it). The port 0 trick (bind, read, close) raced both ways: "Address already in
# use" when the server started.
_PORTS_LOW = 20_000
_PORTS_SLICE = 500
_turn = itertools.count(os.getpid() % _PORTS_SLICE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, from this worker's own slice outside the
    ephemeral range, taken in turn (a port comes back only after the other ones of the slice).

    Raises:
        RuntimeError: every port of the slice is taken.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    low, high = _ephemeral_range()
    first, last = (_PORTS_LOW, low) if low - _PORTS_LOW >= 4 * _PORTS_SLICE else (high + 1, 65536)
    slices = max(1, (last - first) // _PORTS_SLICE)
    start = first + (index % slices) * _PORTS_SLICE
    size = max(1, min(_PORTS_SLICE, last - start))
    for _ in range(size):
        port = start + next(_turn) % size
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port left in {start}-{start + size - 1}")


@dataclass
class LiveServer:
    """A uvicorn server running the app in a thread; ``stop()`` shuts it down cleanly."""

    service: Service
    settings: Settings
    port: int = field(default_factory=free_port)
    closes_store: bool = False
    """Close the service's store when the server stops, as ``deconflict serve`` does (``create_app``)."""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app(self) -> Any:
        """The application served (its ``state``: the hub, the batches)."""
        assert self._server is not None, "start() the server first"
        return self._server.config.app

    def start(self) -> LiveServer:
        """Serve, and return once the server accepts connections.

        Raises:
            RuntimeError: it did not start within 60 s (a loaded machine starts it in well under 1 s).
        """
        app = create_app(self.settings, self.service, closes_store=self.closes_store)
        # as `deconflict serve` serves (its HTTP protocol with the request deadline, its limits and time-outs)
        config = uvicorn_config(app, self.settings, host="127.0.0.1", port=self.port)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start within 60 s")
            if not self._thread.is_alive():
                raise RuntimeError("the test server's thread ended before it started (see its log above)")
            time.sleep(0.02)
        return self

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the server: at once, or ``graceful`` as on SIGTERM (connections closed, then the app's
        lifespan shutdown)."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = not graceful
        if self._thread is not None:
            self._thread.join(timeout=60)
            if self._thread.is_alive():
                raise RuntimeError("the test server did not stop within 60 s")

    def tokens(self, *members: str, mechanism_id: str = M) -> dict[str, str]:
        """A bearer token for each member named (every Syria member if none is), issued in that order."""
        return {m: self.service.issue_token(mechanism_id=mechanism_id, member_id=m) for m in members or MEMBERS}


def start_server(db: str, clock: Clock, *, keepalive_s: float = 0.5, tick_s: float = 0.0) -> LiveServer:
    """A live server on the SQLite file ``db``; its hotline ticker is off unless ``tick_s`` is given, so
    tests drive time."""
    service = Service(open_store(db), clock=clock)
    settings = Settings(db=db, clock=clock, stream_keepalive_s=keepalive_s, max_body_bytes=256 * 1024, tick_s=tick_s)
    return LiveServer(service, settings).start()


def auth(token: str) -> dict[str, str]:
    """The headers that present ``token``."""
    return {"Authorization": f"Bearer {token}"}


def post_notice(
    server: LiveServer,
    token: str,
    kind: str,
    lat: float,
    lon: float,
    h0: float = 2,
    h1: float = 4,
    *,
    title: str | None = None,
    radius_m: float = 15_000,
) -> dict[str, Any]:
    """Notify over HTTP, as the member whose ``token`` it is, a circle at (``lat``, ``lon``) from ``h0``
    to ``h1`` hours after the server's clock; the answer (asserted 201 Created)."""
    now = server.service.clock()
    volume = vol((lon, lat), now + timedelta(hours=h0), radius_m=radius_m, end=iso(now + timedelta(hours=h1)))
    body: dict[str, Any] = {"kind": kind} if title is None else {"kind": kind, "title": title}
    body["volumes"] = [volume]
    r = httpx.post(f"{server.url}{A}/activities", json=body, headers=auth(token), timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


class SSEReader:
    """A minimal Server-Sent Events client over an httpx stream: (id, event, data) triples."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str], *, read_s: float = 10.0) -> None:
        self._cm = client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10.0, read=read_s))
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    def next_event(self) -> tuple[int, str, dict[str, Any]]:
        """The next event with data (comments and keep-alives skipped).

        Raises:
            EOFError: the stream ended first.
        """
        event_id: str | None = None
        event = "message"
        data: list[str] = []
        for line in self._lines:
            if line == "":
                if data:
                    return int(event_id or 0), event, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
        raise EOFError("stream ended")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def next_events_of(
    reader: SSEReader, kinds: set[str], count: int, *, deadline_s: float = 120.0
) -> list[tuple[int, str, dict[str, Any]]]:
    """The next ``count`` events of the given kinds, in order, skipping every other event on the stream
    (checkpoints, line checks, alerts, escalations arrive whenever the service's clock says so).
    Waits for the events themselves, up to a generous deadline, never for a fixed time."""
    found: list[tuple[int, str, dict[str, Any]]] = []
    skipped: list[str] = []
    end = time.monotonic() + deadline_s
    while len(found) < count:
        assert time.monotonic() < end, f"after {deadline_s:g} s: {found!r} of {kinds}; skipped {skipped}"
        event = reader.next_event()
        if event[1] in kinds:
            found.append(event)
        else:
            skipped.append(event[1])
    return found


def wait_until(condition: Callable[[], T], what: str, *, deadline_s: float = 120.0, every_s: float = 0.05) -> T:
    """Poll ``condition()`` until it returns something true, and return that; fail naming ``what`` after a
    generous deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"{what}: not within {deadline_s:g} s"
        time.sleep(every_s)
