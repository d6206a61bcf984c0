"""A service killed with SIGKILL under load loses no message it accepted (2xx): a real server process (and two
workers behind one address), on an SQLite file and on PostgreSQL (``store_url``)."""

from __future__ import annotations

import threading

import httpx
import pytest
from support.builders import M, declared_service
from support.live import free_port, wait_until
from support.processes import serve

from deconflict.service import Service
from deconflict.store import open_store


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_under_load_loses_no_accepted_message(store_url: str, workers: int) -> None:
    """With one server process, and with two workers behind one address (``serve --workers 2``): the
    whole group is killed (the machine is lost)."""
    db = store_url
    args = ("--workers", str(workers)) if workers > 1 else ()
    service = declared_service(db)
    tokens = {p: service.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    service.store.close()
    port = free_port()
    server = serve(db, port, *args)
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
    server.kill()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a sender did not notice that the server was gone"

    server = serve(db, port, *args)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {tokens['TR']}"}, timeout=60) as c:
            stored = {m["id"] for m in c.get(f"{base}/messages", params={"limit": 5000}).json()}
            assert set(accepted) <= stored, sorted(set(accepted) - stored)[:10]
            entries = c.get(f"{base}/record", params={"limit": 5000}).json()["entries"]
            assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
            after = c.post(f"{base}/messages", json={"text": "after the restart"})
            assert after.status_code == 201
    finally:
        server.stop()
    assert Service(open_store(db)).verify(M).ok
