"""How uvicorn serves the app: a request that is slow or half-sent times out, and connections are capped.

uvicorn times out an idle kept-alive connection, but not a request that stopped half-way: a client that
sends half its headers (or a body shorter than its ``Content-Length``) and waits would hold its
connection, and the task reading it, for ever. :func:`uvicorn_config` serves over
:class:`TimedRequests`, which gives each request ``Settings.request_timeout_s`` from its first byte (or
from the connection, for the first) until it has arrived whole; then it answers 408 and closes the
connection. A response that streams (the event stream) is not limited: the request itself was whole.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from deconflict.api.settings import Settings
from deconflict.api.web import API_HEADERS

__all__ = [
    "BIG_BUFFER",
    "YOUNG_OBJECTS",
    "TimedRequests",
    "collect_less",
    "return_big_buffers",
    "timed_protocol",
    "uvicorn_config",
]

YOUNG_OBJECTS = 50_000
"""The objects allocated (net) before the garbage collector looks at the youngest generation, in a server
(Python's default: 700). See :func:`collect_less`."""


def collect_less() -> None:
    """Set a server process's garbage collector for a busy hotline, once its application is built.

    With Python's defaults the youngest generation was collected every 700 objects: a batch of messages in
    flight (requests, rows, views) outlived it and was promoted, and promoted objects triggered a collection
    of everything (some 200,000 objects: the record's rules state, the pictures, the kept entries) about once
    a second. Each took about 100 ms of the one core the interpreter runs on and freed next to nothing;
    every thread waited meanwhile, so it was the tail of the hotline's latency (p99 over 100 ms at 32
    clients) and about a tenth of its CPU. Now the objects of start-up (modules, the application) are set
    apart for good (``gc.freeze``: they live as long as the process), and the youngest generation is
    collected every :data:`YOUNG_OBJECTS`, when a batch's objects have long been freed by their reference
    counts. Garbage in reference cycles still goes, a little later (a few MB at most)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, middle, oldest)


BIG_BUFFER = 128 * 1024
"""The size from which a server's C allocations are mapped on their own, and so given back whole when freed
(glibc's ``M_MMAP_THRESHOLD``, at its default value but fixed). See :func:`return_big_buffers`."""

_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter for it (``malloc.h``)."""


def return_big_buffers() -> bool:
    """Have a server process give back to the system each buffer of :data:`BIG_BUFFER` or more that it frees;
    True when the C library took the setting (glibc), False elsewhere (nothing changes then).

    The duty loop's replay snapshots build the whole state of the record, a few tens of MB after 100,000
    hotline messages and more as the record grows, and free it once stored. glibc maps such a buffer on its
    own and unmaps it when freed, but then raises its threshold to the freed size, so that the next ones come
    from its heaps, which keep what is freed. Over 60 s at about 1,300 messages a second the process grew by
    91-105 MB with the threshold moving and 55-61 MB with it fixed (28 MB with no snapshots at all)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has it and ignores it; macOS has none)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, BIG_BUFFER))


class TimedRequests(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request to arrive whole."""

    request_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._request_timer is None:
            self._request_timer = self.loop.call_later(self.request_timeout_s, self._request_timed_out)

    def _disarm(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # between requests the keep-alive timeout applies; the next request arms its own deadline
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _answer(self, status: bytes, detail: str) -> None:
        """Answer a request the service never saw (it did not arrive whole, or HTTP could not read it) as every
        error is answered: JSON ``{"detail", "field"}`` with the API's headers, the connection to close."""
        body = json.dumps({"detail": detail, "field": None}).encode()
        head = [b"HTTP/1.1 ", status, b"\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        for name, value in API_HEADERS:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\nconnection: close\r\n")
        head.append(b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
        # the answer to a HEAD has no content: when this request's head has arrived (its cycle is under way; an
        # earlier request's, answered, is not this one's) and it is a HEAD
        cycle: Any = self.cycle
        headed = cycle is not None and not cycle.response_complete and cycle.scope["method"] == "HEAD"
        self.transport.write(b"".join(head) + (b"" if headed else body))

    def _answering(self) -> bool:
        """Whether a response is under way on this connection (an earlier request's, a stream's, or one waiting
        in the pipeline behind it): an answer written now would be read as part of it, or as its answer."""
        # the newest request whose headers arrived; None before the first one's (uvicorn types it never None)
        cycle: Any = self.cycle
        if self.pipeline:
            return True
        if cycle is None or cycle.response_complete:
            return False
        # handed whole to the application (its answer to come), or its answer begun
        return cycle.response_started or not cycle.more_body

    def send_400_response(self, msg: str) -> None:  # uvicorn's plain-text answer to what it cannot parse
        if not self._answering():
            self._answer(
                b"400 Bad Request",
                "the request is not HTTP/1.1 the service can read (a header malformed, such as a Content-Length "
                "that is not a number of bytes); the connection is closed",
            )
        self.transport.close()

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        if self._answering():  # what is under way is answered first; the deadline runs again
            self._arm()
            return
        self._answer(
            b"408 Request Timeout",
            f"the request did not arrive whole within {self.request_timeout_s:g} s; the connection is closed",
        )
        cycle = self.cycle
        if getattr(cycle, "more_body", False):
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def timed_protocol(request_timeout_s: float) -> type[TimedRequests]:
    """:class:`TimedRequests` with its deadline set."""
    return type("TimedRequests", (TimedRequests,), {"request_timeout_s": request_timeout_s})


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration ``deconflict serve`` and ``demo`` run with (tests serve the same way)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": 5,
        "limit_concurrency": settings.max_connections,
        "http": timed_protocol(settings.request_timeout_s),
    }
    return uvicorn.Config(app, **(options | overrides))
