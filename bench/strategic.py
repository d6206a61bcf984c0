"""Strategic detection benchmark: index build, one-at-a-time checks, brute force, batch ``deconflict check``.

Usage::

    scripts/uv run python bench/strategic.py [--sizes 10000,100000,1000000] [--checks 10000] [--quick]

For each size N a fresh subprocess (``--one N``) generates N random active volumes over
Syria, projects them into ``Frame.for_bounds(SYRIA_BBOX)`` and builds a
:class:`~deconflict.volumes.VolumeIndex` (so the peak resident memory is per N), then
checks ``--checks`` new random volumes against it one at a time with
``VolumeIndex.query``. At N <= ``--brute-max`` the same checks are repeated without an
index (numpy interval filter, then ``Frame.ground_distance`` on every survivor) and the
two answers are compared volume by volume; each check's wall and CPU (thread) time are both
reported, and the index's resident memory as RSS after the build less RSS before it. The
first ``PREVIOUS_QUERY_CHECKS`` checks are repeated on the same index through its numpy path
(the implementation the compiled query replaced, ``compiled_from`` raised): ``previous_query``,
with the CPU ratio at p50 and whether the answers agree.

Then ``deconflict check`` (the command of the running interpreter's environment, so nothing but
the README's set-up is needed: no ``uv`` on the PATH) is timed as a subprocess (wall, CPU, peak
RSS) on two GeoJSON files of ``--check-file-n`` / ``--dense-n`` volumes: the distribution above
(48 h) and a dense one (every window inside 4.5 h: about 5.8M conflicting pairs, 1.2 GB of JSON
at 100k). Each is run again through the implementation it replaced (the whole table, then
written: ``PREVIOUS_CHECK``) on the same file, and both outputs compared byte for byte; a small
dense input (``--dense-brute-n``) is also checked against ``brute_force_conflicts``.

    env PATH=/usr/bin:/bin .venv/bin/python bench/strategic.py   # works as well: no uv needed

Progress goes to stderr; the last line of stdout is one JSON object with every figure.
Units: seconds (``_s``), milliseconds (``_ms``), mebibytes (``_mib``), metres (``_m``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from deconflict.geo import Footprint, Frame
from deconflict.volumes import VolumeIndex

REPO = Path(__file__).resolve().parent.parent
SYRIA_GEOJSON = REPO / "src" / "deconflict" / "scenarios" / "data" / "syria_ne50m.geojson"
SYRIA_BBOX = (35.7, 32.3, 42.4, 37.3)
"""(min lon, min lat, max lon, max lat) in degrees: the area's box, used for the frame."""
PARTIES = ("TUR", "ISR")
EPOCH0_S = 1_744_156_800.0
"""2025-04-09T00:00:00Z in epoch seconds: start of the 48 h span."""
SPAN_S = 48 * 3600.0
DUR_MIN_S, DUR_MAX_S = 15 * 60.0, 4 * 3600.0
ALT_TOP_M = 17_000.0
THICK_MIN_M, THICK_MAX_M = 100.0, 5_000.0
DIAM_MIN_M, DIAM_MAX_M = 1_000.0, 60_000.0
VERTICES_MIN, VERTICES_MAX = 4, 12
M_PER_DEG = 111_320.0
"""Metres per degree of latitude (and of longitude at the equator) used to lay out polygon vertices."""
SEPARATION_M = 9260.0
VERTICAL_SEPARATION_M = 304.8
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
TARGET_BUILD_1M_S = 60.0
TARGET_BUILD_1M_MIB = 4096.0
TARGET_P50_MS = 0.5
"""Issue 17: one check against 1M volumes, p50 (was 1 ms)."""
TARGET_INDEX_1M_MIB = 1024.0
"""Issue 17: the 1M-volume index resident (RSS after the build less RSS before it)."""
TARGET_P99_MS = 10.0
TARGET_CLI_100K_S = 30.0
TARGET_DENSE_CPU_S = 30.0
"""``deconflict check`` on the dense 100k input (millions of pairs): CPU seconds."""
PREVIOUS_QUERY_CHECKS = 3000
"""Checks repeated through the index's numpy path (the implementation the compiled query replaced)."""
DENSE_SPAN_S = 4.5 * 3600
"""The dense input: the same volumes with every window inside 4.5 h (about 5.8M conflicting pairs at 100k)."""

DISTRIBUTION = {
    "centres": "uniform inside the Natural Earth 1:50m Syria polygon (rejection sampling in its bbox)",
    "footprint": "50% geodesic circles (Point + radius_m = D/2); 50% star-shaped polygons around the centre, "
    "4-12 vertices (uniform integer), angles evenly spaced with +-40% jitter and a random rotation, "
    "vertex distance uniform in [0.5, 1] x D/2 (equirectangular offsets, 111.32 km/deg)",
    "diameter_D": "log-uniform 1-60 km",
    "window": "duration uniform 15 min-4 h, start uniform so the window lies inside 48 h from "
    "2025-04-09T00:00Z, whole seconds",
    "band": "floor uniform 0-16,900 m, thickness uniform 100-5,000 m, ceiling clipped at 17,000 m, whole metres",
    "parties": "indexed volumes: uniform over 2 parties; checked volumes: alternating",
    "rules": {"separation_m": SEPARATION_M, "vertical_separation_m": VERTICAL_SEPARATION_M},
}


def log(message: str) -> None:
    """Progress line on stderr, prefixed with the process id."""
    print(f"[strategic {os.getpid()}] {message}", file=sys.stderr, flush=True)


# --- generation -------------------------------------------------------------------------------


@dataclass
class Batch:
    """Random volumes: lon/lat geometries (Points for circles), radii (m), windows (epoch s), bands (m)."""

    ids: list[str]
    parties: list[str]
    geoms: np.ndarray
    radii: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    z0: np.ndarray
    z1: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def footprints(self) -> list[Footprint]:
        """The volumes' footprints as domain objects (radius 0 for polygons)."""
        return [Footprint(g, r) for g, r in zip(self.geoms.tolist(), self.radii.tolist(), strict=True)]


def load_area() -> Any:
    """The Syria polygon (lon/lat degrees), prepared for fast point-in-polygon tests."""
    doc = json.loads(SYRIA_GEOJSON.read_text(encoding="utf-8"))
    geometry = doc["geometry"] if doc.get("type") == "Feature" else doc
    area = shapely.from_geojson(json.dumps(geometry))
    shapely.prepare(area)
    return area


def sample_points(rng: np.random.Generator, area: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points (lon, lat degrees) uniform in lon/lat inside ``area``, by vectorised rejection."""
    lon_min, lat_min, lon_max, lat_max = area.bounds
    lons, lats, have = [], [], 0
    while have < n:
        m = int((n - have) * 2.2) + 64
        lon = rng.uniform(lon_min, lon_max, m)
        lat = rng.uniform(lat_min, lat_max, m)
        inside = shapely.contains_xy(area, lon, lat)
        lons.append(lon[inside])
        lats.append(lat[inside])
        have += int(inside.sum())
    return np.concatenate(lons)[:n], np.concatenate(lats)[:n]


def star_polygons(rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """Star-shaped simple polygons (lon/lat degrees) around centres, outer radius ``radius_m`` metres.

    Built with one vectorised ``shapely.linearrings`` call over all vertices (no Python loop).
    """
    n = len(lon)
    k = rng.integers(VERTICES_MIN, VERTICES_MAX + 1, n)
    owner = np.repeat(np.arange(n), k)
    first = np.cumsum(k) - k
    j = np.arange(len(owner)) - first[owner]
    step = 2 * np.pi / k[owner]
    rotation = rng.uniform(0, 2 * np.pi, n)[owner]
    angle = rotation + step * (j + rng.uniform(-0.4, 0.4, len(owner)))
    dist = radius_m[owner] * rng.uniform(0.5, 1.0, len(owner))
    vlat = lat[owner] + dist * np.sin(angle) / M_PER_DEG
    vlon = lon[owner] + dist * np.cos(angle) / (M_PER_DEG * np.cos(np.radians(lat[owner])))
    rings = shapely.linearrings(np.column_stack([vlon, vlat]), indices=owner)
    return shapely.polygons(rings)


def generate(
    rng: np.random.Generator,
    n: int,
    area: Any,
    *,
    prefix: str,
    alternate_parties: bool = False,
    span_s: float = SPAN_S,
) -> Batch:
    """n random volumes following DISTRIBUTION (windows inside ``span_s``); ids: ``prefix`` + a zero-padded number."""
    lon, lat = sample_points(rng, area, n)
    diameter = np.exp(rng.uniform(np.log(DIAM_MIN_M), np.log(DIAM_MAX_M), n))
    circle = np.zeros(n, dtype=bool)
    circle[rng.permutation(n)[: n // 2]] = True
    geoms = np.empty(n, dtype=object)
    geoms[circle] = shapely.points(lon[circle], lat[circle])
    geoms[~circle] = star_polygons(rng, lon[~circle], lat[~circle], diameter[~circle] / 2)
    radii = np.where(circle, diameter / 2, 0.0)
    duration = np.round(rng.uniform(DUR_MIN_S, DUR_MAX_S, n))
    start = EPOCH0_S + np.floor(rng.uniform(0, 1, n) * (span_s - duration))
    floor = np.round(rng.uniform(0, ALT_TOP_M - THICK_MIN_M, n))
    ceiling = np.minimum(floor + np.round(rng.uniform(THICK_MIN_M, THICK_MAX_M, n)), ALT_TOP_M)
    if alternate_parties:
        party_codes = np.arange(n) % 2
    else:
        party_codes = rng.integers(0, len(PARTIES), n)
    width = len(str(max(n - 1, 1)))
    return Batch(
        ids=[f"{prefix}{i:0{width}d}" for i in range(n)],
        parties=[PARTIES[c] for c in party_codes.tolist()],
        geoms=geoms,
        radii=radii,
        t0=start,
        t1=start + duration,
        z0=floor,
        z1=ceiling,
    )


# --- memory -----------------------------------------------------------------------------------


def proc_status_kib(field: str) -> int:
    """A ``/proc/self/status`` field (VmRSS, VmHWM, ...) in KiB; 0 where unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); returns whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --- index and checks -------------------------------------------------------------------------


def build_index(frame: Frame, batch: Batch) -> tuple[VolumeIndex, float, float]:
    """Project the batch's footprints and index them; returns (index, project seconds, build seconds)."""
    footprints = batch.footprints()
    t = time.perf_counter()
    geoms, radii = frame.project_footprints(footprints)
    project_s = time.perf_counter() - t
    t = time.perf_counter()
    index = VolumeIndex(frame, capacity=len(batch))
    index.add(batch.ids, batch.parties, geoms, radii, batch.t0, batch.t1, batch.z0, batch.z1)
    if getattr(index, "_n_tree", len(batch)) != len(batch):  # everything in the tree, nothing in the delta
        index.rebuild()
    build_s = time.perf_counter() - t
    return index, project_s, build_s


def run_checks(
    index: VolumeIndex, geoms: np.ndarray, radii: np.ndarray, batch: Batch
) -> tuple[np.ndarray, list[set[str]]]:
    """Query each projected volume one at a time; returns (nanoseconds per check, conflicting ids per check)."""
    n = len(batch)
    elapsed = np.empty(n, dtype=np.int64)
    found: list[set[str]] = []
    rows = zip(
        geoms.tolist(),
        radii.tolist(),
        batch.t0.tolist(),
        batch.t1.tolist(),
        batch.z0.tolist(),
        batch.z1.tolist(),
        batch.parties,
        strict=True,
    )
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    cpu = np.empty(n, dtype=np.int64)
    for i, (g, r, t0, t1, z0, z1, party) in enumerate(rows):
        cpu_start = cpu_clock()
        start = clock()
        hits = index.query(
            g,
            r,
            t0,
            t1,
            z0,
            z1,
            separation_m=SEPARATION_M,
            vertical_separation_m=VERTICAL_SEPARATION_M,
            exclude_party=party,
        )
        elapsed[i] = clock() - start
        cpu[i] = cpu_clock() - cpu_start
        found.append({c.key for c in hits})
    global LAST_CHECK_CPU_NS
    LAST_CHECK_CPU_NS = cpu
    return elapsed, found


LAST_CHECK_CPU_NS = np.empty(0, dtype=np.int64)
"""CPU time (this thread) of each check of the last ``run_checks``: beside wall time on a shared machine."""


def broad_phase_counts(index: VolumeIndex, geoms: np.ndarray, radii: np.ndarray, batch: Batch) -> dict[str, Any]:
    """Mean per check of broad-phase hits (envelope and time bucket) and of interval survivors (exact tests), untimed.

    Reads the index's private broad phase; returns nulls if its shape has changed.
    """
    try:
        frame = index.frame
        env = frame.envelopes(geoms, radii)
        cx, cy = (env[:, 0] + env[:, 2]) / 2, (env[:, 1] + env[:, 3]) / 2
        pad = SEPARATION_M * frame.scale(cx, cy) * 1.002 + 1.0
        boxes = np.column_stack([env[:, 0] - pad, env[:, 1] - pad, env[:, 2] + pad, env[:, 3] + pad])
        broad = exact = 0
        for i in range(len(batch)):
            t0, t1 = float(batch.t0[i]), float(batch.t1[i])
            code = index._party_code.get(batch.parties[i])  # private: diagnostics only
            t = index._broad(tuple(boxes[i].tolist()), t0, t1, code)  # private: diagnostics only
            broad += len(t)
            ok = (
                (index.t0[t] < t1)
                & (t0 < index.t1[t])
                & (index.z0[t] < batch.z1[i] + VERTICAL_SEPARATION_M)
                & (batch.z0[i] < index.z1[t] + VERTICAL_SEPARATION_M)
                & (index._rows[t, 4] != code)  # private: party codes
            )
            exact += int(ok.sum())
        m = len(batch)
        return {"mean_broad_candidates_per_check": broad / m, "mean_exact_tests_per_check": exact / m}
    except Exception as e:  # diagnostics must never fail the run
        log(f"broad-phase counts unavailable: {e!r}")
        return {"mean_broad_candidates_per_check": None, "mean_exact_tests_per_check": None}


def brute_force_checks(
    frame: Frame,
    ids: np.ndarray,
    index_geoms: np.ndarray,
    index_radii: np.ndarray,
    indexed: Batch,
    geoms: np.ndarray,
    radii: np.ndarray,
    checks: Batch,
) -> tuple[np.ndarray, list[set[str]]]:
    """Each check against all indexed volumes without an index; returns (ns per check, conflicting ids).

    Vectorised interval filter (time, altitude within V, other party) over all N, then
    ``frame.ground_distance`` on every survivor.
    """
    party = np.array([PARTIES.index(p) for p in indexed.parties], dtype=np.int8)
    t0a, t1a, z0a = indexed.t0, indexed.t1, indexed.z0
    z1a = indexed.z1 + VERTICAL_SEPARATION_M
    n = len(checks)
    elapsed = np.empty(n, dtype=np.int64)
    found: list[set[str]] = []
    clock = time.perf_counter_ns
    for i in range(n):
        g, r = geoms[i], float(radii[i])
        t0, t1, z0, z1 = float(checks.t0[i]), float(checks.t1[i]), float(checks.z0[i]), float(checks.z1[i])
        p = PARTIES.index(checks.parties[i])
        start = clock()
        mask = (t0a < t1) & (t0 < t1a) & (z0a < z1 + VERTICAL_SEPARATION_M) & (z0 < z1a) & (party != p)
        j = np.flatnonzero(mask)
        if len(j):
            d = frame.ground_distance(g, r, index_geoms[j], index_radii[j])
            hit = set(ids[j[d <= SEPARATION_M]].tolist())
        else:
            hit = set()
        elapsed[i] = clock() - start
        found.append(hit)
    return elapsed, found


def summarise_ns(elapsed: np.ndarray) -> dict[str, float]:
    """checks_per_s, p50/p99/max/mean in ms of per-check nanoseconds."""
    ms = elapsed / 1e6
    return {
        "checks_per_s": round(len(ms) / (ms.sum() / 1e3), 1),
        "check_p50_ms": round(float(np.percentile(ms, 50)), 4),
        "check_p99_ms": round(float(np.percentile(ms, 99)), 4),
        "check_max_ms": round(float(ms.max()), 4),
        "check_mean_ms": round(float(ms.mean()), 4),
    }


def profile_checks(index: VolumeIndex, geoms: np.ndarray, radii: np.ndarray, batch: Batch, count: int) -> str:
    """cProfile of ``count`` checks, top functions by own time, as text."""
    prof = cProfile.Profile()
    prof.enable()
    run_checks(index, geoms[:count], radii[:count], _head(batch, count))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


def _head(batch: Batch, count: int) -> Batch:
    """The first ``count`` volumes of a batch."""
    return Batch(
        batch.ids[:count],
        batch.parties[:count],
        batch.geoms[:count],
        batch.radii[:count],
        batch.t0[:count],
        batch.t1[:count],
        batch.z0[:count],
        batch.z1[:count],
    )


def run_one(n: int, checks: int, seed: int, brute_max: int, brute_checks: int, profile: int) -> dict[str, Any]:
    """Generate, build and check at one size N; the figures as a dict (run in its own process)."""
    area = load_area()
    frame = Frame.for_bounds(SYRIA_BBOX)
    t = time.perf_counter()
    indexed = generate(np.random.default_rng([seed, n, 0]), n, area, prefix="v")
    probe = generate(np.random.default_rng([seed, n, 1]), checks, area, prefix="c", alternate_parties=True)
    generate_s = time.perf_counter() - t
    log(f"N={n}: generated {n} + {checks} volumes in {generate_s:.2f} s")
    gc.collect()
    rss0 = proc_status_kib("VmRSS")
    peak_reset = reset_peak_rss()
    index, project_s, build_s = build_index(frame, indexed)
    rss1 = proc_status_kib("VmRSS")
    hwm = proc_status_kib("VmHWM")
    log(f"N={n}: projected in {project_s:.2f} s, built in {build_s:.2f} s, peak RSS {hwm / 1024:.0f} MiB")

    geoms, radii = frame.project_footprints(probe.footprints())
    gc.collect()
    elapsed, found = run_checks(index, geoms, radii, probe)
    check_cpu = LAST_CHECK_CPU_NS
    wall = elapsed.sum() / 1e9
    conflicts = np.array([len(f) for f in found])
    result: dict[str, Any] = {
        "n": n,
        "generate_s": round(generate_s, 3),
        "project_s": round(project_s, 3),
        "index_build_s": round(build_s, 3),
        "total_build_s": round(project_s + build_s, 3),
        "peak_rss_mib": round(hwm / 1024, 1),
        "peak_rss_is_build_only": peak_reset,
        "rss_before_build_mib": round(rss0 / 1024, 1),
        "rss_after_build_mib": round(rss1 / 1024, 1),
        "index_delta_rss_mib": round((rss1 - rss0) / 1024, 1),
        "index_memory_bytes_mib": round(index.memory_bytes() / 2**20, 1),
        "checks": len(probe),
        "checks_wall_s": round(wall, 3),
        **summarise_ns(elapsed),
        "check_cpu_p50_ms": round(float(np.percentile(check_cpu, 50)) / 1e6, 4),
        "check_cpu_p99_ms": round(float(np.percentile(check_cpu, 99)) / 1e6, 4),
        "check_cpu_mean_ms": round(float(check_cpu.mean()) / 1e6, 4),
        "mean_conflicts_per_check": round(float(conflicts.mean()), 3),
        "max_conflicts_per_check": int(conflicts.max()),
        "checks_with_conflict_share": round(float((conflicts > 0).mean()), 4),
    }
    result.update(broad_phase_counts(index, geoms, radii, probe))
    if getattr(index, "compiled_from", None) is not None:
        # the previous implementation in the same run: the same index queried through its numpy path
        m = min(len(probe), PREVIOUS_QUERY_CHECKS)
        compiled_from, index.compiled_from = index.compiled_from, 2**62
        p_elapsed, p_found = run_checks(index, geoms[:m], radii[:m], _head(probe, m))
        p_cpu = LAST_CHECK_CPU_NS
        index.compiled_from = compiled_from
        mismatches = sum(1 for a, b in zip(found[:m], p_found, strict=True) if a != b)
        p = summarise_ns(p_elapsed)
        result["previous_query"] = {
            "path": "numpy (VolumeIndex below compiled_from)",
            "checks": m,
            **p,
            "check_cpu_p50_ms": round(float(np.percentile(p_cpu, 50)) / 1e6, 4),
            "check_cpu_p99_ms": round(float(np.percentile(p_cpu, 99)) / 1e6, 4),
            "ratio_cpu_p50": round(float(np.percentile(p_cpu, 50)) / float(np.percentile(check_cpu[:m], 50)), 2),
            "agree": mismatches == 0,
        }
        log(
            f"N={n}: previous (numpy) query over {m} checks p50 {p['check_p50_ms']:.3f} ms, CPU p50 "
            f"{result['previous_query']['check_cpu_p50_ms']:.3f} ms, agree={mismatches == 0}"
        )
    log(
        f"N={n}: {len(probe)} checks, {result['checks_per_s']:.0f}/s, p50 {result['check_p50_ms']:.3f} ms, "
        f"p99 {result['check_p99_ms']:.3f} ms (CPU p50 {result['check_cpu_p50_ms']:.3f} ms), "
        f"{result['mean_conflicts_per_check']:.2f} conflicts/check"
    )

    if n <= brute_max:
        m = min(brute_checks, len(probe))
        ids = np.array(indexed.ids, dtype=object)
        slots = np.array([index.slot(k) for k in indexed.ids])  # the index orders slots its own way
        b_elapsed, b_found = brute_force_checks(
            frame, ids, index.geoms[slots], index.radii[slots], indexed, geoms[:m], radii[:m], _head(probe, m)
        )
        mismatches = sum(1 for a, b in zip(found[:m], b_found, strict=True) if a != b)
        b = summarise_ns(b_elapsed)
        i = summarise_ns(elapsed[:m])
        result["brute_force"] = {
            "n": n,
            "checks": m,
            **b,
            "ratio_p50": round(b["check_p50_ms"] / i["check_p50_ms"], 2),
            "ratio_mean": round(b["check_mean_ms"] / i["check_mean_ms"], 2),
            "agree": mismatches == 0,
            "mismatches": mismatches,
            "conflicts_found": int(sum(len(f) for f in b_found)),
        }
        log(
            f"N={n}: brute force over {m} checks p50 {b['check_p50_ms']:.3f} ms "
            f"(x{result['brute_force']['ratio_p50']} indexed), agree={mismatches == 0} ({mismatches} mismatches)"
        )
    if profile:
        log(
            f"N={n}: cProfile of {min(profile, len(probe))} checks\n"
            + profile_checks(index, geoms, radii, probe, profile)
        )
    return result


# --- batch contract ---------------------------------------------------------------------------


def write_check_file(batch: Batch, path: Path) -> None:
    """Write the batch as the ``deconflict check`` FeatureCollection (Points carry radius_m)."""
    geometry = shapely.to_geojson(batch.geoms)
    start = np.datetime_as_string(batch.t0.astype("int64").astype("datetime64[s]"), unit="s")
    end = np.datetime_as_string(batch.t1.astype("int64").astype("datetime64[s]"), unit="s")
    with path.open("w", encoding="utf-8") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        rows = zip(
            batch.ids,
            batch.parties,
            geometry.tolist(),
            batch.radii.tolist(),
            start.tolist(),
            end.tolist(),
            batch.z0.tolist(),
            batch.z1.tolist(),
            strict=True,
        )
        for i, (vid, party, geom, r, t0, t1, z0, z1) in enumerate(rows):
            radius = f',"radius_m":{r!r}' if r > 0 else ""
            f.write(
                ("," if i else "")
                + f'{{"type":"Feature","geometry":{geom},"properties":{{"id":"{vid}","party":"{party}",'
                f'"start":"{t0}Z","end":"{t1}Z","floor_m":{z0!r},"ceiling_m":{z1!r}{radius}}}}}\n'
            )
        f.write("]}\n")


def deconflict_exe() -> Path:
    """The ``deconflict`` command of the running interpreter's environment (as bench/_servers.py finds it)."""
    return Path(sys.executable).parent / "deconflict"


PREVIOUS_CHECK = """
import sys
from deconflict.cli.common import TerminalGuard
from deconflict.detect import find_conflict_table
from deconflict.formats.geojson import load_json, volumes_from_geojson, write_conflicts
path, m, v = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
vols = volumes_from_geojson(load_json(open(path, "rb").read(), source=path), source=path)
table = find_conflict_table(vols, separation_m=m, vertical_separation_m=v)
write_conflicts(table, vols, TerminalGuard(sys.stdout))
"""
"""The ``check`` command as it was before issue 17: the whole table, then written (the reference run)."""


def _timed(cmd: list[str], out_path: Path, err_path: Path) -> tuple[float, float, float]:
    """Run a command with stdout to a file; (wall s, CPU s, peak RSS MiB) of the process (wait4)."""
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        message = err_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"{cmd[0]} failed ({code}): {message}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _count_rows(path: Path) -> int:
    """Conflicts in a ``check`` document, counted without parsing it (each row starts with ``{"a": ``)."""
    count, tail = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            data = tail + chunk
            count += data.count(b'{"a": ')
            tail = data[-5:]
    return count


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes."""
    import filecmp

    return filecmp.cmp(a, b, shallow=False)


def run_cli_check(n: int, seed: int, *, span_s: float = SPAN_S, previous: bool = False) -> dict[str, Any]:
    """Time ``deconflict check`` on a file of n random volumes (windows inside ``span_s``): wall and CPU
    seconds, peak RSS, conflicts; with ``previous`` also the whole-table implementation it replaced, on the
    same file in the same run, and whether both wrote the same bytes."""
    area = load_area()
    batch = generate(np.random.default_rng([seed, n, 2]), n, area, prefix="f", span_s=span_s)
    rules = [str(SEPARATION_M), str(VERTICAL_SEPARATION_M)]
    with tempfile.TemporaryDirectory(prefix="deconflict-bench-") as tmp:
        path = Path(tmp) / f"volumes_{n}.geojson"
        write_check_file(batch, path)
        del batch
        size_mib = path.stat().st_size / 2**20
        out_path, err_path = Path(tmp) / "conflicts.json", Path(tmp) / "stderr.txt"
        cmd = [
            str(deconflict_exe()),
            "check",
            str(path),
            "--separation-m",
            rules[0],
            "--vertical-separation-m",
            rules[1],
        ]
        log(f"check: {n} volumes in {span_s / 3600:g} h ({size_mib:.1f} MiB GeoJSON), running {' '.join(cmd[:3])} ...")
        wall, cpu_s, peak_mib = _timed(cmd, out_path, err_path)
        out_mib = out_path.stat().st_size / 2**20
        conflicts = _count_rows(out_path)
        log(
            f"check: {n} volumes in {wall:.2f} s wall, {cpu_s:.2f} s CPU, "
            f"peak RSS {peak_mib:.0f} MiB, {conflicts} conflicts"
        )
        result: dict[str, Any] = {
            "volumes": n,
            "span_h": span_s / 3600,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu_s, 3),
            "peak_rss_mib": round(peak_mib, 1),
            "conflicts": conflicts,
            "input_mib": round(size_mib, 1),
            "output_mib": round(out_mib, 1),
        }
        if previous:
            ref_path = Path(tmp) / "conflicts_previous.json"
            log("check: the previous implementation (whole table, then written) on the same file ...")
            p_wall, p_cpu, p_peak = _timed(
                [sys.executable, "-c", PREVIOUS_CHECK, str(path), *rules], ref_path, err_path
            )
            same = _same_bytes(out_path, ref_path)
            result["previous"] = {
                "wall_s": round(p_wall, 3),
                "cpu_s": round(p_cpu, 3),
                "peak_rss_mib": round(p_peak, 1),
                "ratio_cpu": round(p_cpu / cpu_s, 2),
                "identical_bytes": same,
            }
            log(f"check: previous {p_wall:.2f} s wall, {p_cpu:.2f} s CPU, peak {p_peak:.0f} MiB; same bytes: {same}")
    return result


def dense_brute_force(n: int, seed: int) -> dict[str, Any]:
    """A small dense input: the streamed ``check`` rows against ``brute_force_conflicts`` (every pair tested)."""
    from deconflict.detect import brute_force_conflicts
    from deconflict.detect_batch import conflict_blocks
    from deconflict.formats.geojson import load_json, volumes_from_geojson

    batch = generate(np.random.default_rng([seed, n, 4]), n, load_area(), prefix="b", span_s=DENSE_SPAN_S)
    with tempfile.TemporaryDirectory(prefix="deconflict-bench-") as tmp:
        path = Path(tmp) / "dense.geojson"
        write_check_file(batch, path)
        volumes = volumes_from_geojson(load_json(path.read_bytes(), source=str(path)), source=str(path))
    rules = {"separation_m": SEPARATION_M, "vertical_separation_m": VERTICAL_SEPARATION_M}
    t = time.process_time()
    blocks = conflict_blocks(volumes, **rules)
    assert blocks is not None
    rows = [
        (volumes[a].id, volumes[b].id, d)
        for bl in blocks
        for a, b, d in zip(bl.a.tolist(), bl.b.tolist(), bl.distance_m.tolist(), strict=True)
    ]
    streamed_s = time.process_time() - t
    t = time.process_time()
    reference = [(c.a, c.b, c.distance_m) for c in brute_force_conflicts(volumes, **rules)]
    brute_s = time.process_time() - t
    agree = rows == reference
    log(
        f"dense brute force: {n} volumes, {len(rows)} conflicts, streamed {streamed_s:.2f} s CPU, "
        f"brute force {brute_s:.2f} s CPU, agree={agree}"
    )
    return {
        "volumes": n,
        "conflicts": len(rows),
        "streamed_cpu_s": round(streamed_s, 3),
        "brute_force_cpu_s": round(brute_s, 3),
        "ratio_cpu": round(brute_s / streamed_s, 1),
        "agree": agree,
    }


# --- orchestration ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU count, CPU model and library versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "mem_total_mib": round(proc_meminfo_kib("MemTotal") / 1024),
        "loadavg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
    }


def proc_meminfo_kib(field: str) -> int:
    """A ``/proc/meminfo`` field in KiB; 0 where unavailable."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_size_subprocess(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``--one n`` in a fresh interpreter (per-N peak RSS) and return its JSON line."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(n),
        "--checks",
        str(args.checks),
        "--seed",
        str(args.seed),
        "--brute-max",
        str(args.brute_max),
        "--brute-checks",
        str(args.brute_checks),
        "--profile",
        str(args.profile),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"size {n} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def judge(sizes: dict[str, dict[str, Any]], cli: dict[str, Any] | None, dense: dict[str, Any] | None) -> dict[str, Any]:
    """Targets with their measured value and a pass boolean (None when not measured in this run)."""
    largest = sizes[str(max(int(k) for k in sizes))]
    big = sizes.get("1000000")
    targets: dict[str, Any] = {
        "build_1m_s": {"limit": TARGET_BUILD_1M_S, "value": big and big["total_build_s"]},
        "build_1m_peak_rss_mib": {"limit": TARGET_BUILD_1M_MIB, "value": big and big["peak_rss_mib"]},
        "check_p50_ms": {"limit": TARGET_P50_MS, "value": largest["check_p50_ms"], "at_n": largest["n"]},
        "check_p99_ms": {"limit": TARGET_P99_MS, "value": largest["check_p99_ms"], "at_n": largest["n"]},
        "check_cpu_p50_ms": {"limit": TARGET_P50_MS, "value": largest.get("check_cpu_p50_ms"), "at_n": largest["n"]},
        "index_1m_resident_mib": {"limit": TARGET_INDEX_1M_MIB, "value": big and big["index_delta_rss_mib"]},
        "check_cli_100k_s": {
            "limit": TARGET_CLI_100K_S,
            "value": cli["wall_s"] if cli and cli["volumes"] == 100_000 else None,
        },
        "check_dense_100k_cpu_s": {
            "limit": TARGET_DENSE_CPU_S,
            "value": dense["cpu_s"] if dense and dense["volumes"] == 100_000 else None,
        },
    }
    for t in targets.values():
        t["pass"] = None if t["value"] is None else bool(t["value"] < t["limit"])
    return targets


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, run every size in its own process, the batch check, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated N (default 10000,100000,1000000)")
    parser.add_argument("--checks", type=int, help="new volumes checked one at a time per N (default 10000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: N=10k, 1,000 checks, 10k-volume check file")
    parser.add_argument("--check-file-n", type=int, help="volumes in the deconflict check file (default 100000)")
    parser.add_argument("--dense-n", type=int, help="volumes in the dense check file (default 100000, 0: none)")
    parser.add_argument("--no-previous", action="store_true", help="skip the previous check implementation's run")
    parser.add_argument("--dense-brute-n", type=int, default=3000, help="dense volumes also checked by brute force")
    parser.add_argument("--seed", type=int, default=20250409)
    parser.add_argument("--brute-max", type=int, default=10_000, help="largest N also checked by brute force")
    parser.add_argument("--brute-checks", type=int, default=10_000, help="checks repeated by brute force")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many checks per N (stderr)")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.checks is None:
        args.checks = 1_000 if args.quick else 10_000

    if args.one is not None:
        result = run_one(args.one, args.checks, args.seed, args.brute_max, args.brute_checks, args.profile)
        print(json.dumps(result))
        return 0

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    else:
        sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    check_n = (10_000 if args.quick else 100_000) if args.check_file_n is None else args.check_file_n
    dense_n = (10_000 if args.quick else 100_000) if args.dense_n is None else args.dense_n
    log(f"sizes {sizes}, {args.checks} checks each, check file {check_n} volumes, seed {args.seed}")

    per_size = {}
    for n in sizes:
        per_size[str(n)] = run_size_subprocess(n, args)
    brute = next((r.pop("brute_force") for r in per_size.values() if "brute_force" in r), None)
    cli = run_cli_check(check_n, args.seed, previous=not args.no_previous) if check_n > 0 else None
    dense = None
    if dense_n > 0:
        dense = run_cli_check(dense_n, args.seed, span_s=DENSE_SPAN_S, previous=not args.no_previous)
    dense_brute = dense_brute_force(args.dense_brute_n, args.seed) if args.dense_brute_n > 0 else None
    wall = time.perf_counter() - started
    result = {
        "bench": "strategic",
        "quick": args.quick,
        "seed": args.seed,
        "distribution": DISTRIBUTION,
        "sizes": per_size,
        "brute_force": brute,
        "check_cli": cli,
        "check_cli_100k_s": cli["wall_s"] if cli and cli["volumes"] == 100_000 else None,
        "check_cli_dense": dense,
        "check_dense_brute_force": dense_brute,
        "machine": {**machine_info(), "loadavg_1m_at_start": load_at_start},
        "targets": judge(per_size, cli, dense),
        "wall_s": round(wall, 1),
    }
    line = json.dumps(result)
    if args.out:
        args.out.write_text(line + "\n", encoding="utf-8")
    log(f"done in {wall:.1f} s")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
