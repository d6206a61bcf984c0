"""Benchmark of the page with a live picture: a real ``deconflict serve`` on SQLite fed thousands of live
tracks at 1 Hz over HTTP (as bench/live.py feeds them: both parties' covering notices, each party's
background traffic in layers on an 11 km grid, raising no conflict of its own), and Israel's page open in
Debian's Chromium (Playwright), as a duty officer keeps it all day.

Measured per configuration (a number of live tracks):

* ``signin_s``: from pressing Enter on the token to the stream's state "live";
* ``drawn``: the tracks the page drew (``cop.drawnTracks()``; an SVG element each on a page before the canvas);
* ``busy_pct``: the page's main thread busy (Chrome's ``TaskDuration``) over ``--seconds``, while the tracks
  are read again every 2 s;
* ``answer_ms``: a call into the page (``page.evaluate("1")``) every 0.37 s over the same seconds, p50 / p90 /
  max: how long a click waits when the duty officer acts;
* ``tracks_get_ms``: ``GET .../tracks`` as Israel, timed from here, p50 over 5 (and its size, and what was
  sent: compressed for a client that accepts gzip, as a browser does);
* ``server_cpu_pct``: the server process's CPU over the measured seconds (feeding and the page together).

``--storm N`` adds an alert storm before the page opens: N of Israel's tracks reported once where it notified
nothing (north of the covered rectangle), N conformance conflicts, each with its alert awaiting Israel;
``waiting_get_ms`` then times ``GET .../waiting`` (what the page reads at sign-in and every 30 s).

``--baseline REV`` also measures the service and page as they were at git revision REV, in the same run, for
the ratios.

    scripts/uv run python bench/page.py [--tracks 5000,20000] [--seconds 10] [--storm 2000] [--baseline 1b716af]

Needs ``/usr/bin/chromium`` (``apt-get install chromium``). Progress goes to stderr; the last line of stdout
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _matrix import log  # noqa: E402  (bench/_*.py: the benchmarks' helpers)
from _servers import start_servers  # noqa: E402
from live import IL_LAYERS, NORTH, WEST, Shared, background, code_runs, feeder, report, setup  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
DRAWN = "window.cop && cop.drawnTracks ? cop.drawnTracks().length : document.querySelectorAll('[data-track]').length"
"""How many tracks the page drew: from the canvas's list, or an SVG element each (a page before the canvas)."""


def storm(api: str, token: str, n: int, stop: threading.Event, errors: list[str]) -> None:
    """``n`` of Israel's tracks reported every second until ``stop``, 0.03° apart north of the covered
    rectangle (outside every notice), barely moving: their conformance conflicts stay open the whole run."""
    with httpx.Client(timeout=120) as c:
        while not stop.is_set():
            began, at = time.monotonic(), datetime.now(UTC)
            reports = [
                report(
                    f"S{i:05d}", at, NORTH + 0.2 + (i // 100) * 0.03, WEST + (i % 100) * 0.03, IL_LAYERS[0], 1.0, 90.0
                )
                for i in range(n)
            ]
            for k in range(0, n, 1000):
                try:
                    r = c.post(
                        f"{api}/tracks",
                        json={"reports": reports[k : k + 1000]},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.TransportError as e:
                    errors.append(f"storm: {type(e).__name__}")
                    continue
                if r.status_code != 200:
                    errors.append(f"storm: {r.status_code} {r.text[:200]}")
            stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))


def waiting_count(api: str, token: str) -> int:
    """How many items wait on the token's party now."""
    r = httpx.get(f"{api}/waiting", headers={"Authorization": f"Bearer {token}"}, timeout=120)
    return len(r.json()["items"])


def one(label: str, n: int, seconds: float, folder: Path, src: Path | None, storm_n: int = 0) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    db = str(folder / f"{label.replace('/', '-')}-{n}.db")
    servers = start_servers(db, 1, folder, workers=False, src=str(src) if src else None)
    shared = Shared()
    try:
        setup(servers)
        tracks = background(n)
        t_start, wall0 = time.perf_counter(), datetime.now(UTC)
        feeders = [
            threading.Thread(
                target=feeder,
                args=(servers, party, tracks[party], 1000, t_start, wall0, shared, False),
                daemon=True,
            )
            for party in ("TR", "IL")
        ]
        for f in feeders:
            f.start()
        time.sleep(2.5)  # two rounds of reports
        api = servers.address(0)
        root = api.split("/api/")[0]
        headers = {"Authorization": f"Bearer {servers.tokens['IL']}"}
        storm_errors: list[str] = []
        if storm_n:
            threading.Thread(
                target=storm, args=(api, servers.tokens["IL"], storm_n, shared.stop, storm_errors), daemon=True
            ).start()
            deadline = time.monotonic() + 120
            while waiting_count(api, servers.tokens["IL"]) < storm_n and time.monotonic() < deadline:
                time.sleep(1)
        gets, size, sent, waits = [], 0, 0, []
        with httpx.Client(timeout=120) as c:
            for _ in range(5):
                began = time.perf_counter()
                r = c.get(f"{api}/tracks", headers=headers)
                gets.append((time.perf_counter() - began) * 1000)
                size = len(r.content)
                sent = int(r.headers.get("content-length", size))  # compressed when the server compressed it
            for _ in range(3):
                began = time.perf_counter()
                c.get(f"{api}/waiting", headers=headers)
                waits.append((time.perf_counter() - began) * 1000)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
            )
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.goto(root + "/")
            page.fill("#token", servers.tokens["IL"])
            began = time.perf_counter()
            page.press("#token", "Enter")
            page.locator("#stream-state").and_(page.locator(".live")).wait_for(timeout=180_000)
            signin = time.perf_counter() - began
            deadline = time.monotonic() + 60
            while page.evaluate(DRAWN) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            drawn = page.evaluate(DRAWN)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def busy() -> float:
                metrics = cdp.send("Performance.getMetrics")["metrics"]
                return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

            cpu0, busy0, w0 = servers.cpu_seconds() or 0.0, busy(), time.perf_counter()
            answers = []
            while time.perf_counter() - w0 < seconds:
                began = time.perf_counter()
                page.evaluate("1")
                answers.append((time.perf_counter() - began) * 1000)
                time.sleep(0.37)
            busy1, w1, cpu1 = busy(), time.perf_counter(), servers.cpu_seconds() or 0.0
            with shared.lock:
                accepted, errors = shared.accepted, list(shared.errors) + storm_errors
            still_waiting = waiting_count(api, servers.tokens["IL"]) if storm_n else 0
            browser.close()
    finally:
        shared.stop.set()
        servers.stop()
    answers.sort()
    return {
        "tracks": n,
        "signin_s": round(signin, 2),
        "drawn": drawn,
        "busy_pct": round(100 * (busy1 - busy0) / (w1 - w0), 1),
        "answer_ms": {
            "p50": round(statistics.median(answers), 1),
            "p90": round(answers[math.ceil(0.9 * len(answers)) - 1], 1),  # nearest rank
            "max": round(answers[-1], 1),
            "samples": len(answers),
        },
        "tracks_get_ms": round(statistics.median(gets), 1),
        "tracks_get_bytes": size,
        "tracks_get_sent_bytes": sent,
        "storm": storm_n,
        "storm_waiting_at_end": still_waiting,
        "waiting_get_ms": round(statistics.median(waits), 1),
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / (w1 - w0), 1),
        "reports_accepted": accepted,
        "feed_errors": errors[:3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", default="5000,20000", help="Comma-separated numbers of live tracks.")
    ap.add_argument("--seconds", type=float, default=10.0, help="Measured seconds per configuration.")
    ap.add_argument("--storm", type=int, default=0, help="Conformance conflicts awaiting Israel before the page opens.")
    ap.add_argument("--baseline", default="", help="Also measure the service and page at this git revision.")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    if not re.fullmatch(r"[0-9,]+", args.tracks):
        raise SystemExit(f"--tracks: expected numbers separated by commas, not {args.tracks!r}")
    counts = [int(x) for x in args.tracks.split(",")]
    configs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        folder = Path(tmp)
        runs = code_runs(args.baseline, folder)
        for n in counts:
            for label, src in runs:
                log(f"page bench: {label}, {n} live tracks, {args.seconds:g} s")
                c = one(label, n, args.seconds, folder, src, args.storm)
                configs[f"{label}/{n}"] = c
                log(
                    f"  sign-in {c['signin_s']} s, drawn {c['drawn']}, main thread busy {c['busy_pct']}%, "
                    f"answers p50 {c['answer_ms']['p50']} p90 {c['answer_ms']['p90']} ms, "
                    f"storm waiting at the end {c['storm_waiting_at_end']}, "
                    f"GET /tracks {c['tracks_get_ms']} ms ({c['tracks_get_bytes']} bytes, "
                    f"{c['tracks_get_sent_bytes']} sent), "
                    f"GET /waiting {c['waiting_get_ms']} ms, "
                    f"server cpu {c['server_cpu_pct']}%"
                )
    result: dict[str, Any] = {"bench": "page", "configs": configs, "note": "server, feeders and browser share 2 cores"}
    if args.baseline:
        ratios = {}
        for n in counts:
            b, c = configs[f"baseline-{args.baseline}/{n}"], configs[f"current/{n}"]
            ratios[str(n)] = {
                "signin_s": round(c["signin_s"] / b["signin_s"], 3),
                "busy_pct": round(c["busy_pct"] / b["busy_pct"], 3) if b["busy_pct"] else None,
                "answer_p50_ms": round(c["answer_ms"]["p50"] / b["answer_ms"]["p50"], 3),
                "tracks_get_ms": round(c["tracks_get_ms"] / b["tracks_get_ms"], 3),
                "waiting_get_ms": round(c["waiting_get_ms"] / b["waiting_get_ms"], 3),
            }
        result["ratios_current_over_baseline"] = ratios
    print(json.dumps(result))


if __name__ == "__main__":
    main()
