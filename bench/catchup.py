"""Benchmark of an event stream catching up: a party's client that opens ``GET .../events?after=0`` on a record
that already holds tens of thousands of entries (a new operations centre, a client reinstalled, a mirror
started), read to the head through the real server.

The Syria scenario is seeded and its record filled through ``deconflict serve`` (8 client threads sending
hotline messages, the two parties in turn) to ``--entries``; that database is then copied for each server
measured, so that every one reads the same record. For each: the server started on its copy, left until its
own start-up work is done (the duty loop writes its replay snapshots: the server's CPU is still for a
second), then ``--streams`` streams (Türkiye's and Israel's duty officers in turn) read from ``after=0`` to
the head at once. Measured: the seconds until the last stream reaches the head, the entries a second, the
server's CPU for it (from /proc) and per entry read, and the bytes. ``--baseline SRC`` measures an earlier
checkout's server (its ``src``) on a copy of the same database too, in the same run, and gives this code's
figures over its. With ``--baseline`` the database is filled by the baseline's code (this code upgrades its
copy when it opens it; an earlier checkout could not open a database a later migration changed).

    .venv/bin/python bench/catchup.py [--entries 40000] [--streams 1] [--baseline /tmp/base/src] [--cpus 1]

Human-readable progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _http import Poster  # noqa: E402  (bench/_*.py: the benchmarks' helpers)
from _matrix import copy_database, log  # noqa: E402
from _servers import ServerFailed, Servers, _env, _wait_ready, deconflict_exe, free_port, start_servers  # noqa: E402

PARTIES = ("TR", "IL")


def fill(servers: Servers, entries: int, clients: int = 8) -> int:
    """Send hotline messages (each one record entry) until the record holds ``entries``; the head reached."""
    head = [_last_seq(servers)]
    lock = threading.Lock()

    def client(n: int) -> None:
        party = PARTIES[n % 2]
        other = PARTIES[(n + 1) % 2]
        with Poster(servers.address(0), servers.tokens[party]) as poster:
            while True:
                with lock:
                    if head[0] >= entries:
                        return
                    head[0] += 1
                answer = poster.post("/messages", {"template": "holding", "params": {"ref": f"C{n}"}, "to": [other]})
                if answer.status_code != 201:
                    raise RuntimeError(f"filling the record: {answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _last_seq(servers)


def _last_seq(servers: Servers) -> int:
    """The record's head, as the facilitator reads the record's pages."""
    after = 0
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {servers.tokens['AZ']}"}) as c:
        while True:
            page = c.get(f"{servers.address(0)}/record", params={"after": after, "limit": 5000}).json()
            if not page["entries"]:
                return after
            after = page["next_after"]


STALL_S = 60.0
"""A stream that brings no entry for this long has stopped short of the head (it is given up, and the run says
``complete: false``): the database served may lack the record's last entries."""


def read_to_head(base: str, token: str, head: int, out: dict[str, Any]) -> None:
    """Read the event stream from ``after=0`` until the entry ``head``: entries, bytes, seconds into ``out``."""
    began = time.perf_counter()
    entries = size = 0
    with httpx.Client(timeout=httpx.Timeout(30.0, read=STALL_S)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with client.stream("GET", f"{base}/events", params={"after": 0}, headers=headers) as response:
                moved = time.monotonic()
                for line in response.iter_lines():  # keep-alive comments come while the stream is quiet
                    size += len(line) + 1
                    if line.startswith("id: "):
                        entries += 1
                        moved = time.monotonic()
                        if int(line[4:]) >= head:
                            break
                    elif time.monotonic() - moved > STALL_S:
                        log(f"a stream stopped at {entries:,} entries, short of entry {head:,}: given up")
                        break
        except httpx.ReadTimeout:
            log(f"a stream sent nothing for {STALL_S:.0f} s at {entries:,} entries: given up")
    out.update(entries=entries, bytes=size, seconds=time.perf_counter() - began)


def settle(servers: Servers, still_s: float = 0.05, most_s: float = 120.0) -> float:
    """Wait until the server's own start-up work is done (its CPU still for a second); the seconds waited."""
    began = time.monotonic()
    last = servers.cpu_seconds()
    while time.monotonic() - began < most_s:
        time.sleep(1.0)
        now = servers.cpu_seconds()
        if last is None or now is None or now - last < still_s:
            break
        last = now
    return round(time.monotonic() - began, 1)


def measure(db: Path, folder: Path, head: int, streams: int, src: str | None, cpus: list[int] | None) -> dict[str, Any]:
    """Serve ``db`` (run from ``src``, or this checkout) and read ``streams`` streams from 0 to the head at once."""
    servers = _serve(db, folder, src, cpus)
    try:
        waited = settle(servers)
        before = servers.cpu_seconds()
        results: list[dict[str, Any]] = [{} for _ in range(streams)]
        threads = [
            threading.Thread(
                target=read_to_head, args=(servers.address(0), servers.tokens[PARTIES[n % 2]], head, results[n])
            )
            for n in range(streams)
        ]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - began
        after = servers.cpu_seconds()
    finally:
        servers.stop()
    read = sum(r.get("entries", 0) for r in results)
    cpu = None if before is None or after is None else after - before
    return {
        "streams": streams,
        "entries_read": read,
        "complete": all(r.get("entries") == head for r in results),
        "seconds": round(seconds, 2),
        "entries_per_s": round(read / seconds, 1),
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "server_cpu_us_per_entry": None if cpu is None else round(cpu / max(read, 1) * 1e6, 1),
        "mb": round(sum(r.get("bytes", 0) for r in results) / 1e6, 1),
        "settled_after_s": waited,
    }


def _serve(db: Path, folder: Path, src: str | None, cpus: list[int] | None) -> Servers:
    """``deconflict serve`` on ``db`` as it is (no seeding: it holds the filled record), with the tokens the
    seeding wrote beside it."""
    tokens = json.loads((folder / "tokens.json").read_text())
    port = free_port()
    command = [str(deconflict_exe()), "serve", "--db", str(db), "--writes-per-minute", "0", "--port", str(port)]
    if cpus:
        command += ["--cpus", ",".join(map(str, cpus))]
    log_path = folder / f"server-{db.stem}.log"
    with log_path.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=_env(src))
    servers = Servers(db=str(db), processes=1, mode="single", addresses=[], tokens=tokens, src=src)
    servers.procs.append(proc)
    servers.logs.append(log_path)
    try:
        _wait_ready(proc, port, log_path)
    except BaseException:
        servers.stop()
        raise
    servers.addresses.append(f"http://127.0.0.1:{port}/api/v1/mechanisms/tr-il-syria")
    return servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=40_000, help="entries the record holds (default 40,000)")
    parser.add_argument("--streams", type=int, default=1, help="streams reading from 0 at once (default 1)")
    parser.add_argument("--baseline", help="an earlier checkout's src, measured in the same run")
    parser.add_argument("--cpus", help="pin the server to these CPUs (serve --cpus), e.g. 1")
    args = parser.parse_args()
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else None
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deconflict-catchup-") as tmp:
        folder = Path(tmp)
        filled = folder / "filled.db"
        log(f"filling a record to {args.entries:,} entries")
        # filled by the baseline's code when there is one: this code upgrades its copy as it opens it, where an
        # earlier checkout could not open a database a later migration has changed
        servers = start_servers(str(filled), 1, folder, workers=False, src=args.baseline)
        try:
            (folder / "tokens.json").write_text(json.dumps(servers.tokens))
            t0 = time.perf_counter()
            head = fill(servers, args.entries)
            fill_s = time.perf_counter() - t0
        finally:
            servers.stop()
        log(f"record filled: {head:,} entries in {fill_s:.0f} s")
        runs: dict[str, Any] = {}
        for name, src in [("this", None), *([("baseline", args.baseline)] if args.baseline else [])]:
            db = folder / f"{name}.db"
            copy_database(filled, db)
            try:
                runs[name] = measure(db, folder, head, args.streams, src, cpus)
            except ServerFailed as e:
                runs[name] = {"failed": str(e)}
            log(f"{name}: {runs[name]}")
    result: dict[str, Any] = {"bench": "catchup", "entries": head, "fill_s": round(fill_s, 1), **runs}
    this, base = runs.get("this", {}), runs.get("baseline", {})
    if "server_cpu_us_per_entry" in base and this.get("server_cpu_us_per_entry") and base["server_cpu_us_per_entry"]:
        result["vs_baseline"] = {
            "server_cpu_per_entry": round(this["server_cpu_us_per_entry"] / base["server_cpu_us_per_entry"], 3),
            "entries_per_s": round(this["entries_per_s"] / base["entries_per_s"], 3),
        }
    result["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
