"""Failover benchmark: how long clients are refused when the PostgreSQL primary is lost and its standby promoted.

A PostgreSQL 15 primary and its synchronous standby on this machine (``tests/support/pg_pair.py``: two
clusters on two ports, ``synchronous_standby_names='*'``, ``synchronous_commit=on``, the standby a
``pg_basebackup -R`` copy; fsync on here, unlike the test; the clients are the test's too,
``tests/support/failover_load.py``), the Syria scenario seeded and served by
``deconflict serve`` on the pair's multi-host URL (``target_session_attrs=read-write``), and client threads
sending hotline messages over HTTP as fast as they are answered (a refused one is sent again, as a new
message, 50 ms later). After ``--before`` seconds the primary's processes are SIGKILLed; once a request has
been refused, the standby is promoted (``pg_ctl promote``) after ``--promote-after`` seconds (0: at once,
as an automated failover would; a person deciding takes longer, and the window grows by as much); the load
goes on until ``--after`` seconds of writes have been acknowledged again by the same server process.

Measured: the refused window (first refusal → first write acknowledged after the promotion), its parts
(kill → first refusal, kill → promoted, promoted → first acknowledgement), requests refused, writes
acknowledged, and acknowledged writes missing from the record on the new primary (must be 0), then
``deconflict ledger check`` on it.

    scripts/uv run python bench/failover.py [--threads 4] [--before 5] [--after 5] [--promote-after 0]

(or ``.venv/bin/python bench/failover.py``: nothing but the README's set-up is needed.) Needs Debian's
PostgreSQL 15 binaries (``/usr/lib/postgresql/15/bin``; as root they run as the ``postgres`` user).
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from _matrix import log  # noqa: E402  (bench/_matrix.py)
from _servers import M, ledger_check, start_servers  # noqa: E402  (bench/_servers.py: seed, then deconflict serve)
from support.failover_load import WriteLoad, lost_writes  # noqa: E402  (the failover test's clients)
from support.pg_pair import PgPair, pg_binaries_missing  # noqa: E402  (the test's pair)


def _wait(condition: Any, what: str, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not within {deadline_s:g} s")
        time.sleep(0.01)


def run(threads: int, before_s: float, after_s: float, promote_after_s: float) -> dict[str, Any]:
    """One failover drill; its figures."""
    missing = pg_binaries_missing()
    if missing:
        return {"benchmark": "failover", "skipped": missing}
    folder = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    pair = PgPair(fsync=True)
    try:
        started = time.perf_counter()
        pair.start()
        log(f"primary :{pair.primary.port} and synchronous standby :{pair.standby.port} in {pair.root}")
        servers = start_servers(pair.url(), 1, folder, workers=False)
        log(f"pair and server ready in {time.perf_counter() - started:.1f} s; {threads} clients for {before_s:g} s")
        load = WriteLoad(servers.addresses[0], {p: servers.tokens[p] for p in ("TR", "IL")}, threads=threads)
        server_pid = servers.procs[0].pid
        try:
            load.start()
            time.sleep(before_s)
            acked_before = len(load.acks)
            killed_at = time.monotonic()
            pair.kill_primary()
            killed_s = time.monotonic() - killed_at
            log(f"{acked_before} writes acknowledged; primary killed ({killed_s:.3f} s)")
            _wait(lambda: load.refusals_after(killed_at), "no request refused with the primary gone", 60)
            time.sleep(promote_after_s)
            promote_began = time.monotonic()
            pair.promote()
            promoted_at = time.monotonic()
            log(f"standby promoted ({promoted_at - promote_began:.3f} s)")
            _wait(lambda: load.acks_after(promoted_at), "the service did not take writes again", 120)
            recovered = time.monotonic()
            time.sleep(after_s)
        finally:
            load.stop()
            still_serving = servers.procs[0].poll() is None and servers.procs[0].pid == server_pid
            servers.stop()
        window = load.window(killed_at, promoted_at)
        acks, refusals = load.acks, load.refusals
        lost = lost_writes(pair.node_url(pair.standby), M, acks)
        check = ledger_check(pair.node_url(pair.standby))
        statuses: dict[str, int] = {}
        for r in refusals:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        return {
            "benchmark": "failover",
            "refused_window_s": window["refused_window_s"],
            "requests_refused": window["requests_refused"],
            "acknowledged_writes": len(acks),
            "lost_acknowledged_writes": len(lost),
            "kill_to_first_refusal_s": window["kill_to_first_refusal_s"],
            "kill_to_promoted_s": window["kill_to_promoted_s"],
            "promote_s": round(promoted_at - promote_began, 3),
            "promoted_to_first_ack_s": window["promoted_to_first_ack_s"],
            "refused_after_recovery": window["refused_after_recovery"],
            "refusals_by_status": statuses,
            "acknowledged_per_s_after": round(load.acks_after(recovered) / max(after_s, 1e-9), 1),
            "same_server_process": still_serving,
            "ledger_check": check,
            "setup": {
                "threads": threads,
                "retry_after_refusal_s": 0.05,
                "promote_after_s": promote_after_s,
                "postgresql": "15, two clusters on 127.0.0.1, synchronous_commit=on, synchronous_standby_names='*', "
                "fsync=on",
                "kill": "SIGKILL of the primary's postmaster and every process it started",
            },
        }
    finally:
        pair.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4, help="client threads sending messages")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load before the kill")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after writes resume")
    parser.add_argument("--promote-after", type=float, default=0.0, help="seconds from first refusal to promote")
    args = parser.parse_args()
    result = run(args.threads, args.before, args.after, args.promote_after)
    print(json.dumps(result))
    if result.get("lost_acknowledged_writes"):
        sys.exit(1)


if __name__ == "__main__":
    main()
