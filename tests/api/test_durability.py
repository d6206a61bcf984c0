"""A service killed with SIGKILL under load loses no message it accepted (2xx): a real server process, on an SQLite
file and on PostgreSQL (``store_url``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from support.builders import M, declared_service
from support.live import free_port, wait_until

from deconflict.service import Service
from deconflict.store import open_store


def _serve(db: str, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "deconflict"
    proc = subprocess.Popen(
        [str(exe), "serve", "--db", db, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120  # a generous deadline on the condition, for a busy machine
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)


def test_sigkill_under_load_loses_no_accepted_message(store_url: str) -> None:
    db = store_url
    service = declared_service(db)
    tokens = {p: service.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    service.store.close()
    port = free_port()
    proc = _serve(db, port)
    base = f"http://127.0.0.1:{port}/api/v1/mechanisms/{M}"
    accepted: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def sender(party: str) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {tokens[party]}"}, timeout=60) as c:
            n = 0
            while True:
                n += 1
                try:
                    r = c.post(f"{base}/messages", json={"text": f"{party} message {n}"})
                except httpx.TransportError:
                    if killed.is_set():
                        return  # the server is gone: what was not answered was not accepted
                    continue  # slow, not gone (a busy machine): what was not answered was not accepted
                if r.status_code == 201:
                    with lock:
                        accepted.append(r.json()["id"])

    def count() -> int:
        with lock:
            return len(accepted)

    watcher = httpx.Client(headers={"Authorization": f"Bearer {tokens['IL']}"}, timeout=60)

    def record_head(after: int = 0) -> int:
        """The last entry number of the record as the server has it now (one page past ``after``)."""
        while True:
            page = watcher.get(f"{base}/record", params={"after": after, "limit": 5000}).json()
            if len(page["entries"]) < 5000:
                return int(page["next_after"])
            after = int(page["next_after"])

    threads = [threading.Thread(target=sender, args=(p,), daemon=True) for p in ("TR", "IL", "TR", "IL")]
    for t in threads:
        t.start()
    # The load is confirmed running by what it does: 50 messages accepted, and the record still growing
    # right before the kill, so the kill lands in the middle of writes (never on a timer).
    wait_until(lambda: count() >= 50, "the load did not get going (50 messages accepted)")
    seen = record_head()
    wait_until(lambda: record_head(seen) > seen + 4, "the record did not keep growing under the load")
    watcher.close()
    before = count()
    wait_until(lambda: count() > before, "the senders stopped being answered")
    killed.set()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sender did not notice that the server was gone"

    proc = _serve(db, port)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {tokens['TR']}"}, timeout=60) as c:
            stored = {m["id"] for m in c.get(f"{base}/messages", params={"limit": 5000}).json()}
            assert set(accepted) <= stored, sorted(set(accepted) - stored)[:10]
            entries = c.get(f"{base}/record", params={"limit": 5000}).json()["entries"]
            assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
            after = c.post(f"{base}/messages", json={"text": "after the restart"})
            assert after.status_code == 201
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert Service(open_store(db)).verify(M).ok
