"""Benchmark of the HTTP service: two parties notifying in a busy area through the real server, on SQLite
and PostgreSQL, with 1 and 2 server processes, in one run.

For each configuration (bench/_matrix.py) the Syria scenario is seeded on a fresh database and served by
``deconflict serve`` (1 process, or 2: ``--workers 2`` when the command has it, else two processes on two
ports with the clients spread over both); client threads of Türkiye and Israel notify activities whose
volumes all lie within 50 km of T4, while each party's duty officer watches the event stream (TR's from
the first process, IL's from the second). Measured: notices per second (detection + storage + record),
request latency p50/p90/p99, notify → counterpart-stream delivery of each conflict, every answer's status
(503s counted), and afterwards every notice answered 201 looked for in the record (none may be lost) and
the chains verified. Ratios are against SQLite with 1 process in the same run.

PostgreSQL: ``DECONFLICT_BENCH_PG`` or ``DECONFLICT_TEST_PG``, else a throwaway durable cluster started
with scripts/pg-test-cluster when PostgreSQL 15 is installed; the JSON says which, or why it was skipped.

    scripts/uv run python bench/api.py [--seconds 15] [--clients 8] [--quick] [--stores sqlite,postgresql]
        [--processes 1,2] [--baseline /tmp/base/src] [--no-floor] [--live N]

The work a notice costs grows with the conflicts it raises (a finding and an alert to each party: three
record entries each). Without ``--live`` every notice's window lies in the same 48 hours, so the area fills
as the run goes on: the conflicts a notice (``conflicts_per_notice``) depend on the run's length and on the
server's own speed. ``--live N`` holds the area at about N notices (filled first, not timed): the same
conflicts a notice whatever the run, to measure the service at a density of one's choosing.

Each configuration also reports the servers' CPU time per request (from /proc), steadier than the
throughput on a machine shared with other work, and the clients' own (``client_cpu_ms_per_request``: the
senders, ``bench/_http.py``, and the two stream readers, all in this process). ``--baseline`` measures an
earlier checkout's servers too (SQLite, 1 process) and gives this code's figures over theirs
(``vs_baseline``). Then ``floor`` (bench/_floor.py), in the same run: the server CPU of a request to a
server that does nothing (the same uvicorn configuration, the same clients, the same notices), the CPU of
``notify`` alone in process, their sum, the notices a second it allows on one core, and the measured
server CPU a notice over it; and ``native_floor_ms``: the HTTP floor plus the CPU ``notify`` spends inside
its native calls (signatures, hashes, SQLite, JSON, geometry, the sync; profiled on the CPU clock;
``entries_per_call`` the record entries a notice appends), what the service's own statements and signatures
cost with no Python around them (an upper estimate of that: bench/_floor.py says why), and the measured server
over it; and ``plain_server`` (pinned too, ``plain_server_pinned``): a server on the same stack that does a
notice's work and nothing else (bench/_floor.py: the body checked, the conflicts found with the same index, the
same entries signed and chained with their rows, group commit, both streams written), sent as many notices as
the service took, so at the same density: what this stack does for that work on this machine, and the
service's CPU a notice over it (``service_over_it``).

Human-readable progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _floor import floors  # noqa: E402  (bench/_*.py: the benchmarks' helpers)
from _http import Poster, client_cpu_seconds  # noqa: E402
from _matrix import BASELINE, latency_ms, log, run_matrix, statuses  # noqa: E402
from _servers import M, Servers, cpu_per_request, record_entries  # noqa: E402

__all__ = ["M", "StreamWatcher", "add_matrix_options", "measure", "pin_cpu", "random_notice"]

T4 = (37.6298, 34.5226)


WINDOWS = timedelta(hours=48)
"""A notice's window starts within this span (after its slot, 2 hours ahead)."""


def random_notice(rng: random.Random, now: datetime, slot: timedelta = timedelta(0)) -> dict[str, Any]:
    """A notice with one circle volume whose centre is within 50 km of T4 (radius 1–8 km), its window
    starting within :data:`WINDOWS` after ``now`` + 2 hours + ``slot`` (:func:`live_slot`)."""
    bearing = rng.uniform(0, 2 * math.pi)
    dist_km = 42 * math.sqrt(rng.random())
    lat = T4[1] + dist_km * math.cos(bearing) / 111.0
    lon = T4[0] + dist_km * math.sin(bearing) / (111.0 * math.cos(math.radians(T4[1])))
    start = now + timedelta(hours=2) + slot + timedelta(minutes=rng.uniform(0, WINDOWS / timedelta(minutes=1)))
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


def live_slot(n: int, live: int | None) -> timedelta:
    """Where notice ``n`` (the run's n-th, from 0) of a busy area holding about ``live`` notices at a time
    starts its span of windows: the spans move on by :data:`WINDOWS` every ``live`` notices, so that each
    notice meets about as many earlier ones (those of the last ``live`` or so) whatever the run's length and
    the server's speed. None: every notice in the same span, and the area fills as the run goes on (each
    notice meets more than the one before: the figure falls with the run's length and rises less than the
    server's speed)."""
    return timedelta(0) if live is None else WINDOWS * (n / live)


LIVE_HORIZON = timedelta(days=170)
"""The latest a notice of ``--live`` may start: within the scenario's horizon (180 days ahead)."""


def check_live(live: int | None, seconds: float, most_per_s: float = 1000.0) -> str | None:
    """Why ``--live`` cannot hold for a run of ``seconds`` at up to ``most_per_s`` notices a second (None: it
    can): its last notices would start beyond the scenario's horizon."""
    if live is None:
        return None
    if live < 1:
        return f"--live {live}: give a number of notices of 1 or more"
    spans = (LIVE_HORIZON - timedelta(hours=2) - WINDOWS) / WINDOWS  # how many spans fit before the horizon
    run = most_per_s * seconds  # the area is filled first (``live`` notices), then the run's notices
    if live + run > live * spans:
        return (
            f"--live {live}: a run of {seconds:g} s at up to {most_per_s:g} notices a second would place its last "
            f"notices beyond the scenario's horizon (180 days); give --live {math.ceil(run / (spans - 1))} or "
            "more, or fewer seconds"
        )
    return None


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
        self.connected = threading.Event()
        """Set once the server answered the stream with 200 (its events may come from then on)."""

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            self._read(headers)
        except httpx.HTTPError:  # the server stopped (or dropped the stream): the arrivals so far stand
            return

    def _read(self, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as c:
            with c.stream("GET", f"{self.base}/events?after={self.after}", headers=headers) as r:
                if r.status_code == 200:
                    self.connected.set()
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


def notified(entry: dict[str, Any]) -> str | None:
    """The activity an ``activity.notified`` entry of the record (as the facilitator reads it) notified."""
    if entry.get("type") != "activity.notified":
        return None
    payload = entry.get("payload") or {}
    activity = payload.get("activity")
    return str(activity if isinstance(activity, str) else (activity or {}).get("id") or payload.get("id") or "")


def measure(servers: Servers, seconds: float, clients: int, seed: int, live: int | None = None) -> dict[str, Any]:
    """Clients notify for ``seconds`` against running servers (spread over their addresses); TR's stream
    is read from the first address, IL's from the last (with two ports: across processes). Then every
    notice answered 201 is looked for in the record. ``live``: the area is first filled with that many
    notices (not timed), and holds about as many throughout (:func:`live_slot`)."""
    tokens = servers.tokens
    now = datetime.now(UTC)
    count = [0]  # notices sent so far, the fill's included: each one's slot
    lock = threading.Lock()

    def slot() -> timedelta:
        with lock:
            n, count[0] = count[0], count[0] + 1
        return live_slot(n, live)

    if live is not None:
        fill(servers, clients, seed, now, slot, live)
    first = servers.address(0)
    after = max([0, *(int(e["seq"]) for e in record_entries(first, tokens["AZ"], 0))])
    watchers = {
        "TR": StreamWatcher(servers.address(0), tokens["TR"], after),
        "IL": StreamWatcher(servers.addresses[-1], tokens["IL"], after),
    }
    for w in watchers.values():
        w.start()
    time.sleep(0.5)
    sent: dict[str, tuple[float, str]] = {}
    accepted: set[str] = set()
    latencies: list[float] = []
    codes: list[int] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    raised_total = [0]

    def client(n: int) -> None:
        party = "TR" if n % 2 == 0 else "IL"
        base = servers.address(n // 2)  # each party's clients on every address
        rng = random.Random(seed * 1000 + n)
        with Poster(base, tokens[party]) as c:
            while time.perf_counter() < stop_at:
                body = random_notice(rng, now, slot())
                t0 = time.perf_counter()
                try:
                    r = c.post("/activities", body)
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
                        continue
                    out = r.json()
                    accepted.add(out["activity"]["id"])
                    if out["raised"]:
                        sent[out["activity"]["id"]] = (t0, party)
                        raised_total[0] += len(out["raised"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    cpu_before, client_before = servers.cpu_seconds(), client_cpu_seconds()
    for t in threads:
        t.start()
    time.sleep(min(1.0, seconds / 2))
    spread = servers.connections()  # with --workers: which worker the kernel gave each connection
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    cpu_after, client_cpu = servers.cpu_seconds(), client_cpu_seconds() - client_before
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
    recorded = {a for e in record_entries(first, tokens["AZ"], after) if (a := notified(e))}
    ok = len(accepted)
    result: dict[str, Any] = {
        "seconds": round(elapsed, 2),
        "clients": clients,
        "notices": ok,
        "notices_per_s": round(ok / elapsed, 1),
        **latency_ms(latencies),
        **cpu_per_request(cpu_before, cpu_after, len(latencies)),
        "client_cpu_ms_per_request": round(client_cpu / max(len(latencies), 1) * 1000, 3),
        "connections_per_process": spread,
        **statuses(codes),
        "first_errors": errors[:3],
        "accepted_in_record": len(accepted & recorded),
        "accepted_lost": len(accepted - recorded),
        "recorded_not_accepted": len(recorded - accepted),
        "conflicts_raised": raised_total[0],
        "conflicts_per_notice": round(raised_total[0] / max(ok, 1), 2),
        "notices_with_conflict": len(sent),
        "live": live,
        **latency_ms(delivery, "delivery"),
        "delivery_missing": missing,
    }
    result["targets"] = {
        "notices_per_s": {"limit": 500, "pass": result["notices_per_s"] >= 500},
        "request_p99_ms": {"limit": 50, "pass": (result["request_p99_ms"] or 1e9) < 50},
        "delivery_p99_ms": {"limit": 100, "pass": (result["delivery_p99_ms"] or 1e9) < 100},
    }
    return result


def fill(servers: Servers, clients: int, seed: int, now: datetime, slot: Callable[[], timedelta], live: int) -> None:
    """Fill the area with ``live`` notices before the run (each answered 201, none timed), by ``clients``
    threads of both parties."""
    tokens = servers.tokens
    left = [live]
    lock = threading.Lock()
    failed: list[str] = []

    def client(n: int) -> None:
        party = "TR" if n % 2 == 0 else "IL"
        rng = random.Random(seed * 1000 + 500 + n)  # other notices than the run's
        with Poster(servers.address(n // 2), tokens[party]) as c:
            while True:
                with lock:
                    if left[0] <= 0 or failed:
                        return
                    left[0] -= 1
                r = c.post("/activities", random_notice(rng, now, slot()))
                if r.status_code != 201:
                    with lock:
                        failed.append(f"{r.status_code} {r.text[:200]}")

    log(f"api: filling the area with {live} notices")
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise RuntimeError(f"filling the area: a notice was refused: {failed[0]}")


def add_matrix_options(ap: argparse.ArgumentParser) -> None:
    """The options both HTTP benchmarks share: which stores and how many processes."""
    ap.add_argument("--stores", default="sqlite,postgresql", help="Comma-separated: sqlite, postgresql.")
    ap.add_argument("--processes", default="1,2", help="Comma-separated server process counts.")
    ap.add_argument(
        "--two-as",
        choices=("auto", "workers", "ports", "both"),
        default="auto",
        help="How several processes run: serve --workers behind one address, one serve per port, or both "
        "(auto: --workers when serve has it).",
    )
    ap.add_argument(
        "--pin",
        type=pin_cpu,
        default="auto",
        metavar="CPU",
        help="Also measure SQLite with 1 process pinned to this CPU (serve --cpus), in the same run; auto: the "
        "last CPU this process may use, when it may use two or more; none: not measured.",
    )
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="Also measure the servers of an earlier checkout's source tree (e.g. after `git worktree add "
        "/tmp/base HEAD~1`: /tmp/base/src) on SQLite with 1 process, in the same run, for the ratio (pinned too "
        "when --pin is given: see --pairs).",
    )
    ap.add_argument(
        "--pairs",
        type=int,
        default=3,
        metavar="N",
        help="With --baseline and --pin: this code and the baseline measured pinned N times each, in pairs of "
        "alternating order; vs_baseline_pinned holds the median of the pairs' ratios (default 3).",
    )


def pin_cpu(option: str) -> int | None:
    """The CPU ``--pin`` names (auto: the last this process may use, when it may use two or more; none).

    Raises:
        argparse.ArgumentTypeError: not auto, none or a CPU this process may use (argparse says so in a line).
    """
    if option == "none":
        return None
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if option == "auto":
        return allowed[-1] if len(allowed) >= 2 else None
    if not (option.isascii() and option.isdigit()) or int(option) not in allowed:
        raise argparse.ArgumentTypeError(f"{option!r}: give auto, none or a CPU this process may use {allowed}")
    return int(option)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0, help="How long the clients notify, per configuration.")
    ap.add_argument("--clients", type=int, default=8, help="Client threads (half per party).")
    ap.add_argument("--seed", type=int, default=20250409)
    ap.add_argument("--quick", action="store_true", help="3 s and 4 clients per configuration, for a smoke test.")
    ap.add_argument(
        "--no-floor",
        action="store_true",
        help="Skip the floors (HTTP alone, the use case alone, its native work: bench/_floor.py).",
    )
    ap.add_argument(
        "--live",
        type=int,
        metavar="N",
        help="A busy area that holds about N notices at a time: it is filled with N notices first (not timed), "
        "and each notice meets about as many earlier ones whatever the run's length and the server's speed "
        "(conflicts_per_notice says how many it raised). Without it every notice's window lies in the same 48 "
        "hours, and the area fills as the run goes on.",
    )
    add_matrix_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.clients = 3.0, 4
    if (why := check_live(args.live, args.seconds)) is not None:
        ap.error(why)
    log(f"api bench: {args.clients} clients for {args.seconds:g} s per configuration")
    result = run_matrix(
        "api",
        lambda servers, seconds: measure(servers, seconds, args.clients, args.seed, args.live),
        throughput="notices_per_s",
        seconds=args.seconds,
        stores=args.stores.split(","),
        processes=[int(n) for n in args.processes.split(",")],
        two_as=args.two_as,
        baseline=args.baseline,
        pinned=args.pin,
        pairs=args.pairs,
    )
    result["area"] = (
        "every volume within 50 km of T4 (circles 1-8 km, windows in the next 48 h)"
        if args.live is None
        else f"every volume within 50 km of T4 (circles 1-8 km); about {args.live} notices at a time, each "
        f"one's window within 48 h of those of the last {args.live} notices"
    )
    result["note"] = "servers and clients share the same cores"
    measured = result["configs"].get(BASELINE, {})
    if args.live is not None and not args.no_floor:
        # the floors' notify alone fills the area as it goes (bench/_floor.py), another density than --live's
        result["floor"] = {"skipped": "with --live: the floors measure an area that fills as it goes"}
    elif not args.no_floor and "server_cpu_ms_per_request" in measured:
        log("api: the floors (HTTP alone, the use case alone, the plain notice server) ...")
        pinned = result["configs"].get(f"{BASELINE}-pinned", {})
        rng = random.Random(args.seed)
        result["floor"] = floors(
            "notice",
            seconds=min(args.seconds, 10.0),
            clients=args.clients,
            path="/activities",
            body=lambda n: random_notice(rng, datetime.now(UTC)),
            calls=measured.get("notices") or 100,  # as many as the server took: the area as full
            server_cpu_ms=measured["server_cpu_ms_per_request"],
            pinned_cpu_ms=pinned.get("server_cpu_ms_per_request"),
            pinned=args.pin if "server_cpu_ms_per_request" in pinned else None,
            pinned_calls=pinned.get("notices"),
        )
        log(f"api: floors {json.dumps(result['floor'])}")
    for key, c in result["configs"].items():
        if "skipped" in c or "failed" in c:
            log(f"{key}: {c}")
        else:
            log(
                f"{key}: {c['notices_per_s']} notices/s, server CPU {c['server_cpu_ms_per_request']} ms a notice "
                f"({c.get('requests_per_core_s')}/s on a whole core), "
                f"request p50 {c['request_p50_ms']} ms p99 "
                f"{c['request_p99_ms']} ms, delivery p99 {c['delivery_p99_ms']} ms, 503s {c['503s']}, "
                f"lost {c['accepted_lost']}, verifies {c['record_check']['verifies']}"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
