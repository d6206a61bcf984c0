"""The floors under one write through the server, measured in the same run as the write itself.

A write's cost in the server is the HTTP server's share (uvicorn reading the request, answering it) plus
the application's. Two floors bound how fast one process can ever go on this machine:

- **HTTP alone** (:func:`http_floor`): an ASGI application that reads the body and answers 201 with a
  small JSON, and nothing else, served by uvicorn with the very configuration ``deconflict serve`` uses
  (:func:`deconflict.api.serving.uvicorn_config`: httptools, uvloop, the request deadline), driven by the
  same client threads for the same seconds. Its server CPU a request is what any Python server on this
  stack pays before doing any work.
- **The use case alone** (:func:`service_floor`): the service's own call (``send_message``, ``notify``)
  in process, on the seeded Syria scenario, no HTTP: signing, the record, the tables, the picture, the
  answer's view. It is measured in a process of its own (its CPU time a call).

Their sum is a floor for a write through HTTP: the event streams, the middleware and the routing come on
top. ``ceiling_per_core_s`` is the writes a second that sum would allow on one whole core, which is all
one Python process gets for this work (one interpreter lock).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _http import Poster
from _servers import _cpu_s, free_port

__all__ = ["floors", "http_floor", "service_floor"]

NOOP_SERVER = textwrap.dedent(
    """
    import json, sys
    import uvicorn
    from deconflict.api.serving import uvicorn_config
    from deconflict.api.settings import Settings

    ANSWER = json.dumps({"id": "M1", "seq": 1}).encode()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]})
        await send({"type": "http.response.body", "body": ANSWER})

    uvicorn.Server(uvicorn_config(app, Settings(), port=int(sys.argv[1]))).run()
    """
)
"""An ASGI application that reads the body and answers 201, served as ``deconflict serve`` serves."""

SERVICE_CALLS = textwrap.dedent(
    """
    import json, random, sys, time
    from datetime import UTC, datetime
    sys.path.insert(0, sys.argv[3])
    from deconflict.demo import MECHANISM, prepare_server
    from deconflict.api.schemas import NoticeIn

    service, _ = prepare_server(sys.argv[1])
    what, calls = sys.argv[2], int(sys.argv[4])
    rng = random.Random(7)
    now = datetime.now(UTC)

    def message(i):
        party, other = ("TR", "IL") if i % 2 == 0 else ("IL", "TR")
        service.send_message(mechanism_id=MECHANISM, actor=party, template="holding", params={"ref": f"C{i}"},
                             to=[other])

    def notice(i):
        from api import random_notice
        n = NoticeIn.model_validate(random_notice(rng, now))
        service.notify(mechanism_id=MECHANISM, actor="TR" if i % 2 == 0 else "IL", kind=n.kind.value,
                       volumes=[v.model_dump(mode="json") for v in n.volumes], title=n.title)

    call = message if what == "message" else notice
    warm = max(1, calls // 20)  # imports, caches, the picture; then the rest, as the server's run filled it
    for i in range(warm):
        call(i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(warm, calls):
        call(i)
    calls -= warm
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    service.store.close()
    print(json.dumps({"calls": calls, "cpu_ms": cpu / calls * 1000, "wall_ms": wall / calls * 1000}))
    """
)
"""Seeds the demo database argv[1] and makes ``argv[4]`` calls of the use case argv[2] (message, notice), as
many as the measured server took (each notice costs more as the area fills); the first twentieth warms up,
the rest is timed."""


def http_floor(seconds: float, clients: int, path: str, body: Callable[[int], Any]) -> dict[str, Any]:
    """The no-op server (:data:`NOOP_SERVER`) driven by ``clients`` threads posting ``body(n)`` to ``path``
    for ``seconds``: requests a second, and its CPU a request."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", NOOP_SERVER, str(port)], stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(400):
            try:
                with Poster(base, "x") as p:
                    p.post(path, body(0))
                break
            except (OSError, http.client.HTTPException):
                if proc.poll() is not None:
                    return {"failed": f"the server that does nothing exited ({proc.returncode})"}
                time.sleep(0.05)
        else:
            return {"failed": "the server that does nothing did not answer within 20 s"}
        count = [0]
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(n: int) -> None:
            done = 0
            try:
                with Poster(base, "x") as p:
                    while time.perf_counter() < stop_at:
                        if p.post(path, body(n)).status_code == 201:
                            done += 1
            except (OSError, http.client.HTTPException) as e:  # counted, and said: the figure stands on the rest
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
            with lock:
                count[0] += done

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        cpu, wall = _cpu_s(proc.pid), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu, wall = _cpu_s(proc.pid) - cpu, time.perf_counter() - wall
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    n = max(count[0], 1)
    out: dict[str, Any] = {
        "requests_per_s": round(count[0] / wall, 1),
        "server_cpu_ms_per_request": round(cpu / n * 1000, 3),
    }
    if errors:
        out["client_errors"] = errors[:3]
    return out


def service_floor(what: str, calls: int) -> dict[str, Any]:
    """The use case ``what`` (``message`` or ``notice``) called ``calls`` times in a process of its own on a
    fresh demo database: CPU and wall milliseconds a call."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                SERVICE_CALLS,
                str(Path(folder) / "floor.db"),
                what,
                str(Path(__file__).parent),
                str(calls),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]}
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return {"calls": found["calls"], "cpu_ms": round(found["cpu_ms"], 3), "wall_ms": round(found["wall_ms"], 3)}


def floors(
    what: str,
    *,
    seconds: float,
    clients: int,
    path: str,
    body: Callable[[int], Any],
    calls: int,
    server_cpu_ms: Any,
    pinned_cpu_ms: Any = None,
) -> dict[str, Any]:
    """Both floors, their sum and what it allows on one core, and the measured server CPU a write over it
    (``pinned_over_floor``: the pinned server's, the fairer comparison: the floors run in one thread, with no
    hand-over between cores)."""
    http = http_floor(seconds, clients, path, body)
    alone = service_floor(what, calls)
    out: dict[str, Any] = {"http_alone": http, f"{what}_alone": alone}
    if "cpu_ms" in alone and "server_cpu_ms_per_request" in http:
        total = http["server_cpu_ms_per_request"] + alone["cpu_ms"]
        out["floor_ms"] = round(total, 3)
        out["ceiling_per_core_s"] = round(1000 / total, 1) if total > 0 else None
        if isinstance(server_cpu_ms, int | float) and total > 0:
            out["measured_over_floor"] = round(server_cpu_ms / total, 2)
        if isinstance(pinned_cpu_ms, int | float) and total > 0:
            out["pinned_over_floor"] = round(pinned_cpu_ms / total, 2)
    return out
