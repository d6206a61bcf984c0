"""Benchmark of the service after months of operation: a record built through the service itself on a moving
clock (TR and IL each notify every hour, alternately, every 30 minutes one of them; every conflict acknowledged
and never resolved; the duty loop run every five hours of it), then served with its clock at the last entry and
Israel's page opened in Debian's Chromium (Playwright), as a duty officer signs in at 03:00 on a mechanism that
has run for a year.

Measured for each code (this checkout, and ``--baseline REV`` in the same run, on copies of one record):

* ``signin_s``: from pressing Enter on the token to the stream's state "live";
* ``held``: the activities and conflicts the page holds once signed in; ``paths``: the SVG shapes it drew;
* ``new_notice_shown_s``: a notice of Türkiye's, from its write to Israel's page holding it;
* ``first_write_s``: after a restart, the first write (the authority rules rebuilt from entry 1);
* ``activities_bytes``, ``conflicts_bytes``: ``GET .../activities`` and ``conflicts?status=unresolved``;
* ``reload_reads_ms``: the reads of the live picture the page makes at each reload (at least once a second
  under traffic; the TAK bridge makes the same), and ``picture.geojson``, which GIS clients poll: the median
  of 5 requests each, from the request to the last byte, against the server alone.

    scripts/uv run python bench/aged.py [--notices 20000] [--baseline 409cd7f] [--record aged.db]

``--record`` measures a record built before (by this bench, or one of your own) instead of building one.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``). Progress goes to stderr; the last line of stdout
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _matrix import copy_database, log  # noqa: E402  (bench/_*.py: the benchmarks' helpers)
from live import code_runs  # noqa: E402

M = "tr-il-syria"
STEP = timedelta(minutes=30)
CHROMIUM = "/usr/bin/chromium"


def circle(lon: float, lat: float, start: datetime, hours: float) -> dict[str, Any]:
    end = start + timedelta(hours=hours)
    return {
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "radius_m": 15_000,
        "floor_m": 1000,
        "ceiling_m": 4000,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
    }


def build(path: Path, notices: int) -> datetime:
    """The aged record at ``path``; the time of its last entry."""
    from deconflict.clock import FixedClock
    from deconflict.demo import seed
    from deconflict.service import Service
    from deconflict.store import open_store

    clock = FixedClock(datetime(2025, 4, 9, 6, 0, tzinfo=UTC))
    svc = Service(open_store(str(path), group_commit=True), clock=clock)
    seed(svc)  # the Syria mechanism, as the demo declares it
    rnd = random.Random(7)
    for i in range(notices):
        clock.advance(seconds=STEP.total_seconds())
        lon, lat = 36.5 + rnd.random() * 2.0, 33.5 + rnd.random() * 2.0
        party = "TR" if i % 2 == 0 else "IL"
        svc.notify(
            mechanism_id=M, actor=party, kind="uav_patrol", volumes=[circle(lon, lat, clock() + timedelta(hours=2), 3)]
        )
        for c in svc.conflicts(M, status="open"):
            for p in c.get("awaiting", []):
                try:
                    svc.acknowledge_conflict(mechanism_id=M, actor=p, conflict_id=c["id"])
                except Exception:  # noqa: BLE001 - acknowledged already by the other
                    pass
        if i % 10 == 0:
            svc.tick()
        if (i + 1) % 2000 == 0:
            log(f"aged bench: {i + 1} notices built")
    svc.store.close()
    return clock()


def measure(db: str) -> dict[str, Any]:
    """Run in a process of its own (``--measure DB``), on the code its PYTHONPATH names."""
    import httpx
    import uvicorn
    from playwright.sync_api import sync_playwright

    from deconflict.api import create_app
    from deconflict.api.settings import Settings
    from deconflict.clock import FixedClock
    from deconflict.service import Service
    from deconflict.store import open_store

    last = sqlite3.connect(db).execute("select max(at) from ledger").fetchone()[0]
    clock = FixedClock(datetime.fromisoformat(last).replace(tzinfo=UTC))
    began = time.perf_counter()
    restarted = Service(open_store(db, group_commit=True), clock=clock)
    restarted.send_message(mechanism_id=M, actor="TR", text="after the restart", to=["IL"])
    first_write = time.perf_counter() - began
    restarted.store.close()
    svc = Service(open_store(db, group_commit=True), clock=clock)
    token = svc.issue_token(mechanism_id=M, member_id="IL")
    settings = Settings(db=db, clock=clock, tick_s=0)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, svc), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        auth = {"Authorization": f"Bearer {token}"}
        sizes = {
            name: len(httpx.get(f"{url}/api/v1/mechanisms/{M}{path}", headers=auth, timeout=300).content)
            for name, path in (("activities_bytes", "/activities"), ("conflicts_bytes", "/conflicts?status=unresolved"))
        }
        since = (clock() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
        reads = {
            "activities": f"/activities?start={since}",
            "conflicts_open": "/conflicts?status=open",
            "conflicts_acknowledged": f"/conflicts?status=acknowledged&start={since}",
            "picture_geojson": "/picture.geojson",
        }
        reload_ms = {}
        with httpx.Client(base_url=f"{url}/api/v1/mechanisms/{M}", headers=auth, timeout=300) as client:
            for name, path in reads.items():
                took = []
                for _ in range(5):
                    began = time.perf_counter()
                    client.get(path).raise_for_status()
                    took.append(time.perf_counter() - began)
                reload_ms[name] = round(statistics.median(took) * 1000, 1)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.goto(url + "/")
            page.fill("#token", token)
            began = time.perf_counter()
            page.press("#token", "Enter")
            page.locator("#stream-state").and_(page.locator(".live")).wait_for(timeout=600_000)
            signin = time.perf_counter() - began
            time.sleep(1)
            held = page.evaluate("[cop.state.activities.length, cop.state.conflicts.length]")
            paths = page.evaluate("document.querySelectorAll('path').length")
            began = time.perf_counter()
            out = svc.notify(
                mechanism_id=M,
                actor="TR",
                kind="uav_patrol",
                volumes=[circle(38.9, 35.9, clock() + timedelta(hours=2), 2)],
            )
            new_id = out.activity.id
            while not page.evaluate(f"cop.state.activities.some((a) => a.id === {json.dumps(new_id)})"):
                if time.perf_counter() - began > 300:
                    break
                time.sleep(0.05)
            shown = time.perf_counter() - began
            browser.close()
    finally:
        server.should_exit = True
    return {
        "clock": clock().isoformat(),
        "signin_s": round(signin, 2),
        "held": {"activities": held[0], "conflicts": held[1]},
        "paths": paths,
        "new_notice_shown_s": round(shown, 2),
        "first_write_s": round(first_write, 2),
        "reload_reads_ms": reload_ms,
        **sizes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notices", type=int, default=20_000, help="How many notices the record holds (one each 30 min).")
    ap.add_argument("--baseline", default="", help="Also measure the code of this git revision, in the same run.")
    ap.add_argument("--record", default="", help="Measure this record (an SQLite file) instead of building one.")
    ap.add_argument("--measure", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    folder = Path(tempfile.mkdtemp(prefix="deconflict-aged-"))
    try:
        record = folder / "aged.db"
        if args.record:
            copy_database(args.record, record)
        else:
            began = time.perf_counter()
            until = build(record, args.notices)
            log(f"aged bench: {args.notices} notices to {until.isoformat()} in {time.perf_counter() - began:.0f} s")
        out: dict[str, Any] = {
            "notices": sqlite3.connect(record).execute("select count(*) from activities").fetchone()[0],
            "entries": sqlite3.connect(record).execute("select count(*) from ledger").fetchone()[0],
        }
        for label, src in code_runs(args.baseline, folder):
            copy = folder / f"{label}.db"
            copy_database(record, copy)
            env = dict(os.environ)
            if src is not None:
                env["PYTHONPATH"] = str(src)
            log(f"aged bench: {label}")
            done = subprocess.run(
                [sys.executable, __file__, "--measure", str(copy)], env=env, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise SystemExit(f"aged bench: {label} failed:\n{done.stderr[-3000:]}")
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
            log(f"  {out[label]}")
        if args.baseline:
            base, now = out[f"baseline-{args.baseline}"], out["current"]
            out["ratios"] = {
                k: round(now[k] / base[k], 3) for k in ("signin_s", "new_notice_shown_s", "first_write_s") if base[k]
            }
            out["ratios"]["reload_reads_ms"] = {
                k: round(v / base["reload_reads_ms"][k], 3)
                for k, v in now["reload_reads_ms"].items()
                if base.get("reload_reads_ms", {}).get(k)
            }
        print(json.dumps(out))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
