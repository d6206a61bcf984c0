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

For a message, a third figure says where the physical limit of this stack is (:func:`minimal_floor`): a
server with nothing but what a durable, signed, streamed message needs, on the same uvicorn configuration
and the same clients. It reads the bearer token and the body, renders the phrase, writes the record's
entry (canonical JSON, SHA-256 chain, an Ed25519 signature by libsodium) and the message's row into the
seeded demo database's own tables with the standard library's ``sqlite3``, commits, syncs the write-ahead
log (every commit: no sync shared), answers 201, and writes the message to both parties' event streams.
No framework, no ORM, no checks beyond these. Its CPU a message is the least Python on this machine can
spend on one; ``measured_over_minimal`` is how far the service is from it.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
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
from _servers import ServerFailed, _cpu_s, _seed, free_port

__all__ = ["floors", "http_floor", "minimal_floor", "service_floor"]

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

MINIMAL_SERVER = textwrap.dedent(
    """
    import asyncio, base64, hashlib, json, os, sqlite3, sys
    from datetime import UTC, datetime
    import orjson, uvicorn
    from nacl.signing import SigningKey
    from deconflict.api.serving import uvicorn_config
    from deconflict.api.settings import Settings

    db, port, tokens = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    M = "tr-il-syria"
    LANG = {"TR": "tr", "IL": "he", "AZ": "az"}
    WORDS = {"tr": "Bekliyoruz: {ref}", "he": "ממתינים: {ref}", "az": "Gözləyirik: {ref}"}
    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    HEAD = "SELECT seq, hash FROM ledger WHERE mechanism_id=? ORDER BY seq DESC LIMIT 1"
    seq, prev = con.execute(HEAD, (M,)).fetchone()
    wal = os.open(db + "-wal", os.O_RDWR)
    key = SigningKey.generate()
    streams = []
    state = {"seq": seq, "prev": prev, "n": 0}
    LEDGER = "INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    MESSAGE = "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

    def write(party, body):
        req = orjson.loads(body)
        to, params = req["to"], req["params"]
        lang = LANG[party]
        text = WORDS[lang].format(**params)
        state["n"] += 1
        mid = f"MF{state['n']}"
        payload = {"about": None, "deadline": None, "from_party": party, "id": mid, "lang": lang,
                   "needs_ack": False, "params": params, "template": req["template"], "to": to, "type": "response"}
        canon = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
        payload_hash = hashlib.sha256(canon.encode()).hexdigest()
        at = datetime.now(UTC).isoformat()
        seq, prev = state["seq"] + 1, state["prev"]
        head = (f'{{"actor":"{party}","at":"{at}","mechanism":"{M}","payload_hash":"{payload_hash}",'
                f'"prev_hash":"{prev}","seq":{seq},"type":"message.sent"}}')
        digest = hashlib.sha256(head.encode()).hexdigest()
        signature = base64.b64encode(key.sign(bytes.fromhex(digest)).signature).decode()
        con.execute("BEGIN")
        try:
            con.execute(LEDGER, (M, seq, at, party, "message.sent", canon, payload_hash, prev, digest, "k", signature))
            con.execute(MESSAGE, (M, mid, seq, "response", party, orjson.dumps(to).decode(), 0, at, None, "{}", None,
                                  0, None, None, canon, None, None))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        os.fdatasync(wal)
        state["seq"], state["prev"] = seq, digest
        view = {"id": mid, "seq": seq, "from": party, "to": to, "text": text, "sent_at": at, "hash": digest}
        frame = b"event: message.sent\\ndata: " + orjson.dumps({"seq": seq, "message": view}) + b"\\n\\n"
        for queue in streams:
            queue.put_nowait(frame)
        return orjson.dumps(view)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        party = tokens.get(auth.removeprefix("Bearer "))
        if party is None:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["method"] == "GET":
            queue = asyncio.Queue()
            streams.append(queue)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            try:
                while True:
                    await send({"type": "http.response.body", "body": await queue.get(), "more_body": True})
            finally:
                streams.remove(queue)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = write(party, body)
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.Server(uvicorn_config(app, Settings(), port=port)).run()
    """
)
"""The least a server can do for a durable, signed hotline message that both parties' streams show
(:func:`minimal_floor`): argv[1] a seeded demo database, argv[2] the port, argv[3] ``{token: party}``."""

SERVICE_CALLS = textwrap.dedent(
    """
    import cProfile, json, pstats, random, sys, time
    from datetime import UTC, datetime
    sys.path.insert(0, sys.argv[3])
    from deconflict.demo import MECHANISM, prepare_server
    from deconflict.api.schemas import NoticeIn

    service, _ = prepare_server(sys.argv[1])
    what, calls = sys.argv[2], int(sys.argv[4])
    NATIVE = {name: part for part, names in json.loads(sys.argv[5]).items() for name in names}
    LIBRARIES = [("/shapely/", "geometry"), ("/numpy/", "geometry"), ("/numba/", "geometry")]
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

    def head():
        with service.store.engine.connect() as c:
            return c.exec_driver_sql("SELECT max(seq) FROM ledger WHERE mechanism_id = ?", (MECHANISM,)).scalar()

    call = message if what == "message" else notice
    warm = max(1, calls // 20)  # imports, caches, the picture; then the rest, as the server's run filled it
    for i in range(warm):
        call(i)
    first = head()
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(warm, calls):
        call(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    entries = (head() - first) / (calls - warm)
    profiled = max(1, min(500, calls // 4))
    profile = cProfile.Profile()
    profile.enable()
    for i in range(calls, calls + profiled):
        call(i)
    profile.disable()
    calls -= warm
    service.store.close()
    native = {}
    for (filename, _, name), (_, _, own, _, _) in pstats.Stats(profile).stats.items():
        part = NATIVE.get(name) or next((p for lib, p in LIBRARIES if lib in filename), None)
        if part is not None:
            native[part] = native.get(part, 0.0) + own / profiled * 1000
    print(json.dumps({"calls": calls, "cpu_ms": cpu / calls * 1000, "wall_ms": wall / calls * 1000,
                      "entries_per_call": entries, "native_ms": native}))
    """
)
"""Seeds the demo database argv[1] and makes ``argv[4]`` calls of the use case argv[2] (message, notice), as
many as the measured server took (each notice costs more as the area fills); the first twentieth warms up,
the rest is timed, with the record entries each call appended. Then a quarter as many more (at most 500)
under ``cProfile``, for the time spent inside the native code that does the work itself
(:data:`NATIVE_PARTS`), a call's physical part."""

NATIVE_PARTS = {
    "signing": ["<built-in method _sodium.crypto_sign>"],
    "hashing": ["<built-in method _hashlib.openssl_sha256>", "<method 'hexdigest' of '_hashlib.HASH' objects>"],
    "sqlite": [
        "<method 'execute' of 'sqlite3.Connection' objects>",
        "<method 'execute' of 'sqlite3.Cursor' objects>",
        "<method 'executemany' of 'sqlite3.Cursor' objects>",
        "<method 'commit' of 'sqlite3.Connection' objects>",
        "<method 'fetchall' of 'sqlite3.Cursor' objects>",
        "<method 'fetchone' of 'sqlite3.Cursor' objects>",
    ],
    "json": ["<orjson.dumps>", "<orjson.loads>"],
    "sync (wall)": ["<built-in method posix.fdatasync>"],
}
"""The native calls that do a write's physical work, by part (cProfile's names): what any implementation of
the same record on the same libraries must spend. Geometry is the time inside shapely, numpy and numba's own
functions. The sync is its wall time (the kernel's; its CPU is a small part of it), not added to the CPU."""


def http_floor(seconds: float, clients: int, path: str, body: Callable[[int], Any]) -> dict[str, Any]:
    """The no-op server (:data:`NOOP_SERVER`) driven by ``clients`` threads posting ``body(n)`` to ``path``
    for ``seconds``: requests a second, and its CPU a request."""
    return _drive([NOOP_SERVER], seconds, clients, path, body, "the server that does nothing")


def minimal_floor(seconds: float, clients: int, body: Callable[[int], Any]) -> dict[str, Any]:
    """The minimal message server (:data:`MINIMAL_SERVER`) on a freshly seeded demo database, driven as the
    hotline bench drives the service: ``clients`` threads (TR and IL in turn) posting ``body(n)`` with the
    other party as addressee, while TR's and IL's event streams are read; requests a second, its CPU a
    request, and the rows it stored (every 201 a row: checked)."""
    with tempfile.TemporaryDirectory(prefix="bench-minimal-") as folder:
        db = str(Path(folder) / "minimal.db")
        try:
            tokens = _seed(db)
        except ServerFailed as e:
            return {"failed": str(e)}
        parties = {token: party for party, token in tokens.items() if party in ("TR", "IL")}
        by_party = {party: token for token, party in parties.items()}

        def addressed(n: int) -> Any:
            return {**body(n), "to": ["IL" if n % 2 == 0 else "TR"]}

        script = [MINIMAL_SERVER, db, "{port}", json.dumps(parties)]
        out = _drive(
            script,
            seconds,
            clients,
            "/messages",
            addressed,
            "the minimal server",
            token=lambda n: by_party["TR" if n % 2 == 0 else "IL"],
            streams=[by_party["TR"], by_party["IL"]],
        )
        if "requests_per_s" in out:
            with sqlite3.connect(db) as con:
                out["rows_stored"] = con.execute("SELECT count(*) FROM messages WHERE id LIKE 'MF%'").fetchone()[0]
        return out


def _drive(
    script: list[str],
    seconds: float,
    clients: int,
    path: str,
    body: Callable[[int], Any],
    name: str,
    *,
    token: Callable[[int], str] = lambda n: "x",
    streams: list[str] | None = None,
) -> dict[str, Any]:
    """Start ``python -c script[0] script[1:]`` (``{port}`` replaced by a free port), post ``body(n)`` to
    ``path`` from ``clients`` threads (thread n with ``token(n)``) for ``seconds`` while one reader per token
    in ``streams`` reads ``GET /events``; requests a second and the server's CPU a request."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in script[1:]] or [str(port)]
    proc = subprocess.Popen([sys.executable, "-c", script[0], *argv], stderr=subprocess.DEVNULL)
    readers: list[threading.Thread] = []
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(400):
            try:
                with Poster(base, token(0)) as p:
                    p.post(path, body(0))
                break
            except (OSError, http.client.HTTPException):
                if proc.poll() is not None:
                    return {"failed": f"{name} exited ({proc.returncode})"}
                time.sleep(0.05)
        else:
            return {"failed": f"{name} did not answer within 20 s"}
        for reader_token in streams or []:
            readers.append(threading.Thread(target=_read_stream, args=(port, reader_token), daemon=True))
            readers[-1].start()
        count = [0]
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(n: int) -> None:
            done = 0
            try:
                with Poster(base, token(n)) as p:
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
        "requests": count[0],
    }
    if errors:
        out["client_errors"] = errors[:3]
    return out


def _read_stream(port: int, token: str) -> None:
    """Read ``GET /events`` until the server goes (what a watcher costs the server is paid, nothing kept)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/events", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        while response.read1(65536):
            pass
    except (OSError, http.client.HTTPException):
        return


def service_floor(what: str, calls: int) -> dict[str, Any]:
    """The use case ``what`` (``message`` or ``notice``) called ``calls`` times in a process of its own on a
    fresh demo database: CPU and wall milliseconds a call, the record entries a call appended, and the
    milliseconds a call spent in the native code that does the work (:data:`NATIVE_PARTS`), by part and in
    all (``native_cpu_ms``, the sync's wall left out)."""
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
                json.dumps(NATIVE_PARTS),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]}
    found = json.loads(out.stdout.strip().splitlines()[-1])
    native = {part: round(ms, 3) for part, ms in sorted(found["native_ms"].items())}
    return {
        "calls": found["calls"],
        "cpu_ms": round(found["cpu_ms"], 3),
        "wall_ms": round(found["wall_ms"], 3),
        "entries_per_call": round(found["entries_per_call"], 2),
        "native_ms": native,
        "native_cpu_ms": round(sum(ms for part, ms in native.items() if part != "sync (wall)"), 3),
    }


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
    hand-over between cores); for a message, the minimal server too (:func:`minimal_floor`), the messages a
    second it allows on one core and the measured server CPU a message over its own; and ``physical_ms``, the
    HTTP floor plus the use case's native work (signatures, hashes, SQLite, JSON, geometry: what any
    implementation on these libraries spends), with the writes a second it allows on one core and the
    measured server CPU over it."""
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
    native = alone.get("native_cpu_ms")
    if isinstance(native, int | float) and "server_cpu_ms_per_request" in http:
        physical = http["server_cpu_ms_per_request"] + native
        out["physical_ms"] = round(physical, 3)
        out["physical_per_core_s"] = round(1000 / physical, 1) if physical > 0 else None
        for key, measured in (("measured_over_physical", server_cpu_ms), ("pinned_over_physical", pinned_cpu_ms)):
            if isinstance(measured, int | float) and physical > 0:
                out[key] = round(measured / physical, 2)
    if what == "message":
        minimal = out["minimal_server"] = minimal_floor(seconds, clients, body)
        least = minimal.get("server_cpu_ms_per_request")
        if isinstance(least, int | float) and least > 0:
            out["minimal_per_core_s"] = round(1000 / least, 1)
            for key, measured in (("measured_over_minimal", server_cpu_ms), ("pinned_over_minimal", pinned_cpu_ms)):
                if isinstance(measured, int | float):
                    out[key] = round(measured / least, 2)
    return out
