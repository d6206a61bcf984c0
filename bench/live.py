"""Benchmark of live traffic through the service: position reports fed over HTTP on loopback to a real
``deconflict serve`` on SQLite, for thousands of live tracks at 1 Hz, with the service's own duty loop
checking the tactical picture every second; conflicting pairs of aircraft injected at known times.

Each configuration (a number of live tracks) gets a fresh database with the Syria scenario
(bench/_servers.py). Türkiye and Israel first notify one activity each covering the traffic (TR from the
ground to 10,250 m, IL from 10,300 m to 20,600 m, over a 250 × 190 km rectangle east of T4), so that the
background traffic conforms and intrudes nowhere; the background flies in layers 350 m apart (more than
the 305 m vertical separation) on an 11 km grid (more than the 9,260 m separation), every aircraft on
the same course at the same speed: it raises no conflict of its own, whatever its size. Feeder threads
(half per party) then post every track's report once a second in batches of ``--batch`` reports
(``POST /mechanisms/{id}/tracks``, bodies encoded with orjson, as ``deconflict positions`` posts them);
when a round falls behind, the next starts at once (offered load above what the server accepts shows
as fewer reports per second, and as lag).

Every ``--inject-every`` seconds a pair is injected at a slot of its own (a grid of slots far apart, each
used again only after the previous pair left the picture): a Turkish aircraft at 10,150 m in a TR batch,
then, once that batch is acknowledged, an Israeli aircraft 4 km away head-on at 10,400 m in an IL batch:
that report creates a predicted loss of separation. Timed: from the start of the POST carrying the
Israeli report to the arrival of the alert (``message.sent``, template ``track_alert``, about the
conflict) on Türkiye's event stream, and of ``conflict.detected`` there.

Measured per configuration: reports accepted per second, the server's CPU per report (utime + stime of
the server process from /proc, over the measured window), request latency, alert latency p50/p90/p99,
and afterwards, from the database file, that every acknowledged report is stored (``acknowledged_lost``:
each (party, id, at) a 200 answered, looked for in the history; a request the client gave up on may
still have been stored, which is not a loss), that each
injected pair raised exactly one tracks conflict and the background none, and that the chains verify.

``--baseline REV`` also measures the service as it was at git revision REV (its ``src`` extracted with
``git archive`` and put first on the server's PYTHONPATH), in the same run, for the ratios.

    scripts/uv run python bench/live.py [--tracks 5000,10000,20000] [--seconds 40] [--baseline 81468b6]

Human-readable progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _matrix import latency_ms, log, statuses  # noqa: E402  (bench/_*.py: the benchmarks' helpers)
from _servers import Servers, ledger_check, start_servers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FT = 0.3048
KT = 1852 / 3600
WEST, EAST, SOUTH, NORTH = 37.0, 39.8, 34.2, 35.9
"""The rectangle both parties' activities cover (inside Syria)."""
GRID_M = 11_000.0
LAYER_M = 350.0
TR_LAYERS = [200.0 + k * LAYER_M for k in range(29)]  # 200 .. 10,000 m
IL_LAYERS = [10_700.0 + k * LAYER_M for k in range(29)]  # 10,700 .. 20,500 m
PAIR_TR_M, PAIR_IL_M = 10_150.0, 10_400.0
"""The injected pairs' altitudes: 250 m apart (inside the 305 m), at least 400 m from any other party's layer."""
SPEED_MPS = 100.0
PAIR_SPEED_MPS = 50.0
LAT0 = (SOUTH + NORTH) / 2
M_PER_DEG_LAT = 111_000.0
M_PER_DEG_LON = 111_000.0 * math.cos(math.radians(LAT0))


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def background(n: int) -> dict[str, list[tuple[str, float, float, float]]]:
    """(id, lat, lon, alt_m) at the start of each party's ``n // 2`` background tracks: layer by layer,
    on an 11 km grid inset 5 km from the west and south (they fly east at 100 m/s)."""
    cols = int((EAST - WEST) * M_PER_DEG_LON - 25_000) // int(GRID_M) + 1
    rows = int((NORTH - SOUTH) * M_PER_DEG_LAT - 10_000) // int(GRID_M) + 1
    out: dict[str, list[tuple[str, float, float, float]]] = {"TR": [], "IL": []}
    for party, layers in (("TR", TR_LAYERS), ("IL", IL_LAYERS)):
        per = n // 2
        if per > cols * rows * len(layers):
            raise SystemExit(f"{n} tracks do not fit the grid ({cols * rows * len(layers)} a party at most)")
        for i in range(per):
            layer, cell = i % len(layers), i // len(layers)
            r, c = divmod(cell, cols)
            lat = SOUTH + (5_000 + r * GRID_M) / M_PER_DEG_LAT
            lon = WEST + (5_000 + c * GRID_M) / M_PER_DEG_LON
            out[party].append((f"B{i:05d}", lat, lon, layers[layer]))
    return out


SLOT_COLS, SLOT_ROWS = 10, 4
"""Injection slots: 10 columns 25 km apart × 4 rows 45 km apart (a pair's 5-minute prediction spans 17 km)."""


def slot_centre(k: int) -> tuple[float, float]:
    r, c = divmod(k % (SLOT_COLS * SLOT_ROWS), SLOT_COLS)
    return SOUTH + (20_000 + r * 45_000) / M_PER_DEG_LAT, WEST + (12_000 + c * 25_000) / M_PER_DEG_LON


def report(tid: str, at: datetime, lat: float, lon: float, alt_m: float, gs_mps: float, trk: float) -> dict[str, Any]:
    return {
        "id": tid,
        "at": stamp(at),
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "alt_ft": round(alt_m / FT, 1),
        "gs_kt": round(gs_mps / KT, 2),
        "trk_deg": trk,
        "vs_fpm": 0,
    }


def rectangle(floor_m: float, ceiling_m: float, start: datetime) -> dict[str, Any]:
    ring = [[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH], [WEST, SOUTH]]
    return {
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "floor_m": floor_m,
        "ceiling_m": ceiling_m,
        "start": stamp(start),
        "end": stamp(start + timedelta(hours=6)),
    }


class Watcher(threading.Thread):
    """Reads a party's event stream; notes when each conflict's ``conflict.detected`` and its alert to
    this party (``message.sent``, template ``track_alert``) first arrive."""

    def __init__(self, base: str, token: str, after: int) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.after = base, token, after
        self.detected: dict[str, float] = {}
        self.alerted: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as c:
                headers = {"Authorization": f"Bearer {self.token}"}
                with c.stream("GET", f"{self.base}/events?after={self.after}", headers=headers) as r:
                    kind, data = None, None
                    for line in r.iter_lines():
                        if self.stop.is_set():
                            return
                        if line.startswith("event:"):
                            kind = line[6:].strip()
                        elif line.startswith("data:"):
                            data = line[5:].strip()
                        elif line == "" and data is not None:
                            self._note(kind, orjson.loads(data), time.perf_counter())
                            kind, data = None, None
        except httpx.HTTPError:
            return

    def _note(self, kind: str | None, entry: dict[str, Any], t: float) -> None:
        payload = entry.get("payload") or {}
        if kind == "conflict.detected" and payload.get("kind") == "tracks":
            self.detected.setdefault(str(payload.get("id")), t)
        elif kind == "message.sent":
            about = payload.get("about") or {}
            if payload.get("template") == "track_alert" and about.get("kind") == "conflict":
                self.alerted.setdefault(str(about.get("id")), t)


@dataclass
class Shared:
    """What the feeder threads share: the injection hand-over and the tallies."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=lambda: {"TR": [], "IL": []})
    """Injected reports waiting for the party's next batch: (pair number, report)."""
    pair_sent: dict[int, float] = field(default_factory=dict)
    """pair → perf_counter at the start of the POST carrying its Israeli report."""
    pair_conflict: dict[int, str] = field(default_factory=dict)
    """pair → id of the tracks conflict that POST raised."""
    accepted: int = 0
    acknowledged: set[tuple[str, str, str]] = field(default_factory=set)
    """(party, id, at) of every report a 200 acknowledged, warm-up included."""
    all_codes: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rounds: int = 0
    lag_s: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)


def feeder(
    servers: Servers,
    party: str,
    tracks: list[tuple[str, float, float, float]],
    batch: int,
    t_start: float,
    wall0: datetime,
    shared: Shared,
    lead: bool,
) -> None:
    """Post ``tracks``' reports once a second (a round), in batches; ``lead``: this thread carries the
    party's injected reports."""
    headers = {"Authorization": f"Bearer {servers.tokens[party]}", "Content-Type": "application/json"}
    url = f"{servers.address(0)}/tracks"
    with httpx.Client(timeout=60) as c:
        n = 0
        while True:
            due = t_start + n
            now_pc = time.perf_counter()
            if shared.stop.is_set():
                return
            if now_pc < due:
                time.sleep(due - now_pc)
            else:
                with shared.lock:
                    shared.lag_s = max(shared.lag_s, now_pc - due)
            for k in range(0, len(tracks), batch):
                t = time.perf_counter()
                when = wall0 + timedelta(seconds=t - t_start)
                dt = t - t_start
                reports = [
                    report(tid, when, lat, lon + SPEED_MPS * dt / M_PER_DEG_LON, alt, SPEED_MPS, 90.0)
                    for tid, lat, lon, alt in tracks[k : k + batch]
                ]
                injected: list[int] = []
                if lead and k == 0:
                    with shared.lock:
                        for pair, rep in shared.pending[party]:
                            injected.append(pair)
                            reports.append({**rep, "at": stamp(when)})
                        shared.pending[party] = []
                body = orjson.dumps({"reports": reports})
                t0 = time.perf_counter()
                try:
                    r = c.post(url, content=body, headers=headers)
                except httpx.TransportError as e:
                    with shared.lock:
                        shared.codes.append(0)
                        shared.all_codes.append(0)
                        shared.errors.append(f"transport: {type(e).__name__}")
                    continue
                t1 = time.perf_counter()
                with shared.lock:
                    shared.codes.append(r.status_code)
                    shared.all_codes.append(r.status_code)
                    shared.latencies.append(t1 - t0)
                    if r.status_code != 200:
                        shared.errors.append(f"{r.status_code} {r.text[:200]}")
                        continue
                    out = r.json()
                    shared.accepted += out["stored"]
                    shared.acknowledged.update((party, x["id"], x["at"]) for x in reports)
                    for pair in injected:
                        if party == "TR":  # the Turkish half is stored: the Israeli half goes next
                            il = pair_reports(pair)[1]
                            shared.pending["IL"].append((pair, il))
                        else:
                            shared.pair_sent[pair] = t0
                            for cf in out["raised"]:
                                if cf["kind"] == "tracks" and f"IL/P{pair:04d}" in (
                                    cf["activity"],
                                    cf["other_activity"],
                                ):
                                    shared.pair_conflict[pair] = cf["id"]
            n += 1
            if lead and party == "TR":
                with shared.lock:
                    shared.rounds = n


def pair_reports(pair: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pair ``pair``'s two reports (their ``at`` is set when sent): TR 2 km south of its slot flying
    north, IL 2 km north flying south, 250 m above."""
    lat, lon = slot_centre(pair)
    d = 2_000 / M_PER_DEG_LAT
    now = datetime.now(UTC)
    return (
        report(f"P{pair:04d}", now, lat - d, lon, PAIR_TR_M, PAIR_SPEED_MPS, 0.0),
        report(f"P{pair:04d}", now, lat + d, lon, PAIR_IL_M, PAIR_SPEED_MPS, 180.0),
    )


def cpu_s(pid: int) -> float:
    """utime + stime of a process, its waited-for children and its live descendants (``serve
    --workers``: the worker processes), in seconds (/proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # gone between the listing and the reading
        return 0.0
    own = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_s(int(child)) for child in children)


def stored_reports(db: str) -> dict[str, int]:
    """Rows of the reports' history and of the tracks in the database file (after the server stopped)."""
    with sqlite3.connect(db) as con:
        return {
            "track_reports": con.execute("select count(*) from track_reports").fetchone()[0],
            "tracks": con.execute("select count(*) from tracks").fetchone()[0],
        }


def lost(db: str, acknowledged: set[tuple[str, str, str]]) -> int:
    """How many acknowledged reports are not in the stored history (the store keeps times as
    ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    with sqlite3.connect(db) as con:
        have = set(con.execute("select party, id, at from track_reports"))
    return sum(1 for p, i, a in acknowledged if (p, i, a[:-1].replace("T", " ").ljust(26, "0")) not in have)


def tracks_conflicts(db: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as con:
        return list(con.execute("select activity, other_activity from conflicts where kind = 'tracks'"))


def setup(servers: Servers) -> None:
    """Both parties notify their covering activity (starting 3 s from now), and wait for its start."""
    start = datetime.now(UTC) + timedelta(seconds=3)
    base = servers.address(0)
    with httpx.Client(timeout=60) as c:
        for party, floor, ceiling, kind in (("TR", 0, 10_250, "uav_patrol"), ("IL", 10_300, 20_600, "air_sortie")):
            r = c.post(
                f"{base}/activities",
                json={"kind": kind, "volumes": [rectangle(floor, ceiling, start)]},
                headers={"Authorization": f"Bearer {servers.tokens[party]}"},
            )
            if r.status_code != 201:
                raise SystemExit(f"{party}'s covering notice refused: {r.status_code} {r.text[:300]}")
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.5)


def measure(servers: Servers, n: int, seconds: float, batch: int, feeders: int, inject_every: float) -> dict[str, Any]:
    setup(servers)
    tracks = background(n)
    watcher = Watcher(servers.address(0), servers.tokens["TR"], 0)
    watcher.start()
    time.sleep(0.5)
    shared = Shared()
    pid = servers.procs[0].pid
    # warm-up: every track into the picture once (the first round creates them), not measured
    wall0 = datetime.now(UTC)
    t_start = time.perf_counter()
    threads = []
    for party in ("TR", "IL"):
        own = tracks[party]
        per = math.ceil(len(own) / feeders)
        for f in range(feeders):
            part = own[f * per : (f + 1) * per]
            threads.append(
                threading.Thread(
                    target=feeder,
                    args=(servers, party, part, batch, t_start, wall0, shared, f == 0),
                )
            )
    for t in threads:
        t.start()
    # warm-up, not measured: every track reported once (the first round creates them), the engine
    # compiled in the server (numba, at its first use), then two more seconds
    deadline = time.perf_counter() + 300
    while shared.accepted < n and time.perf_counter() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    with shared.lock:
        accepted0, codes0 = shared.accepted, len(shared.codes)
        shared.latencies.clear()
        shared.lag_s = 0.0
    cpu0, pc0, client0 = cpu_s(pid), time.perf_counter(), time.process_time()
    pair = 0
    next_inject = pc0
    while time.perf_counter() < pc0 + seconds:
        if time.perf_counter() >= next_inject:
            with shared.lock:
                shared.pending["TR"].append((pair, pair_reports(pair)[0]))
            pair += 1
            next_inject += inject_every
        time.sleep(0.05)
    with shared.lock:
        cpu1, pc1, client1 = cpu_s(pid), time.perf_counter(), time.process_time()
        accepted1 = shared.accepted
    shared.stop.set()
    for t in threads:
        t.join()
    time.sleep(2.0)
    watcher.stop.set()
    with shared.lock:
        accepted = accepted1 - accepted0
        codes = shared.codes[codes0:]
    elapsed = pc1 - pc0
    alert, detect, missing = [], [], []
    for p, t0 in shared.pair_sent.items():
        cid = shared.pair_conflict.get(p)
        if cid is None or cid not in watcher.alerted:
            missing.append(p)
            continue
        alert.append(watcher.alerted[cid] - t0)
        if cid in watcher.detected:
            detect.append(watcher.detected[cid] - t0)
    result: dict[str, Any] = {
        "tracks": n,
        "server_processes": servers.processes,
        "batch": batch,
        "feeders": 2 * feeders,
        "seconds": round(elapsed, 2),
        "reports_accepted": accepted,
        "reports_per_s": round(accepted / elapsed, 1),
        "offered_per_s": n,
        "max_round_lag_s": round(shared.lag_s, 2),
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "server_cpu_us_per_report": round((cpu1 - cpu0) / max(accepted, 1) * 1e6, 1),
        "server_cpu_share": round((cpu1 - cpu0) / elapsed, 3),
        "client_cpu_s": round(client1 - client0, 2),
        **latency_ms(shared.latencies),
        **statuses(codes),
        "first_errors": shared.errors[:3],
        "reports_acknowledged_total": shared.accepted,
        "statuses_whole_run": statuses(shared.all_codes)["statuses"],
        "_acknowledged": shared.acknowledged,
        "pairs_injected": pair,
        "pairs_sent": len(shared.pair_sent),
        "pairs_raised": len(shared.pair_conflict),
        "pairs_alert_missing": len(missing),
        **latency_ms(alert, "alert"),
        "alert_max_ms": round(max(alert) * 1000, 1) if alert else None,
        **latency_ms(detect, "detected"),
    }
    return result


def extract(rev: str, folder: Path) -> Path:
    """The ``src`` tree of git revision ``rev``, extracted into ``folder``."""
    out = folder / f"src-{rev}"
    out.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "src"


def code_runs(baseline: str, folder: Path) -> list[tuple[str, Path | None]]:
    """What each configuration is measured on: the git revision ``baseline`` first when given (its ``src``
    extracted into ``folder``), then this checkout (``current``, None)."""
    runs: list[tuple[str, Path | None]] = [("current", None)]
    if baseline:
        runs.insert(0, (f"baseline-{baseline}", extract(baseline, folder)))
    return runs


def one(label: str, n: int, args: argparse.Namespace, folder: Path, pythonpath: Path | None) -> dict[str, Any]:
    db = str(folder / f"{label}-{n}.db")
    env_before = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = str(pythonpath)
    try:
        servers = start_servers(db, args.processes, folder, workers=True)
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before
    try:
        result = measure(servers, n, args.seconds, args.batch, args.feeders, args.inject_every)
    finally:
        servers.stop()
    with_id = tracks_conflicts(db)
    pairs = {tuple(sorted(x)) for x in with_id}
    result["tracks_conflicts"] = len(with_id)
    result["tracks_conflicts_not_injected"] = sum(1 for a, b in pairs if not (a.split("/")[1].startswith("P")))
    result["stored"] = stored_reports(db)
    result["acknowledged_lost"] = lost(db, result.pop("_acknowledged"))
    result["record_check"] = ledger_check(db)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", default="5000,10000,20000", help="Comma-separated numbers of live tracks.")
    ap.add_argument("--seconds", type=float, default=40.0, help="Measured seconds per configuration.")
    ap.add_argument(
        "--processes", type=int, default=1, help="Server processes (more than 1: `serve --workers N` on one port)."
    )
    ap.add_argument("--batch", type=int, default=1000, help="Reports per request.")
    ap.add_argument("--feeders", type=int, default=2, help="Feeder threads per party.")
    ap.add_argument("--inject-every", type=float, default=1.0, help="Seconds between injected pairs.")
    ap.add_argument("--baseline", default="", help="Also measure the service at this git revision (same run).")
    ap.add_argument(
        "--baseline-tracks", default="5000", help="Comma-separated numbers of tracks the baseline is measured at."
    )
    args = ap.parse_args()
    counts = [int(x) for x in args.tracks.split(",")]
    configs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        folder = Path(tmp)
        runs = code_runs(args.baseline, folder)
        for n in counts:
            for label, path in runs:
                if label != "current" and str(n) not in args.baseline_tracks.split(","):
                    continue
                log(f"live bench: {label}, {n} tracks, {args.processes} server process(es), {args.seconds:g} s")
                c = one(label, n, args, folder, path)
                configs[f"{label}/{n}"] = c
                log(
                    f"  {c['reports_per_s']} reports/s (offered {n}), cpu {c['server_cpu_us_per_report']} us/report, "
                    f"request p50 {c['request_p50_ms']} p99 {c['request_p99_ms']} ms, alert p50 {c['alert_p50_ms']} "
                    f"p99 {c['alert_p99_ms']} ms ({c['pairs_sent']} pairs, {c['pairs_alert_missing']} missing), "
                    f"stored {c['stored']}, acknowledged and lost {c['acknowledged_lost']}, "
                    f"verifies {c['record_check']['verifies']}"
                )
    result: dict[str, Any] = {"bench": "live", "configs": configs, "note": "server and clients share 2 cores"}
    if args.baseline:
        ratios = {}
        for n in counts:
            if f"baseline-{args.baseline}/{n}" not in configs:
                continue
            b, c = configs[f"baseline-{args.baseline}/{n}"], configs[f"current/{n}"]
            ratios[str(n)] = {
                k: round(c[k] / b[k], 3) if b.get(k) and c.get(k) else None
                for k in ("reports_per_s", "server_cpu_us_per_report", "alert_p99_ms")
            }
        result["ratios_current_over_baseline"] = ratios
    for key, c in configs.items():
        if key.startswith("current/"):
            c["targets"] = {
                "reports_per_s": {"limit": 10_000, "pass": c["reports_per_s"] >= 10_000},
                "alert_p99_ms": {"limit": 1000, "pass": (c["alert_p99_ms"] or 1e9) < 1000},
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
