"""The HTTP benchmarks' sending client: one kept-alive HTTP/1.1 connection (the standard library's
``http.client``), JSON in and out.

The clients run on the same two cores as the servers they measure, so what a client costs is taken from
the server. httpx spends 0.76-0.91 ms of CPU a request on loopback here, ``http.client`` 0.17-0.19 ms
(measured against a server that does nothing, 3,000 requests each, taking turns): with httpx, 8 client
threads in one process could not offer much more than 1,100 requests a second, under the 2,000 the hotline's
target asks to measure. The event streams are still read with httpx (one request each).
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Answer", "Poster", "client_cpu_seconds"]


class Answer:
    """A response: its status and its body (``json()`` decodes it)."""

    __slots__ = ("status_code", "text")

    def __init__(self, status_code: int, text: str) -> None:
        self.status_code = status_code
        self.text = text

    def json(self) -> Any:
        return json.loads(self.text)


class Poster:
    """POSTs JSON to one server over a kept-alive connection (reopened when the server closed it).

    Raises ``OSError`` or ``http.client.HTTPException`` when a request cannot be sent or answered (the
    bench counts it as a transport error); the next request opens a new connection."""

    def __init__(self, base: str, token: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, doc: Any) -> Answer:
        body = json.dumps(doc).encode()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            self._conn.request("POST", self._prefix + path, body=body, headers=self._headers)
            response = self._conn.getresponse()
            text = response.read().decode()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return Answer(response.status, text)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_cpu_seconds() -> float:
    """CPU time (user + system) this bench process has used so far: its clients' and stream readers' cost."""
    return time.process_time()
