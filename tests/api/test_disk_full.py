"""A database whose disk is full: a write is refused in words that say so (503), nothing of it is written, reads
go on, and ``/readyz`` says the disk is full. SQLite's own limit on the file's pages (``max_page_count``) makes
it refuse a write exactly as a full disk does (SQLITE_FULL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from support.builders import M, declared_db
from support.live import LiveServer, auth

from deconflict.api import ops
from deconflict.api.errors import DISK_FULL
from deconflict.api.ops import Watch, readiness
from deconflict.api.settings import Settings
from deconflict.clock import system_clock
from deconflict.service import Service
from deconflict.store import open_store


def test_a_write_on_a_full_disk_is_refused_in_words_and_changes_nothing(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "full.db")
    store = open_store(db)
    with store.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
    store.engine.dispose()  # every connection from here on has the limit: a few pages more than the file holds

    def limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 8}")

    event.listen(store.engine, "connect", limit)
    server = LiveServer(Service(store, clock=system_clock), Settings(db=db, tick_s=0.0)).start()
    try:
        token = server.tokens("TR")["TR"]
        base = f"{server.url}/api/v1/mechanisms/{M}"
        with httpx.Client(headers=auth(token), timeout=10) as c:
            answer = None
            for i in range(2000):
                answer = c.post(f"{base}/messages", json={"text": f"message {i} " + "x" * 2000})
                if answer.status_code != 201:
                    break
            assert answer is not None and answer.status_code == 503, answer.text if answer else None
            assert answer.json()["detail"] == DISK_FULL
            assert "not reachable" not in answer.text
            head = c.get(f"{base}/record", params={"limit": 1}).json()
            record = c.get(f"{base}/record", params={"after": head["next_after"] - 1 if head["next_after"] else 0})
            assert record.status_code == 200  # reads go on
            stored = [e["seq"] for e in c.get(f"{base}/record", params={"limit": 5000}).json()["entries"]]
            assert stored == list(range(1, len(stored) + 1))  # nothing half-written, no gap
    finally:
        server.stop()
        store.close()


def test_readyz_says_when_the_database_disk_is_nearly_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = declared_db(tmp_path / "ready.db")
    service = Service(open_store(db), clock=system_clock)
    watch = Watch(Settings(db=db, tick_s=0.0), service)
    assert readiness(watch)["database"]["ok"] is True
    monkeypatch.setattr(ops, "DISK_LOW_BYTES", 2**62)  # more than any disk has free
    check = readiness(watch)["database"]
    assert check["ok"] is False and check["detail"].startswith("its disk is full (")
    service.store.close()
