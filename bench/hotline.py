"""Benchmark of the hotline: two parties exchanging messages through the real server, durably stored.

Starts ``deconflict demo`` (uvicorn, SQLite WAL file) on loopback; client threads of
Türkiye and Israel send standard messages addressed to each other while each party
watches its event stream. Measures sustained messages per second and send → counterpart
receipt latency (p50/p99). The last line of stdout is one JSON object.

    uv run python bench/hotline.py [--seconds 20] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from api import M, StreamWatcher, free_port, log, start_server, stop_server  # noqa: E402  (bench/api.py: the same demo server)


def message_key(event: str, entry: dict[str, Any]) -> str | None:
    """The id of a message addressed to the reader (withheld ones carry no ``message``)."""
    return entry["message"]["id"] if event == "message.sent" and "message" in entry else None


def run(seconds: float, clients: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-hotline-"))
    port = free_port()
    proc, tokens = start_server(tmp / "hotline.db", port)
    base = f"http://127.0.0.1:{port}/api/v1/mechanisms/{M}"
    try:
        head = httpx.get(f"{base}/record", headers={"Authorization": f"Bearer {tokens['IL']}"}).json()["next_after"]
        watchers = {p: StreamWatcher(base, tokens[p], head, message_key) for p in ("TR", "IL")}
        for w in watchers.values():
            w.start()
        time.sleep(0.5)
        sent: dict[str, tuple[float, str]] = {}
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(n: int) -> None:
            party = "TR" if n % 2 == 0 else "IL"
            other = "IL" if party == "TR" else "TR"
            body = {"template": "holding", "params": {"ref": f"C{n}"}, "to": [other]}
            with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {tokens[party]}"}) as c:
                while time.perf_counter() < stop_at:
                    t0 = time.perf_counter()
                    r = c.post(f"{base}/messages", json=body)
                    t1 = time.perf_counter()
                    with lock:
                        latencies.append(t1 - t0)
                        if r.status_code != 201:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                        else:
                            sent[r.json()["id"]] = (t0, other)

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
        delivery, missing = [], 0
        for mid, (t0, to) in sent.items():
            arrived = watchers[to].arrivals.get(mid)
            if arrived is None:
                missing += 1
            else:
                delivery.append(arrived - t0)
        lat = np.array(latencies) * 1000
        dl = np.array(delivery) * 1000 if delivery else np.array([np.nan])
        result = {
            "bench": "hotline",
            "seconds": round(elapsed, 2),
            "clients": clients,
            "messages": len(sent),
            "errors": len(errors),
            "first_errors": errors[:3],
            "messages_per_s": round(len(sent) / elapsed, 1),
            "request_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "request_p99_ms": round(float(np.percentile(lat, 99)), 2),
            "receipt_p50_ms": round(float(np.nanpercentile(dl, 50)), 2),
            "receipt_p99_ms": round(float(np.nanpercentile(dl, 99)), 2),
            "receipt_missing": missing,
            "machine": {"nproc": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
            "note": "server and clients share the same 2 cores; SQLite WAL, every message committed before 201",
        }
        result["targets"] = {
            "messages_per_s": {"limit": 2000, "pass": result["messages_per_s"] >= 2000},
            "receipt_p99_ms": {"limit": 50, "pass": result["receipt_p99_ms"] < 50},
        }
        return result
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=2, help="Client threads (alternating parties).")
    ap.add_argument("--quick", action="store_true", help="3 s, for a smoke test.")
    args = ap.parse_args()
    if args.quick:
        args.seconds = 3.0
    log(f"hotline bench: {args.clients} clients for {args.seconds:g} s")
    result = run(args.seconds, args.clients)
    rate, p50, p99 = result["messages_per_s"], result["receipt_p50_ms"], result["receipt_p99_ms"]
    log(f"{rate} messages/s, receipt p50 {p50} ms p99 {p99} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
