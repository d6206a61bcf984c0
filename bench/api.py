"""Benchmark of the HTTP service: two parties notifying in a busy area through the real server.

Starts ``deconflict demo`` (uvicorn, SQLite file, Syria scenario) as a separate process on
loopback, then runs client threads of Türkiye and Israel that notify activities whose
volumes all lie within 50 km of T4, while each party's duty officer watches the event
stream. Measures sustained notices per second (detection + storage + record), request
latency p50/p99, and notify → counterpart-stream delivery of each conflict (p50/p99).

    uv run python bench/api.py [--seconds 20] [--clients 8] [--quick]

Human-readable progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

T4 = (37.6298, 34.5226)
M = "tr-il-syria"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Run the demo server; returns the process and the printed tokens."""
    exe = Path(sys.executable).parent / "deconflict"
    proc = subprocess.Popen(
        [
            str(exe),
            "demo",
            "--db",
            str(db),
            "--port",
            str(port),
            "--writes-per-minute",
            "0",
        ],  # a load test: no write limit
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tokens: dict[str, str] = {}
    assert proc.stdout is not None
    while len(tokens) < 4:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("demo server exited before printing tokens")
        found = re.match(r"\s*(TR|IL|AZ|US)\s+(dcf_\S+)", line)
        if found:
            tokens[found.group(1)] = found.group(2)
    # keep reading what the server prints (a log line per request): a pipe nobody reads fills up, and the
    # server's event loop would then block writing its log
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc, tokens
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError("demo server did not answer") from None
            time.sleep(0.1)


def random_notice(rng: random.Random, now: datetime) -> dict[str, Any]:
    """A notice with one circle volume whose centre is within 50 km of T4 (radius 1–8 km)."""
    bearing = rng.uniform(0, 2 * math.pi)
    dist_km = 42 * math.sqrt(rng.random())
    lat = T4[1] + dist_km * math.cos(bearing) / 111.0
    lon = T4[0] + dist_km * math.sin(bearing) / (111.0 * math.cos(math.radians(T4[1])))
    start = now + timedelta(hours=2) + timedelta(minutes=rng.uniform(0, 48 * 60))
    floor = rng.uniform(0, 12_000)
    return {
        "kind": rng.choice(["air_sortie", "uav_patrol", "exercise"]),
        "volumes": [
            {
                "geometry": {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]},
                "radius_m": rng.uniform(1000, 8000),
                "floor_m": round(floor),
                "ceiling_m": round(floor + rng.uniform(300, 3000)),
                "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": (start + timedelta(minutes=rng.uniform(20, 180))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    }


def conflict_key(event: str, entry: dict[str, Any]) -> str | None:
    """The activity whose notice raised a conflict (what this benchmark times delivery of)."""
    return entry["payload"]["activity"] if event == "conflict.detected" and "payload" in entry else None


class StreamWatcher(threading.Thread):
    """Reads a party's event stream and notes when each event that ``key`` names first arrives."""

    def __init__(
        self, base: str, token: str, after: int, key: Callable[[str, dict[str, Any]], str | None] = conflict_key
    ) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.after, self.key = base, token, after, key
        self.arrivals: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as c:
            with c.stream("GET", f"{self.base}/events?after={self.after}", headers=headers) as r:
                kind, data = None, None
                for line in r.iter_lines():
                    if self.stop.is_set():
                        return
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "" and data is not None and kind is not None:
                        found = self.key(kind, json.loads(data))
                        if found is not None:
                            self.arrivals.setdefault(found, time.perf_counter())
                        kind, data = None, None


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Stop the demo server politely, then firmly."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(seconds: float, clients: int, seed: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    db = tmp / "bench.db"
    port = free_port()
    proc, tokens = start_server(db, port)
    base = f"http://127.0.0.1:{port}/api/v1/mechanisms/{M}"
    try:
        head = httpx.get(f"{base}/record", headers={"Authorization": f"Bearer {tokens['IL']}"}).json()["next_after"]
        watchers = {p: StreamWatcher(base, tokens[p], head) for p in ("TR", "IL")}
        for w in watchers.values():
            w.start()
        time.sleep(0.5)
        sent: dict[str, tuple[float, str]] = {}
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds
        now = datetime.now(UTC)
        raised_total = [0]

        def client(n: int) -> None:
            party = "TR" if n % 2 == 0 else "IL"
            rng = random.Random(seed * 1000 + n)
            headers = {"Authorization": f"Bearer {tokens[party]}"}
            with httpx.Client(timeout=30) as c:
                while time.perf_counter() < stop_at:
                    body = random_notice(rng, now)
                    t0 = time.perf_counter()
                    r = c.post(f"{base}/activities", json=body, headers=headers)
                    t1 = time.perf_counter()
                    with lock:
                        latencies.append(t1 - t0)
                        if r.status_code != 201:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                            continue
                        out = r.json()
                        if out["raised"]:
                            sent[out["activity"]["id"]] = (t0, party)
                            raised_total[0] += len(out["raised"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        time.sleep(1.0)
        for w in watchers.values():
            w.stop.set()
        delivery = []
        missing = 0
        for activity, (t0, party) in sent.items():
            counterpart = "IL" if party == "TR" else "TR"
            arrived = watchers[counterpart].arrivals.get(activity)
            if arrived is None:
                missing += 1
            else:
                delivery.append(arrived - t0)
        lat = np.array(latencies) * 1000
        dl = np.array(delivery) * 1000 if delivery else np.array([np.nan])
        ok = len(latencies) - len(errors)
        result = {
            "bench": "api",
            "seconds": round(elapsed, 2),
            "clients": clients,
            "notices": ok,
            "errors": len(errors),
            "first_errors": errors[:3],
            "notices_per_s": round(ok / elapsed, 1),
            "request_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "request_p99_ms": round(float(np.percentile(lat, 99)), 2),
            "conflicts_raised": raised_total[0],
            "notices_with_conflict": len(sent),
            "delivery_p50_ms": round(float(np.nanpercentile(dl, 50)), 2),
            "delivery_p99_ms": round(float(np.nanpercentile(dl, 99)), 2),
            "delivery_missing": missing,
            "area": "every volume within 50 km of T4 (circles 1-8 km, windows in the next 48 h)",
            "machine": {"nproc": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
            "note": "server and clients share the same 2 cores",
        }
        result["targets"] = {
            "notices_per_s": {"limit": 500, "pass": result["notices_per_s"] >= 500},
            "request_p99_ms": {"limit": 50, "pass": result["request_p99_ms"] < 50},
            "delivery_p99_ms": {"limit": 100, "pass": result["delivery_p99_ms"] < 100},
        }
        return result
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="How long the clients notify.")
    ap.add_argument("--clients", type=int, default=8, help="Client threads (half per party).")
    ap.add_argument("--seed", type=int, default=20250409)
    ap.add_argument("--quick", action="store_true", help="3 s and 4 clients, for a smoke test.")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.clients = 3.0, 4
    log(f"api bench: {args.clients} clients for {args.seconds:g} s")
    result = run(args.seconds, args.clients, args.seed)
    log(
        f"{result['notices_per_s']} notices/s, request p50 {result['request_p50_ms']} ms "
        f"p99 {result['request_p99_ms']} ms, delivery p50 {result['delivery_p50_ms']} ms "
        f"p99 {result['delivery_p99_ms']} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
