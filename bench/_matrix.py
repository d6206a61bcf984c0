"""One benchmark over every configuration in one run: SQLite and PostgreSQL, 1 and 2 server processes.

Each configuration gets a fresh database (an SQLite file in a temporary folder; a new database on the
PostgreSQL server of :mod:`_pg`), seeded and served by :mod:`_servers`, then measured by the benchmark's
own ``measure`` function (the same clients, the same seconds). After the servers stop, ``deconflict ledger
check`` says whether every chain still verifies. The summary puts every configuration's figures side by
side with their ratios against SQLite with 1 process measured in the same run (throughput: higher is
better; latencies: lower is better), says how the 2 processes ran (``serve --workers 2`` behind one
address, or two ``serve`` processes on two ports with the clients spread over both), and whether
PostgreSQL was measured, on what server, or why not.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _pg import PgServer, find_postgres
from _servers import ServerFailed, Servers, free_port, ledger_check, start_servers, workers_supported

__all__ = ["BASELINE", "copy_database", "latency_ms", "log", "run_matrix", "statuses"]

BASELINE = "sqlite-1"
"""The configuration every ratio is against."""
LATENCIES = ("request_p50_ms", "request_p90_ms", "request_p99_ms")


def log(msg: str) -> None:
    """Progress for a human, on stderr (stdout's last line is the JSON)."""
    import sys

    print(msg, file=sys.stderr, flush=True)


def copy_database(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A copy of the SQLite database ``source`` at ``target``, with what its write-ahead log holds (SQLite's
    online backup): a copy of the file alone lacks the commits still in ``-wal`` beside it, which a server that
    did not close its database (one before 2026-12-05, a ``--baseline``) leaves there."""
    uri = Path(source).resolve().as_uri() + "?mode=ro"  # a source that is not there is an error, not a new file
    with sqlite3.connect(uri, uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def latency_ms(seconds: Sequence[float], prefix: str = "request") -> dict[str, float | None]:
    """p50, p90 and p99 in milliseconds (None without a sample)."""
    if not seconds:
        return {f"{prefix}_p{q}_ms": None for q in (50, 90, 99)}
    ms = np.array(seconds) * 1000
    return {f"{prefix}_p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)}


def statuses(codes: Sequence[int]) -> dict[str, Any]:
    """How many answers had each status code, and the 503s among them (count and share)."""
    by: dict[str, int] = {}
    for code in codes:
        by[str(code)] = by.get(str(code), 0) + 1
    n503 = by.get("503", 0)
    return {
        "statuses": dict(sorted(by.items())),
        "503s": n503,
        "503_share": round(n503 / len(codes), 5) if codes else 0,
    }


def _ratio(value: Any, base: Any) -> float | None:
    if not isinstance(value, int | float) or not isinstance(base, int | float) or base == 0:
        return None
    return round(value / base, 3)


def _pinned_pairs(
    bench: str,
    first: dict[str, Any],
    run: Callable[[str, str | None], dict[str, Any]],
    baseline: str,
    pairs: int,
    throughput: str,
) -> dict[str, Any]:
    """This code and the baseline, both pinned, in ``pairs`` pairs of runs (``first``: this code's first run,
    already made), each pair in the other order than the last; this code's figures over the baseline's in
    each pair, and their median."""
    names = (throughput, *LATENCIES, "server_cpu_ms_per_request")
    rows: list[dict[str, Any]] = []
    for k in range(max(1, pairs)):
        order = ("this", "baseline") if k % 2 == 0 else ("baseline", "this")
        got: dict[str, dict[str, Any]] = {}
        for who in order:
            if who == "this" and k == 0:
                got[who] = first
                continue
            log(f"{bench}: pinned pair {k + 1}/{pairs}: {'the baseline' if who == 'baseline' else 'this code'} ...")
            got[who] = run(f"{k + 1}-{who}", baseline if who == "baseline" else None)
        rows.append(
            {
                "order": list(order),
                **{name: _ratio(got["this"].get(name), got["baseline"].get(name)) for name in names},
                "this": {name: got["this"].get(name) for name in (throughput, "server_cpu_ms_per_request")},
                "baseline": {name: got["baseline"].get(name) for name in (throughput, "server_cpu_ms_per_request")},
            }
        )
    median = {name: _median([r[name] for r in rows]) for name in names}
    log(
        f"{bench}: pinned, this code over the baseline (median of {len(rows)} pairs): {throughput} "
        f"{median[throughput]}, server CPU a request {median['server_cpu_ms_per_request']}"
    )
    return {"src": baseline, "pairs": len(rows), "median": median, "each": rows}


def _median(values: list[Any]) -> float | None:
    found = [v for v in values if isinstance(v, int | float)]
    return round(statistics.median(found), 3) if found else None


def _one(
    key: str,
    store: str,
    n: int,
    layout: str,
    folder: Path,
    pg: PgServer | None,
    measure: Callable[[Servers], dict[str, Any]],
    src: str | None = None,
    cpus: list[int] | None = None,
) -> dict[str, Any]:
    """One configuration on a fresh database: seed, serve, measure, stop, check the chains, drop (``src``:
    the servers run that source tree, the baseline; ``cpus``: pinned to them, ``serve --cpus``)."""
    db = str(folder / f"{key}.db") if store == "sqlite" or pg is None else pg.create()
    try:
        try:
            servers = start_servers(db, n, folder, workers=layout == "workers", src=src, cpus=cpus)
        except ServerFailed as e:
            log(f"{key} skipped: {e}")
            return {"skipped": f"the servers did not start: {e}"}
        try:
            result = {"mode": servers.mode, **measure(servers)}
        except Exception as e:  # one configuration's failure is reported; the others still run
            log(f"{key} failed: {type(e).__name__}: {e}")
            return {"mode": servers.mode, "failed": f"{type(e).__name__}: {str(e)[:300]}"}
        finally:
            servers.stop()
        result["loadavg_1m"] = round(os.getloadavg()[0], 2)  # others' load on the cores skews a figure
        result["record_check"] = ledger_check(db)
        return result
    finally:
        if store == "postgresql" and pg is not None:
            pg.drop(db)


def _layouts(n: int, two_as: str, workers: bool) -> list[str]:
    """How ``n`` processes run: one process alone; several as ``serve --workers`` and/or on several ports."""
    if n == 1:
        return ["single"]
    if two_as == "both":
        return ["workers", "ports"] if workers else ["ports"]
    if two_as == "workers" or (two_as == "auto" and workers):
        return ["workers"]
    return ["ports"]


def run_matrix(
    bench: str,
    measure: Callable[[Servers, float], dict[str, Any]],
    *,
    throughput: str,
    seconds: float,
    stores: Sequence[str] = ("sqlite", "postgresql"),
    processes: Sequence[int] = (1, 2),
    two_as: str = "auto",
    baseline: str | None = None,
    pinned: int | None = None,
    pairs: int = 1,
) -> dict[str, Any]:
    """Measure every (store, processes) configuration in turn; the summary (see the module docstring).

    ``measure`` runs the load against running servers for ``seconds`` and returns its figures, among them
    ``throughput`` (per second) and the request latencies (:func:`latency_ms`). ``two_as``: how several
    processes run: ``auto`` (``serve --workers`` when the command has it, else several ports),
    ``workers``, ``ports``, or ``both`` (each is a configuration, named ``<store>-<n>-<layout>``).
    ``baseline``: the ``src`` folder of an earlier checkout (``git worktree add /tmp/base <rev>``), whose
    servers are measured too, on SQLite with 1 process, right after this code's (``sqlite-1-baseline``;
    ``vs_baseline`` holds this code's figures over the baseline's). ``pinned``: a CPU; SQLite with 1 process
    is measured again with the server pinned to it (``serve --cpus``), right after (``sqlite-1-pinned``;
    ``vs_unpinned`` holds its figures over the unpinned ones). With both, the baseline is measured pinned too,
    in ``pairs`` pairs of runs (this code's and the baseline's, each pair in the other order than the last,
    the first pair's first run being ``sqlite-1-pinned``): ``vs_baseline_pinned`` holds the median over the
    pairs of this code's figures over the baseline's, and each pair's, since a figure of one run on these
    shared cores varies by several per cent from one run to the next, more than a change often makes.
    """
    began = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{bench}-"))
    workers = workers_supported()
    pg, why_not = find_postgres(free_port()) if "postgresql" in stores else (None, "not asked for (--stores)")
    configs: dict[str, dict[str, Any]] = {}
    compared: dict[str, Any] | None = None
    try:
        for store in stores:
            for n in processes:
                layouts = _layouts(n, two_as, workers)
                for layout in layouts:
                    key = f"{store}-{n}" if len(layouts) == 1 else f"{store}-{n}-{layout}"
                    if store == "postgresql" and pg is None:
                        configs[key] = {"skipped": why_not}
                        continue
                    log(f"{bench}: {key} ...")
                    configs[key] = _one(key, store, n, layout, folder, pg, lambda s: measure(s, seconds))
                    log(
                        f"{bench}: {key}: {configs[key].get(throughput)}/s, p99 {configs[key].get('request_p99_ms')} ms"
                    )
                    if pinned is not None and key == BASELINE:
                        pinned_key = f"{BASELINE}-pinned"
                        log(f"{bench}: {pinned_key} (serve --cpus {pinned}) ...")
                        configs[pinned_key] = _one(
                            pinned_key, store, n, layout, folder, pg, lambda s: measure(s, seconds), cpus=[pinned]
                        )
                        configs[pinned_key]["cpus"] = [pinned]
                        log(f"{bench}: {pinned_key}: {configs[pinned_key].get(throughput)}/s")
                    if baseline is not None and key == BASELINE:
                        base_key = f"{BASELINE}-baseline"
                        log(f"{bench}: {base_key} (the servers run {baseline}) ...")
                        configs[base_key] = _one(
                            base_key, store, n, layout, folder, pg, lambda s: measure(s, seconds), src=baseline
                        )
                        configs[base_key]["src"] = baseline
                        log(f"{bench}: {base_key}: {configs[base_key].get(throughput)}/s")
                    if baseline is not None and pinned is not None and key == BASELINE:
                        compared = _pinned_pairs(
                            bench,
                            configs[f"{BASELINE}-pinned"],
                            lambda tag, src, s=store, n=n, layout=layout: _one(
                                f"{BASELINE}-pinned-{tag}",
                                s,
                                n,
                                layout,
                                folder,
                                pg,
                                lambda sv: measure(sv, seconds),
                                src=src,
                                cpus=[pinned],
                            ),
                            baseline,
                            pairs,
                            throughput,
                        )
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(folder, ignore_errors=True)
    base = configs.get(BASELINE, {})
    old = configs.get(f"{BASELINE}-baseline", {})
    vs_baseline = {
        name: _ratio(base.get(name), old.get(name))
        for name in (throughput, *LATENCIES, "server_cpu_ms_per_request")
        if baseline is not None
    }
    unpinned = configs.get(f"{BASELINE}-pinned", {})
    vs_unpinned = {
        name: _ratio(unpinned.get(name), base.get(name))
        for name in (throughput, *LATENCIES, "server_cpu_ms_per_request")
        if pinned is not None
    }
    ratios = {
        key: {
            throughput: _ratio(c.get(throughput), base.get(throughput)),
            **{name: _ratio(c.get(name), base.get(name)) for name in LATENCIES},
        }
        for key, c in configs.items()
        if key != BASELINE and "skipped" not in c and "failed" not in c
    }
    return {
        "bench": bench,
        "seconds_per_config": seconds,
        "two_processes_as": {
            "workers": "deconflict serve --workers N, one address (the kernel spreads the clients' connections)",
            "ports": "N deconflict serve processes on one database, N ports, the clients spread over them",
            "serve_has_workers": workers,
        },
        "postgresql": pg.describe() if pg is not None else {"skipped": why_not},
        "configs": configs,
        "ratios_vs_sqlite_1": ratios,
        "vs_baseline": vs_baseline or None,
        "vs_unpinned": vs_unpinned or None,
        "vs_baseline_pinned": compared,
        "machine": {"nproc": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "total_seconds": round(time.perf_counter() - began, 1),
    }
