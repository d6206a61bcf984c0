"""Several server processes on one database (issue 15), on an SQLite file and on PostgreSQL (``store_url``):
real ``deconflict serve`` processes on loopback, under load from real HTTP clients.

- Two processes taking writes at once accept every one (no 503: a write waits at its record's gate), store
  each once, and the chain verifies.
- An event stream from one process delivers what another process wrote, at once (not at its next
  keep-alive), and a client that moves to the other process resumes where it was: every entry once.
- The process that runs the duty loop is killed in the middle of an escalation: the other takes over within
  seconds, and every step of the ladder is recorded once (none missed, none doubled; the record rechecks).
- ``serve --workers 2``: two workers behind one address, a worker that dies is replaced, Ctrl-C stops all.
- A server stopped (SIGTERM as systemd stops it, Ctrl-C) leaves every commit in the SQLite database file itself:
  a copy of that file alone holds the whole record.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from support.builders import HAMA, M, declared_service, syria, vol
from support.live import SSEReader, auth, free_port, next_events_of, wait_until
from support.processes import ServeProcess, serve

from deconflict.model import Rung
from deconflict.service import Service
from deconflict.service.recheck import recheck
from deconflict.service.ticker import lease
from deconflict.store import open_store

pytestmark = pytest.mark.timeout(600)

A = f"/api/v1/mechanisms/{M}"


def _declared(db: str, **rules: object) -> dict[str, str]:
    """The Syria mechanism declared on ``db`` (its rules changed by ``rules``); a token per party."""
    mechanism = syria()
    if rules:
        mechanism = dataclasses.replace(mechanism, rules=dataclasses.replace(mechanism.rules, **rules))
    service = declared_service(db, mechanism=mechanism)
    tokens = {p: service.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    service.store.close()
    return tokens


def _record(url: str, token: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    after = 0
    while True:
        page = httpx.get(f"{url}{A}/record", params={"after": after, "limit": 5000}, headers=auth(token), timeout=60)
        entries += page.json()["entries"]
        if len(page.json()["entries"]) < 5000:
            return entries
        after = int(page.json()["next_after"])


def test_two_processes_taking_writes_at_once_accept_each_once_and_the_chain_holds(
    store_url: str, tmp_path: Path
) -> None:
    tokens = _declared(store_url)
    a = serve(store_url, free_port(), log=tmp_path / "a.log")
    b = serve(store_url, free_port(), log=tmp_path / "b.log")
    statuses: Counter[int] = Counter()
    accepted: list[str] = []
    lock = threading.Lock()

    def sender(party: str, first: ServeProcess, second: ServeProcess) -> None:
        with httpx.Client(headers=auth(tokens[party]), timeout=60) as c:
            for n in range(25):  # every other request to the other process
                target = first if n % 2 == 0 else second
                r = c.post(f"{target.url}{A}/messages", json={"text": f"{party} message {n}"})
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 201:
                        accepted.append(r.json()["id"])

    threads = [
        threading.Thread(target=sender, args=(p, x, y)) for p, x, y in (("TR", a, b), ("IL", b, a), ("TR", b, a))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert statuses == Counter({201: 75}), statuses  # no write refused, none ran out of retries (503)
        assert len(set(accepted)) == 75  # each numbered once, whichever process numbered it
        stored = {
            m["id"]
            for m in httpx.get(f"{b.url}{A}/messages", params={"limit": 5000}, headers=auth(tokens["IL"])).json()
        }
        assert set(accepted) <= stored
        entries = _record(a.url, tokens["TR"])
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        sent = [e for e in entries if e["type"] == "message.sent" and str(e["actor"]) in ("TR", "IL")]
        assert len(sent) == 75
        for p in (a, b):  # each write waited at the gate for the other's: none worked on a stale picture
            metrics = httpx.get(f"{p.url}/metrics", timeout=30).text
            assert "deconflict_writes_rerun_total 0.0" in metrics, [m for m in metrics.splitlines() if "rerun" in m]
    finally:
        a.stop()
        b.stop()
    assert Service(open_store(store_url)).verify(M).ok


def test_a_stream_from_one_process_delivers_what_another_wrote_at_once_and_resumes_on_either(
    store_url: str, tmp_path: Path
) -> None:
    tokens = _declared(store_url)
    a = serve(store_url, free_port(), log=tmp_path / "a.log")
    b = serve(store_url, free_port(), log=tmp_path / "b.log")
    seen: list[int] = []
    try:
        head = _record(a.url, tokens["TR"])[-1]["seq"]
        with httpx.Client() as client:
            reader = SSEReader(client, f"{b.url}{A}/events?after={head}", auth(tokens["TR"]), read_s=60)
            lags = []
            for n in range(3):
                r = httpx.post(f"{a.url}{A}/messages", json={"text": f"through a {n}"}, headers=auth(tokens["IL"]))
                assert r.status_code == 201, r.text
                answered = time.monotonic()  # the entry is committed: from here on, b may hear of it
                (event,) = next_events_of(reader, {"message.sent"}, 1, deadline_s=60)
                lags.append(time.monotonic() - answered)
                assert event[2]["payload"]["id"] == r.json()["id"]
            seen.append(event[0])
            reader.close()
            # b's keep-alive is 15 s: the entry came because b heard a's commit, not because b looked again
            assert max(lags) < 10.0, lags
            # the client moves to a and resumes after the last entry it saw: every later entry once
            for n in range(3):
                assert (
                    httpx.post(
                        f"{b.url}{A}/messages", json={"text": f"through b {n}"}, headers=auth(tokens["TR"])
                    ).status_code
                    == 201
                )
            headers = auth(tokens["TR"]) | {"Last-Event-ID": str(seen[-1])}
            reader = SSEReader(client, f"{a.url}{A}/events", headers, read_s=60)
            later = []
            while len([e for e in later if e[1] == "message.sent"]) < 3:
                later.append(reader.next_event())
            reader.close()
        ids = [e[0] for e in later if e[0]]
        assert ids == list(range(seen[-1] + 1, seen[-1] + 1 + len(ids)))  # none missed, none twice, in order
    finally:
        a.stop()
        b.stop()


def test_the_ticking_process_killed_mid_escalation_another_takes_over_and_no_step_is_missed_or_doubled(
    store_url: str, tmp_path: Path
) -> None:
    """A short notice's alert climbs a ladder of 6-second rungs (the shortest the rules allow); the process
    holding the duty lease is killed after the first step; the other process takes the lease and records the
    rest, each once."""
    ladder = tuple(Rung(r.name, 6.0) for r in syria().rules.ladder)
    tokens = _declared(store_url, ack_deadline_s=6.0, ladder=ladder)
    a = serve(store_url, free_port(), log=tmp_path / "a.log")
    b = serve(store_url, free_port(), log=tmp_path / "b.log")
    procs = {a.proc.pid: a, b.proc.pid: b}
    store = open_store(store_url)
    try:
        holder = wait_until(lambda: lease(store), "no process took the duty lease")[0]
        ticking = procs[int(holder.split(":")[1])]
        other = b if ticking is a else a
        r = httpx.post(
            f"{other.url}{A}/activities",
            json={"kind": "air_sortie", "volumes": [vol(HAMA, _now() + timedelta(minutes=20))]},
            headers=auth(tokens["IL"]),
            timeout=60,
        )
        assert r.status_code == 201, r.text

        def steps() -> list[tuple[str, int]]:
            return [
                (str(e["payload"]["id"]), int(e["payload"]["rung"]))  # type: ignore[index]
                for e in _record(other.url, tokens["IL"])  # Israel's alert: its steps are told to Israel
                if e["type"] == "message.escalated" and "payload" in e  # (others: withheld)
            ]

        wait_until(lambda: steps(), "the first escalation step was not recorded", every_s=0.2)
        alert = steps()[0][0]
        ticking.kill()
        last = len(ladder) - 1
        wait_until(lambda: (alert, last) in steps(), "the ladder did not reach its last rung", every_s=0.5)
        holder = (lease(store) or ("",))[0]
        assert int(holder.split(":")[1]) == other.proc.pid
        done = steps()
        assert len(done) == len(set(done)), Counter(done).most_common(3)  # none doubled
        assert [rung for m, rung in done if m == alert] == list(range(1, last + 1))  # none missed
        docs = Service(store).entries_after(M, 0, limit=100_000)
        assert recheck(docs, mechanism=M).problems == []
    finally:
        for p in procs.values():
            if p.proc.poll() is None:
                p.stop()
        store.close()


def _now():  # type: ignore[no-untyped-def]
    from deconflict.clock import system_clock

    return system_clock()


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started, as /proc lists them now (a thread or a process that ends meanwhile is
    left out: workers come and go while they are replaced)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _workers(pid: int) -> set[int]:
    """The worker processes of a ``serve --workers`` parent (multiprocessing's resource tracker left out)."""
    found: set[int] = set()
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except OSError:
            continue
    return found


def test_workers_behind_one_address_serve_replace_a_dead_one_and_stop_together(store_url: str, tmp_path: Path) -> None:
    tokens = _declared(store_url)
    server = serve(store_url, free_port(), "--workers", "2", log=tmp_path / "serve.log")
    try:
        workers = wait_until(lambda: len(_workers(server.proc.pid)) == 2 and _workers(server.proc.pid), "two workers")
        codes = Counter()
        for n in range(20):  # a new connection each time: the kernel hands them to either worker
            r = httpx.post(f"{server.url}{A}/messages", json={"text": f"m {n}"}, headers=auth(tokens["TR"]))
            codes[r.status_code] += 1
        assert codes == Counter({201: 20})
        dead = min(workers)
        os.kill(dead, 9)
        wait_until(lambda: len(_workers(server.proc.pid) - {dead}) == 2, "the dead worker was not replaced")
        r = httpx.post(f"{server.url}{A}/messages", json={"text": "after"}, headers=auth(tokens["TR"]), timeout=60)
        assert r.status_code == 201
        workers = _workers(server.proc.pid)
        # a worker just started is ready once its duty loop has run (readyz asks): whichever answers, soon 200
        wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200, "/readyz not ready")
    finally:
        assert server.stop() == 0, server.output()[-3000:]
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "a worker outlived its parent"
    # the death is a warning in the operator's log (it was an INFO line among the routine ones)
    said = [line for line in server.output().splitlines() if f"worker process {dead} is gone" in line]
    assert len(said) == 1 and "WARNING" in said[0], server.output()[-3000:]
    assert Service(open_store(store_url)).verify(M).ok


@pytest.mark.parametrize(
    ("args", "sig"),
    [((), signal.SIGTERM), ((), signal.SIGINT), (("--workers", "2"), signal.SIGTERM)],
    ids=["one process, SIGTERM", "one process, Ctrl-C", "two workers, SIGTERM"],
)
def test_a_stopped_server_leaves_every_commit_in_the_database_file(
    tmp_path: Path, args: tuple[str, ...], sig: signal.Signals
) -> None:
    """An operator who stops the service and copies its database file (a backup, a move to another machine)
    has the whole record in the copy: the server closes its database as it stops, and SQLite folds its
    write-ahead log into the file. Left open, the last commits stayed in the ``-wal`` file beside it, and a
    copy of the file alone lacked them (bench/catchup.py's copy of a filled record did)."""
    db = str(tmp_path / "d.db")
    tokens = _declared(db)
    server = serve(db, free_port(), *args, log=tmp_path / "serve.log")
    try:
        for n in range(12):
            party = ("TR", "IL")[n % 2]
            r = httpx.post(
                f"{server.url}{A}/messages", json={"text": f"m {n}"}, headers=auth(tokens[party]), timeout=60
            )
            assert r.status_code == 201, r.text
        head = _record(server.url, tokens["TR"])[-1]["seq"]
        assert Path(f"{db}-wal").stat().st_size > 0  # the commits are in the log while it serves
    finally:
        if server.proc.poll() is None:
            server.proc.send_signal(sig)
        code = server.proc.wait(timeout=60)
    assert code in (0, -sig, 128 + sig), (code, server.output()[-3000:])  # as a shell says a signal
    assert not Path(f"{db}-wal").exists(), server.output()[-3000:]
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)
    con = sqlite3.connect(copy)
    try:
        # every entry a client was answered with (the duty loop may have appended since: line checks)
        (copied,) = con.execute("SELECT max(seq) FROM ledger WHERE mechanism_id = ?", (M,)).fetchone()
        assert copied >= head
    finally:
        con.close()
    service = Service(open_store(str(copy)))
    try:
        assert service.verify(M).ok
    finally:
        service.store.close()


def test_workers_refuse_an_in_memory_database_in_words(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "deconflict"
    done = subprocess.run(
        [str(exe), "serve", "--db", "sqlite://", "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "in-memory SQLite database cannot be shared" in done.stderr and "Traceback" not in done.stderr


# --- pinned to CPUs (serve --cpus) ----------------------------------------------------------------------

TWO_CPUS = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to choose from"
)


def _allowed(pid: int) -> set[int]:
    return set(os.sched_getaffinity(pid))


def _threads_allowed(pid: int) -> set[frozenset[int]]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.add(frozenset(os.sched_getaffinity(int(task.name))))
        except ProcessLookupError:
            continue
    return found


@TWO_CPUS
def test_one_process_pinned_runs_every_thread_on_its_cpu_and_serves(store_url: str, tmp_path: Path) -> None:
    tokens = _declared(store_url)
    cpu = max(os.sched_getaffinity(0))
    server = serve(store_url, free_port(), "--cpus", str(cpu), log=tmp_path / "serve.log")
    try:
        r = httpx.post(f"{server.url}{A}/messages", json={"text": "pinned"}, headers=auth(tokens["TR"]))
        assert r.status_code == 201
        assert _threads_allowed(server.proc.pid) == {frozenset({cpu})}  # the write threads, started since, too
    finally:
        assert server.stop() in (0, 130), server.output()[-3000:]  # 130: uvicorn ends as Ctrl-C does


def _pinned_workers(server: ServeProcess, gone: set[int] = frozenset()) -> set[int] | None:  # type: ignore[assignment]
    """The two workers of ``server`` once both have pinned themselves (None until then)."""
    workers = _workers(server.proc.pid) - gone
    return workers if len(workers) == 2 and all(len(_allowed(p)) == 1 for p in workers) else None


@TWO_CPUS
def test_workers_pinned_take_one_cpu_each_and_a_replacement_takes_the_one_left(store_url: str, tmp_path: Path) -> None:
    tokens = _declared(store_url)
    first, second = sorted(os.sched_getaffinity(0))[:2]
    server = serve(store_url, free_port(), "--workers", "2", "--cpus", f"{first},{second}", log=tmp_path / "s.log")
    try:
        workers = wait_until(lambda: _pinned_workers(server), "two pinned workers")
        for cpu in (first, second):  # whichever dies, its replacement takes the CPU it left
            by_cpu = {min(_allowed(w)): w for w in workers}
            assert set(by_cpu) == {first, second}
            os.kill(by_cpu[cpu], 9)
            workers = wait_until(
                lambda dead=by_cpu[cpu]: _pinned_workers(server, {dead}), "the dead worker was not replaced"
            )
            assert {min(_allowed(w)) for w in workers} == {first, second}
        r = httpx.post(f"{server.url}{A}/messages", json={"text": "after"}, headers=auth(tokens["TR"]), timeout=60)
        assert r.status_code == 201
    finally:
        assert server.stop() == 0, server.output()[-3000:]


@TWO_CPUS
def test_workers_that_cannot_take_turns_choosing_still_pin_and_serve(store_url: str, tmp_path: Path) -> None:
    """Something else holds the name the workers take turns on (another user, a stuck process): each worker
    waits, says so, chooses anyway and serves; never a worker that dies and is replaced for ever."""
    import socket

    tokens = _declared(store_url)
    squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server = serve(store_url, free_port(), "--workers", "2", "--cpus", "0,1", log=tmp_path / "s.log", wait=False)
    try:
        squatter.bind(f"\0deconflict-cpus-{server.proc.pid}")  # before the workers start (they import first)
        server.wait_ready()
        r = httpx.post(f"{server.url}{A}/messages", json={"text": "squatted"}, headers=auth(tokens["TR"]), timeout=60)
        assert r.status_code == 201
        wait_until(lambda: _pinned_workers(server), "two pinned workers")
        assert "waited 10 s for its siblings to choose; choosing anyway" in server.output()
        assert "Traceback" not in server.output()
    finally:
        squatter.close()
        assert server.stop() == 0, server.output()[-3000:]


def test_a_cpu_the_process_may_not_use_is_refused_in_words(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "deconflict"
    db = tmp_path / "never.db"
    done = subprocess.run(
        [str(exe), "serve", "--db", str(db), "--cpus", "4096", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--cpus: CPU 4096 is not one this process may run on; it may use" in done.stderr
    assert "Traceback" not in done.stderr and not db.exists()
