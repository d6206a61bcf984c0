"""Benchmark of the hotline: two parties exchanging messages through the real server, durably stored, on
SQLite and PostgreSQL, with 1 and 2 server processes, in one run.

For each configuration (bench/_matrix.py) the Syria scenario is seeded on a fresh database and served by
``deconflict serve`` (1 process, or 2: ``--workers 2`` when the command has it, else two processes on two
ports with the clients spread over both); client threads of Türkiye and Israel send standard messages
addressed to each other while each party watches its event stream (TR's from the first process, IL's
from the second). Measured: messages per second, request latency p50/p90/p99, send → counterpart receipt
p50/p90/p99, every answer's status (503s counted), and afterwards every message answered 201 looked for in
the record (none may be lost) and the chains verified. Ratios are against SQLite with 1 process in the
same run. PostgreSQL as in bench/api.py (the JSON says which server, or why it was skipped).

    scripts/uv run python bench/hotline.py [--seconds 15] [--clients 2] [--quick] [--stores sqlite,postgresql]
        [--processes 1,2] [--baseline /tmp/base/src] [--no-floor]

The servers' CPU per request and ``--baseline`` as in bench/api.py. The clients' own CPU a request
(``client_cpu_ms_per_request``: the senders and the two stream readers, all in this process) says how much
of the two cores the load itself took. Then ``floor`` (bench/_floor.py), in the same run: the server CPU of a
request to a server that does nothing (the same uvicorn configuration, the same clients), the CPU of
``send_message`` alone in process (and ``send_messages`` in batches of the size the server formed:
``message_batched``), their sum, the messages a second it allows on one core, and the
measured server CPU a message over it; the CPU of ``send_message``'s native calls with the HTTP floor
(``native_floor_ms``); and a plain server that does a message's work and nothing else (raw ``sqlite3`` into
the same tables, an Ed25519 signature, group commit, both streams written: ``plain_server``, and pinned as
the service was), driven by the same clients: its messages a second, its CPU a message, and the service's
CPU a message over it (``service_over_it``).

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _floor import floors  # noqa: E402  (bench/_*.py: the benchmarks' helpers)
from _http import Poster, client_cpu_seconds  # noqa: E402
from _matrix import BASELINE, latency_ms, log, run_matrix, statuses  # noqa: E402
from _servers import Servers, cpu_per_request, record_entries  # noqa: E402
from api import StreamWatcher, add_matrix_options  # noqa: E402  (bench/api.py: the same stream reader)

__all__ = ["measure", "message_key"]


def message_key(event: str, entry: dict[str, Any]) -> str | None:
    """The id of a message addressed to the reader (withheld ones carry no ``message``)."""
    return entry["message"]["id"] if event == "message.sent" and "message" in entry else None


def batches_so_far(servers: Servers) -> tuple[float, float] | None:
    """(calls, messages) the first address's process has recorded together so far (its /metrics:
    ``deconflict_write_batch_size``); None when it does not say (an earlier checkout's server)."""
    from prometheus_client.parser import text_string_to_metric_families

    root = servers.address(0).split("/api/", 1)[0]
    try:
        with urllib.request.urlopen(root + "/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    found: dict[str, float] | None = None
    for family in text_string_to_metric_families(text):
        if family.name == "deconflict_write_batch_size":  # its series appear with the first batch
            found = {s.name: s.value for s in family.samples if s.labels.get("batch") == "send_messages"}
    if found is None:
        return None
    return found.get("deconflict_write_batch_size_count", 0.0), found.get("deconflict_write_batch_size_sum", 0.0)


def measure(servers: Servers, seconds: float, clients: int) -> dict[str, Any]:
    """Clients send for ``seconds`` against running servers (spread over their addresses); TR's stream is
    read from the first address, IL's from the last. Then every message answered 201 is looked for in
    the record (as each party reads it: a message shows there to its sender and its addressees)."""
    tokens = servers.tokens
    first = servers.address(0)
    after = max([0, *(int(e["seq"]) for e in record_entries(first, tokens["AZ"], 0))])
    watchers = {
        "TR": StreamWatcher(servers.address(0), tokens["TR"], after, message_key),
        "IL": StreamWatcher(servers.addresses[-1], tokens["IL"], after, message_key),
    }
    for w in watchers.values():
        w.start()
    time.sleep(0.5)
    sent: dict[str, tuple[float, str]] = {}
    latencies: list[float] = []
    codes: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(n: int) -> None:
        party = "TR" if n % 2 == 0 else "IL"
        other = "IL" if party == "TR" else "TR"
        base = servers.address(n)  # with two ports: TR's first client on one process, IL's on the other
        body = {"template": "holding", "params": {"ref": f"C{n}"}, "to": [other]}
        with Poster(base, tokens[party]) as c:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    r = c.post("/messages", body)
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        codes.append(0)
                        errors.append(f"transport: {type(e).__name__}")
                    continue
                t1 = time.perf_counter()
                with lock:
                    latencies.append(t1 - t0)
                    codes.append(r.status_code)
                    if r.status_code != 201:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        sent[r.json()["id"]] = (t0, other)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    batched_before = batches_so_far(servers)
    cpu_before, client_before = servers.cpu_seconds(), client_cpu_seconds()
    for t in threads:
        t.start()
    time.sleep(min(1.0, seconds / 2))
    spread = servers.connections()  # with --workers: which worker the kernel gave each connection
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    cpu_after, client_cpu = servers.cpu_seconds(), client_cpu_seconds() - client_before
    batched_after = batches_so_far(servers)
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
    recorded = {
        found
        for party in ("TR", "IL")
        for e in record_entries(servers.address(1), tokens[party], after)
        if (found := message_key(str(e.get("type")), e)) is not None and e["message"]["template"] == "holding"
    }  # the clients' messages (the duty loop's own line checks are messages too)
    accepted = set(sent)
    result: dict[str, Any] = {
        "seconds": round(elapsed, 2),
        "clients": clients,
        "messages": len(sent),
        "messages_per_s": round(len(sent) / elapsed, 1),
        **latency_ms(latencies),
        **cpu_per_request(cpu_before, cpu_after, len(latencies)),
        "client_cpu_ms_per_request": round(client_cpu / max(len(latencies), 1) * 1000, 3),
        "connections_per_process": spread,
        **statuses(codes),
        "first_errors": errors[:3],
        "accepted_in_record": len(accepted & recorded),
        "accepted_lost": len(accepted - recorded),
        "recorded_not_accepted": len(recorded - accepted),
        **latency_ms(delivery, "receipt"),
        "receipt_missing": missing,
    }
    if batched_before is not None and batched_after is not None and batched_after[0] > batched_before[0]:
        calls, together = (after - before for before, after in zip(batched_before, batched_after, strict=True))
        # with --workers the scrape reached one of the processes: its batches stand for all
        result["messages_a_batch"] = round(together / calls, 2)
    result["targets"] = {
        "messages_per_s": {"limit": 2000, "pass": result["messages_per_s"] >= 2000},
        "receipt_p99_ms": {"limit": 50, "pass": (result["receipt_p99_ms"] or 1e9) < 50},
    }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0, help="How long the clients send, per configuration.")
    ap.add_argument("--clients", type=int, default=2, help="Client threads (alternating parties).")
    ap.add_argument("--quick", action="store_true", help="3 s per configuration, for a smoke test.")
    ap.add_argument(
        "--no-floor",
        action="store_true",
        help="Skip the floors (HTTP alone, the use case alone, the plain server: bench/_floor.py).",
    )
    add_matrix_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.seconds = 3.0
    log(f"hotline bench: {args.clients} clients for {args.seconds:g} s per configuration")
    result = run_matrix(
        "hotline",
        lambda servers, seconds: measure(servers, seconds, args.clients),
        throughput="messages_per_s",
        seconds=args.seconds,
        stores=args.stores.split(","),
        processes=[int(n) for n in args.processes.split(",")],
        two_as=args.two_as,
        baseline=args.baseline,
        pinned=args.pin,
        pairs=args.pairs,
    )
    result["note"] = "servers and clients share the same cores; every message committed before its 201"
    measured = result["configs"].get(BASELINE, {})
    if not args.no_floor and "server_cpu_ms_per_request" in measured:
        log("hotline: the floors (HTTP alone, the use case alone, the plain server) ...")
        result["floor"] = floors(
            "message",
            seconds=min(args.seconds, 10.0),
            clients=args.clients,
            path="/messages",
            body=lambda n: {"template": "holding", "params": {"ref": f"C{n}"}, "to": ["IL"]},
            calls=measured.get("messages") or 100,  # as many as the server took
            batch=measured.get("messages_a_batch"),  # and together as the server recorded them
            server_cpu_ms=measured["server_cpu_ms_per_request"],
            pinned_cpu_ms=result["configs"].get(f"{BASELINE}-pinned", {}).get("server_cpu_ms_per_request"),
            pinned=args.pin,
        )
        log(f"hotline: floors {json.dumps(result['floor'])}")
    for key, c in result["configs"].items():
        if "skipped" in c or "failed" in c:
            log(f"{key}: {c}")
        else:
            log(
                f"{key}: {c['messages_per_s']} messages/s, server CPU {c['server_cpu_ms_per_request']} ms a message "
                f"({c.get('requests_per_core_s')}/s on a whole core), "
                f"request p99 {c['request_p99_ms']} ms, receipt p50 "
                f"{c['receipt_p50_ms']} ms p99 {c['receipt_p99_ms']} ms, 503s {c['503s']}, "
                f"lost {c['accepted_lost']}, verifies {c['record_check']['verifies']}"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
