"""Tactical detection benchmark: N random tracks over Syria, full detection time, peak memory, baselines.

Usage::

    scripts/uv run python bench/tactical.py [--sizes 1000,10000,100000] [--brute-max 10000] [--runs 5] [--quick]
                                            [--baseline SRC]
    .venv/bin/python bench/tactical.py ...   (the same, with nothing but the README's set-up)

For each size N a fresh subprocess (``--one N``) generates N random track states, then times
:func:`~deconflict.tactical.find_track_conflicts` (projection, broad phase, exact test,
refinement of pairs in doubt, sorted table) ``--runs`` times and reports the median and the
fastest, in wall time and in CPU time of the process (``time.process_time``: all threads).
In the same process the baselines run on the same tracks: the numpy engine (the previous
implementation, forced with ``NUMBA_FROM``), and at N <= ``--brute-max`` the brute-force
reference; each table is compared with the fast one (same pairs, same numbers) and the
ratios printed. Peak memory is measured twice: the peak of Python allocations during one
detection (``tracemalloc``; numpy's arrays included) and the subprocess's peak resident set
(``VmHWM``). The start-up of the compiled engine is measured in fresh processes: importing
numba and loading the cached machine code (warm), and, unless ``--quick``, compiling it into
an empty cache (cold, once per installation). Finally a CSV of ``--cli-size`` tracks is
written and ``deconflict tracks`` is timed as a subprocess.

``--baseline SRC`` (the ``src`` of an earlier checkout, e.g. ``git worktree add /tmp/base HEAD``)
runs each size's subprocess a second time with that ``deconflict`` first on the path, in the
same run, and reports its figures, the ratios (baseline over this code) and whether both
tables are the same to the last bit (a SHA-256 of the table's columns).

Progress goes to stderr; the last line of stdout is one JSON object with every figure.
Units: seconds (``_s``), milliseconds (``_ms``), mebibytes (``_mib``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from deconflict.tactical import (
    DEFAULT_HPZ_M,
    DEFAULT_LOOKAHEAD_S,
    DEFAULT_RPZ_M,
    NUMBA_FROM,
    TrackConflictTable,
    Tracks,
    brute_force_track_conflicts,
    find_track_conflicts,
    predict,
)
from deconflict.units import FPM_MPS, FT_M, KT_MPS

REPO = Path(__file__).resolve().parent.parent
SYRIA_GEOJSON = REPO / "src" / "deconflict" / "scenarios" / "data" / "syria_ne50m.geojson"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
TARGETS_MS = {"10000": 50.0, "100000": 1000.0}
DISTRIBUTION = {
    "positions": "uniform in lon/lat inside the Natural Earth 1:50m Syria polygon (rejection sampling)",
    "altitude": "uniform 5,000-40,000 ft",
    "ground_speed": "uniform 150-500 kt",
    "track": "uniform 0-360 deg",
    "vertical_speed": "70% level; 30% climbing or descending (sign even) at uniform 500-3,000 ft/min",
    "ids": "T + zero-padded number, in random order",
    "rules": {"rpz_m": DEFAULT_RPZ_M, "hpz_m": DEFAULT_HPZ_M, "lookahead_s": DEFAULT_LOOKAHEAD_S},
}


def log(message: str) -> None:
    """Progress line on stderr, prefixed with the process id."""
    print(f"[tactical {os.getpid()}] {message}", file=sys.stderr, flush=True)


def load_area() -> Any:
    """The Syria polygon (lon/lat degrees), prepared for fast point-in-polygon tests."""
    doc = json.loads(SYRIA_GEOJSON.read_text(encoding="utf-8"))
    area = shapely.from_geojson(json.dumps(doc["geometry"] if doc.get("type") == "Feature" else doc))
    shapely.prepare(area)
    return area


def generate(n: int, seed: int) -> Tracks:
    """n random track states following DISTRIBUTION."""
    rng = np.random.default_rng(seed)
    area = load_area()
    lon_min, lat_min, lon_max, lat_max = area.bounds
    lons, lats, have = [], [], 0
    while have < n:
        m = int((n - have) * 2.2) + 64
        lon, lat = rng.uniform(lon_min, lon_max, m), rng.uniform(lat_min, lat_max, m)
        inside = shapely.contains_xy(area, lon, lat)
        lons.append(lon[inside])
        lats.append(lat[inside])
        have += int(inside.sum())
    lon, lat = np.concatenate(lons)[:n], np.concatenate(lats)[:n]
    alt_ft = rng.uniform(5_000.0, 40_000.0, n)
    gs_kt = rng.uniform(150.0, 500.0, n)
    trk = rng.uniform(0.0, 360.0, n)
    moving = rng.uniform(size=n) < 0.3
    vs_fpm = np.where(moving, rng.choice([-1.0, 1.0], n) * rng.uniform(500.0, 3_000.0, n), 0.0)
    width = len(str(max(n - 1, 1)))
    ids = [f"T{k:0{width}d}" for k in rng.permutation(n)]
    return Tracks.of(ids, lat, lon, alt_ft * FT_M, gs_kt * KT_MPS, trk, vs_fpm * FPM_MPS)


def vm_hwm_mib() -> float:
    """Peak resident set of this process (``VmHWM``), MiB; 0 where unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def agreement(fast: TrackConflictTable, brute: TrackConflictTable) -> dict[str, Any]:
    """Same pairs in the same order, and the largest difference in each figure."""
    same = fast.a.tolist() == brute.a.tolist() and fast.b.tolist() == brute.b.tolist()
    out: dict[str, Any] = {"same_pairs": same, "pairs_fast": len(fast), "pairs_brute": len(brute)}
    for col in ("tcpa_s", "dcpa_m", "t_in_s", "t_out_s"):
        diff = np.abs(getattr(fast, col) - getattr(brute, col)) if same and len(fast) else np.zeros(1)
        out[f"max_diff_{col}"] = float(diff.max())
    out["identical"] = same and all(out[f"max_diff_{c}"] == 0.0 for c in ("tcpa_s", "dcpa_m", "t_in_s", "t_out_s"))
    return out


def timed(fn: Any, runs: int) -> tuple[Any, dict[str, float]]:
    """fn() ``runs`` times: its last result, and the median and fastest wall and CPU times (ms)."""
    wall, cpu, out = [], [], None
    for _ in range(runs):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    figures = {
        "median_ms": round(float(np.median(wall)) * 1000, 2),
        "min_ms": round(min(wall) * 1000, 2),
        "cpu_median_ms": round(float(np.median(cpu)) * 1000, 2),
        "cpu_min_ms": round(min(cpu) * 1000, 2),
    }
    return out, figures


def run_one(n: int, runs: int, seed: int, brute_max: int, numpy_runs: int) -> dict[str, Any]:
    """Figures for one size, in this process."""
    t0 = time.perf_counter()
    tracks = generate(n, seed)
    log(f"N={n}: generated in {time.perf_counter() - t0:.1f} s")
    find_track_conflicts(tracks)  # warm-up: imports, PROJ context, numba's cached code
    table, fast = timed(lambda: find_track_conflicts(tracks), runs)
    gc.collect()
    tracemalloc.start()
    find_track_conflicts(tracks)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result: dict[str, Any] = {
        "n": n,
        "engine": "numba" if n >= NUMBA_FROM else "numpy",
        "conflicts": len(table),
        "detect_median_ms": fast["median_ms"],
        "detect_min_ms": fast["min_ms"],
        "detect_cpu_median_ms": fast["cpu_median_ms"],
        "detect_cpu_min_ms": fast["cpu_min_ms"],
        "runs": runs,
        "detect_peak_alloc_mib": round(peak / 2**20, 1),
        "input_mib": round(sum(getattr(tracks, c).nbytes for c in ("lat_deg", "lon_deg", "alt_m")) * 2 / 2**20, 2),
    }
    digest = hashlib.sha256()
    for col in (table.a, table.b, table.tcpa_s, table.dcpa_m, table.t_in_s, table.t_out_s):
        digest.update(np.ascontiguousarray(col).tobytes())
    result["table_sha256"] = digest.hexdigest()
    result["load_avg"] = os.getloadavg()[0]
    result["peak_rss_before_baselines_mib"] = round(vm_hwm_mib(), 1)
    log(f"N={n}: {len(table)} conflicts, median {fast['median_ms']} ms, CPU {fast['cpu_median_ms']} ms")
    if n >= NUMBA_FROM and numpy_runs:
        saved = predict.NUMBA_FROM
        predict.NUMBA_FROM = 10**12  # the numpy engine: the previous implementation
        try:
            old, before = timed(lambda: find_track_conflicts(tracks), numpy_runs)
        finally:
            predict.NUMBA_FROM = saved
        result["numpy_engine"] = before
        result["numpy_over_numba_cpu"] = round(before["cpu_min_ms"] / max(fast["cpu_min_ms"], 1e-9), 2)
        result["numpy_over_numba_wall"] = round(before["min_ms"] / max(fast["min_ms"], 1e-9), 2)
        result["numpy_agreement"] = agreement(table, old)
        log(f"N={n}: numpy engine CPU {before['cpu_min_ms']} ms, agreement {result['numpy_agreement']['identical']}")
    if n <= brute_max:
        start = time.perf_counter()
        brute = brute_force_track_conflicts(tracks)
        result["brute_s"] = round(time.perf_counter() - start, 3)
        result["brute_over_fast"] = round(result["brute_s"] * 1000 / result["detect_median_ms"], 1)
        result["agreement"] = agreement(table, brute)
        log(f"N={n}: brute force {result['brute_s']} s, agreement {result['agreement']}")
    result["peak_rss_mib"] = round(vm_hwm_mib(), 1)
    return result


STARTUP = """
import json, time
c0, w0 = time.process_time(), time.perf_counter()
import numba
c1, w1 = time.process_time(), time.perf_counter()
from deconflict.tactical import _kernel, predict, Tracks, find_track_conflicts
import numpy as np
n, rng = predict.NUMBA_FROM, np.random.default_rng(1)
t = Tracks.of([f"T{k}" for k in range(n)], rng.uniform(32.5, 37.0, n), rng.uniform(36.0, 42.0, n),
              rng.uniform(1500.0, 12000.0, n), rng.uniform(77.0, 257.0, n), rng.uniform(0.0, 360.0, n), [0.0] * n)
c2, w2 = time.process_time(), time.perf_counter()
find_track_conflicts(t)
c3, w3 = time.process_time(), time.perf_counter()
find_track_conflicts(t)
c4, w4 = time.process_time(), time.perf_counter()
print(json.dumps({"import_numba_cpu_s": round(c1 - c0, 3), "import_numba_wall_s": round(w1 - w0, 3),
                  "first_call_cpu_s": round(c3 - c2, 3), "first_call_wall_s": round(w3 - w2, 3),
                  "second_call_cpu_s": round(c4 - c3, 3), "second_call_wall_s": round(w4 - w3, 3)}))
"""


def run_startup(cold: bool) -> dict[str, Any]:
    """The compiled engine's start-up in fresh processes: warm (cached code), and cold (an empty cache) if asked."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("cold", {"NUMBA_CACHE_DIR": tmp})] if cold else []
        cases.append(("warm", {"NUMBA_CACHE_DIR": tmp} if cold else {}))
        for name, env in cases:
            done = subprocess.run(
                [sys.executable, "-c", STARTUP], capture_output=True, text=True, check=True, env={**os.environ, **env}
            )
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
            log(f"start-up ({name}): {out[name]}")
    return out


def write_csv(tracks: Tracks, path: Path) -> None:
    """The tracks in the ``deconflict tracks`` CSV contract (aviation units)."""
    with path.open("w", encoding="utf-8") as f:
        f.write("id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\n")
        cols = zip(
            tracks.ids,
            tracks.lat_deg.tolist(),
            tracks.lon_deg.tolist(),
            (tracks.alt_m / FT_M).tolist(),
            (tracks.gs_mps / KT_MPS).tolist(),
            tracks.trk_deg.tolist(),
            (tracks.vs_mps / FPM_MPS).tolist(),
            strict=True,
        )
        f.writelines(f"{i},{la!r},{lo!r},{a!r},{g!r},{t!r},{v!r}\n" for i, la, lo, a, g, t, v in cols)


CLI_FORCED = (
    "import sys, deconflict.tactical as tactical; "
    "n = int(sys.argv.pop(1)); tactical.one_shot_numba_from = lambda: n; "
    "from deconflict.cli import main; main()"
)


def run_cli(n: int, seed: int) -> dict[str, Any]:
    """Time ``deconflict tracks`` end to end (process start, CSV in, JSON out) on n tracks.

    Once as it runs (it chooses its engine: ``one_shot_numba_from``), and once forced to each
    engine, in wall time and CPU time of the child process (``RUSAGE_CHILDREN``).
    """
    out: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tracks.csv"
        write_csv(generate(n, seed), path)
        runs = {
            "auto": [sys.executable, "-c", "from deconflict.cli import main; main()", "tracks", str(path)],
            "numba": [sys.executable, "-c", CLI_FORCED, "0", "tracks", str(path)],
            "numpy": [sys.executable, "-c", CLI_FORCED, str(10**12), "tracks", str(path)],
        }
        outputs = {}
        for name, command in runs.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                raise SystemExit(f"deconflict tracks failed: {done.stderr}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            outputs[name] = done.stdout
            out[name] = {"wall_s": round(elapsed, 3), "cpu_s": round(cpu, 3)}
            log(f"CLI N={n} ({name}): {elapsed:.2f} s wall, {cpu:.2f} s CPU")
    out["conflicts"] = len(json.loads(outputs["auto"])["conflicts"])
    out["same_output"] = len(set(outputs.values())) == 1
    out["wall_s"] = out["auto"]["wall_s"]
    out["stdout_mib"] = round(len(outputs["auto"]) / 2**20, 1)
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--brute-max", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--numpy-runs", type=int, default=3, help="runs of the numpy engine (0: none)")
    parser.add_argument("--seed", type=int, default=20250409)
    parser.add_argument("--cli-size", type=int, default=10_000, help="0 to skip the CLI run")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, 3 runs, no CLI run")
    parser.add_argument("--baseline", help="src directory of an earlier checkout, run on the same tracks in this run")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.runs, args.seed, args.brute_max, args.numpy_runs)))
        return 0
    sizes = QUICK_SIZES if args.quick else tuple(int(s) for s in args.sizes.split(","))
    runs = 3 if args.quick else args.runs
    results: dict[str, Any] = {}
    for n in sizes:
        command = [sys.executable, __file__, "--one", str(n), "--runs", str(runs), "--seed", str(args.seed)]
        command += ["--brute-max", str(args.brute_max), "--numpy-runs", str(args.numpy_runs)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        results[str(n)] = json.loads(done.stdout.strip().splitlines()[-1])
        if args.baseline:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.baseline, os.environ.get("PYTHONPATH", "")])}
            command[command.index("--numpy-runs") + 1] = "0"  # its numpy engine: not again
            command[command.index("--brute-max") + 1] = "0"  # nor the brute force
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
            base = json.loads(done.stdout.strip().splitlines()[-1])
            mine = results[str(n)]
            mine["baseline"] = {
                k: base[k]
                for k in ("detect_median_ms", "detect_min_ms", "detect_cpu_median_ms", "detect_cpu_min_ms", "load_avg")
            }
            mine["baseline"]["peak_rss_mib"] = base["peak_rss_mib"]
            mine["baseline_over_this_cpu"] = round(base["detect_cpu_median_ms"] / mine["detect_cpu_median_ms"], 2)
            mine["baseline_over_this_wall"] = round(base["detect_median_ms"] / mine["detect_median_ms"], 2)
            mine["baseline_identical"] = base["table_sha256"] == mine["table_sha256"]
            log(f"N={n}: baseline {mine['baseline']}, identical {mine['baseline_identical']}")
    cli = run_cli(args.cli_size, args.seed) if args.cli_size and not args.quick else None
    startup = run_startup(cold=not args.quick)
    judged = {
        f"detect_{n}_under_{int(ms)}_ms": results[n]["detect_median_ms"] < ms
        for n, ms in TARGETS_MS.items()
        if n in results
    }
    agree = [r["agreement"]["identical"] for r in results.values() if "agreement" in r]
    agree_numpy = [r["numpy_agreement"]["identical"] for r in results.values() if "numpy_agreement" in r]
    out = {
        "benchmark": "tactical",
        "sizes": results,
        "cli": cli,
        "targets_met": judged,
        # each None when that comparison was not made (--brute-max 0, --numpy-runs 0, no --baseline)
        "brute_force_identical": all(agree) if agree else None,
        "numpy_engine_identical": all(agree_numpy) if agree_numpy else None,
        "baseline": args.baseline,
        "baseline_identical": all(r["baseline_identical"] for r in results.values()) if args.baseline else None,
        "numba_startup": startup,
        "distribution": DISTRIBUTION,
        "machine": machine(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
