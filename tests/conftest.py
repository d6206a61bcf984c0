"""Shared fixtures: a real service on a real SQLite file, served over real HTTP on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from deconflict.api import create_app
from deconflict.api.settings import Settings
from deconflict.clock import FixedClock
from deconflict.mechanisms import load_mechanism
from deconflict.scenarios import scenario_path
from deconflict.service import Service
from deconflict.store import open_store

SYRIA_T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A uvicorn server running the app in a thread; ``stop()`` shuts it down cleanly."""

    service: Service
    settings: Settings
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        app = create_app(self.settings, self.service)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def start_server(db: str, clock: FixedClock, *, keepalive_s: float = 0.5, tick_s: float = 0.0) -> LiveServer:
    """A live server; its hotline ticker is off unless ``tick_s`` is given, so tests drive time."""
    service = Service(open_store(db), clock=clock)
    settings = Settings(db=db, clock=clock, stream_keepalive_s=keepalive_s, max_body_bytes=256 * 1024, tick_s=tick_s)
    return LiveServer(service, settings).start()


@pytest.fixture
def syria_clock() -> FixedClock:
    return FixedClock(SYRIA_T0)


@pytest.fixture
def syria_db(tmp_path: Path, syria_clock: FixedClock) -> str:
    """An SQLite file with the Syria mechanism declared."""
    db = str(tmp_path / "api.db")
    service = Service(open_store(db), clock=syria_clock)
    service.declare_mechanism(mechanism=load_mechanism(scenario_path("syria")), demo_custody=True)
    service.store.close()
    return db


@pytest.fixture
def live(syria_db: str, syria_clock: FixedClock) -> Iterator[LiveServer]:
    server = start_server(syria_db, syria_clock)
    yield server
    server.stop()


@pytest.fixture
def tokens(live: LiveServer) -> dict[str, str]:
    """A bearer token for each Syria member."""
    return {m: live.service.issue_token(mechanism_id="tr-il-syria", member_id=m) for m in ("TR", "IL", "AZ", "US")}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class SSEReader:
    """A minimal Server-Sent Events client over an httpx stream: (id, event, data) triples."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str], *, read_s: float = 10.0) -> None:
        self._cm = client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10.0, read=read_s))
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    def next_event(self) -> tuple[int, str, dict[str, Any]]:
        event_id, event, data = None, "message", []
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


def wait_until(condition: Any, what: str, *, deadline_s: float = 120.0, every_s: float = 0.05) -> Any:
    """Poll ``condition()`` until it returns something true; fail naming ``what`` after a generous deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"{what}: not within {deadline_s:g} s"
        time.sleep(every_s)
