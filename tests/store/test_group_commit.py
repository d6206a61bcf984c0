"""Group commit on a SQLite file (``open_store(..., group_commit=True)``, as the service opens it): a write is
answered, a read answered and a listener told only once a sync of the write-ahead log made after the commit
has returned; one sync covers every commit made meanwhile; a failed sync refuses every write after it.

The disk here is the real file system with a sync that can be held, slowed or failed (``GroupSync(sync=)``):
a power cut cannot be made in a test, but what must have happened before each answer can be checked."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session
from support.builders import M, declared_db, position

from deconflict.api.ops import Watch, readiness
from deconflict.api.settings import Settings
from deconflict.clock import system_clock
from deconflict.service import Service
from deconflict.store import open_store
from deconflict.store.durable import DiskFailed, Durability, GroupSync


def wal_of(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def grouped(db: Path, sync: Any) -> Service:
    """A service on ``db`` opened as the server opens it, its log synced by ``sync``."""
    service = Service(open_store(str(db), group_commit=True), clock=system_clock)
    assert type(service.store.durable) is GroupSync
    service.store.durable = GroupSync(db, sync=sync)
    return service


def failing_once() -> Callable[[int], None]:
    """A disk whose first sync reports a lost write (EIO); the later ones succeed."""
    failures = [OSError(errno.EIO, "Input/output error")]

    def disk(fd: int) -> None:
        if failures:
            raise failures.pop()
        os.fdatasync(fd)

    return disk


def test_the_server_store_syncs_the_log_itself_and_other_stores_at_each_commit(tmp_path: Path) -> None:
    """The service's store commits with NORMAL and syncs the log itself (GroupSync); any other opening keeps
    FULL, the log synced inside each commit."""
    grouped_store = open_store(str(tmp_path / "g.db"), group_commit=True)
    plain = open_store(str(tmp_path / "p.db"))
    memory = open_store(":memory:", group_commit=True)
    try:
        with grouped_store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: GroupSync syncs
        assert type(grouped_store.durable) is GroupSync
        with plain.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert type(plain.durable) is Durability
        assert type(memory.durable) is Durability  # nothing on a disk to sync
    finally:
        grouped_store.close()
        plain.close()
        memory.close()


def test_nothing_is_answered_or_told_before_the_sync_that_covers_it(tmp_path: Path) -> None:
    """With the disk holding its sync: the message is committed (another connection reads it) but the sender
    is not answered, the listeners have heard nothing, and a read of the channel waits too. The sync returns:
    all three go on."""
    db = tmp_path / "held.db"
    declared_db(db)
    held = threading.Event()
    release = threading.Event()

    def disk(fd: int) -> None:
        held.set()
        assert release.wait(30), "the test never released the disk"
        os.fdatasync(fd)

    service = grouped(db, disk)
    heard: list[int] = []
    service.listeners.append(lambda mechanism, seq: heard.append(seq))
    outcome: dict[str, Any] = {}

    def send() -> None:
        outcome["message"] = service.send_message(mechanism_id=M, actor="TR", text="line check")

    def read() -> None:
        outcome["read"] = service.messages(M, reader=service.member(M, "IL"))

    sender = threading.Thread(target=send)
    sender.start()
    assert held.wait(30), "the write never asked for a sync"
    with sqlite3.connect(db) as raw:  # committed: the log holds it (not yet synced)
        assert raw.execute("SELECT count(*) FROM ledger WHERE type = 'message.sent'").fetchone()[0] == 1
    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    assert sender.is_alive() and "message" not in outcome, "the sender was answered before the disk synced"
    assert reader.is_alive() and "read" not in outcome, "a read was answered before the disk synced"
    assert heard == [], "a listener heard of an entry before the disk synced it"
    release.set()
    sender.join(30)
    reader.join(30)
    assert outcome["message"]["id"] == "M1"
    assert [m["id"] for m in outcome["read"]] == ["M1"]
    assert heard == [outcome["message"]["seq"]] if "seq" in outcome["message"] else len(heard) == 1
    assert service.store.durable.synced == service.store.durable.newest
    service.store.close()


def test_one_sync_covers_the_commits_made_while_the_last_one_ran(tmp_path: Path) -> None:
    """Eight senders on a disk that takes 5 ms a sync: every message is answered after a sync that began
    after its commit, the listeners hear every entry once and in order, and the syncs are far fewer than the
    commits (with a sync inside each commit, as FULL does, there would be one each)."""
    db = tmp_path / "group.db"
    declared_db(db)
    started: list[float] = []

    def slow_disk(fd: int) -> None:
        started.append(time.monotonic())
        time.sleep(0.005)
        os.fdatasync(fd)

    service = grouped(db, slow_disk)
    heard: list[int] = []
    service.listeners.append(lambda mechanism, seq: heard.append(seq))
    late: list[str] = []
    per_sender = 15

    def sender(n: int) -> None:
        party = ("TR", "IL")[n % 2]
        for i in range(per_sender):
            before = time.monotonic()
            sent = service.send_message(mechanism_id=M, actor=party, text=f"{party} {n}.{i}")
            if not any(s > before for s in started):
                late.append(sent["id"])

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    durable = service.store.durable
    assert late == [], f"answered with no sync begun after the write: {late}"
    assert heard == sorted(heard) and len(heard) == len(set(heard)) == 8 * per_sender
    assert durable.newest == 8 * per_sender
    assert durable.syncs <= durable.newest // 2, f"{durable.syncs} syncs for {durable.newest} commits"
    service.store.close()


def test_a_read_that_changed_nothing_asks_for_no_sync(tmp_path: Path) -> None:
    db = tmp_path / "reads.db"
    declared_db(db)
    calls: list[int] = []

    def disk(fd: int) -> None:
        calls.append(fd)
        os.fdatasync(fd)

    service = grouped(db, disk)
    service.send_message(mechanism_id=M, actor="TR", text="one")
    assert len(calls) == 1
    for _ in range(5):
        service.messages(M, reader=service.member(M, "IL"))
        service.activities(M)
    assert len(calls) == 1, "reads made the disk sync"
    service.store.close()


def test_a_failed_sync_refuses_that_write_and_every_one_after_it(tmp_path: Path) -> None:
    """The disk reports a lost write (EIO): the write is refused (503, in words), and so is every write and
    read after it, even if a later sync would succeed (the kernel reports a lost page once); no listener is
    told of what may not be on the disk."""
    db = tmp_path / "eio.db"
    declared_db(db)
    service = grouped(db, failing_once())
    heard: list[int] = []
    service.listeners.append(lambda mechanism, seq: heard.append(seq))
    with pytest.raises(DiskFailed) as refused:
        service.send_message(mechanism_id=M, actor="TR", text="lost?")
    assert refused.value.status == 503
    assert "disk refused to store the record" in refused.value.message
    assert "Input/output error" in refused.value.message and "restart" in refused.value.message
    with pytest.raises(DiskFailed):
        service.send_message(mechanism_id=M, actor="IL", text="after")
    with pytest.raises(DiskFailed):
        service.messages(M, reader=service.member(M, "IL"))
    assert heard == []
    ready = readiness(Watch(Settings(db=str(db), tick_s=0), service))
    assert ready["database"] == {
        "ok": False,
        "detail": "its disk refused to store writes: check the disk, then restart",
    }
    service.store.close()  # closes, though nothing more can be synced


def test_a_read_that_sees_a_commit_waits_for_its_sync_though_its_writer_has_not_finished(tmp_path: Path) -> None:
    """The commit is announced before it is made: a read in the gap between SQLite's COMMIT and the end of the
    writer's transaction (held open here after the commit) sees the row and waits until it is synced."""
    db = tmp_path / "gap.db"
    store = open_store(str(db), group_commit=True)
    committed, release = threading.Event(), threading.Event()

    def hold_after_commit(session: Session) -> None:
        if threading.current_thread().name == "writer":
            committed.set()
            release.wait(30)

    event.listen(Session, "after_commit", hold_after_commit)
    try:

        def write() -> None:
            with store.transaction() as s:
                s.execute(text("INSERT INTO ticker_lease(name, holder, expires_at) VALUES ('x', 'me', '2030-01-01')"))

        seen: list[Any] = []

        def read() -> None:
            with store.read() as s:
                rows = s.execute(text("SELECT holder FROM ticker_lease WHERE name = 'x'")).all()
            seen.extend([*rows, store.durable.synced])  # once the read has ended: what it would answer

        w = threading.Thread(target=write, name="writer")
        w.start()
        assert committed.wait(30)
        r = threading.Thread(target=read)
        r.start()
        time.sleep(0.3)
        assert r.is_alive() and seen == [], "a read answered with a commit no sync had covered"
        release.set()
        w.join(30)
        r.join(30)
        assert seen == [("me",), store.durable.newest]
    finally:
        release.set()
        time.sleep(0.1)
        event.remove(Session, "after_commit", hold_after_commit)
        store.close()


def test_a_database_named_through_a_link_has_its_own_log_synced(tmp_path: Path) -> None:
    """SQLite keeps the log beside the real file when the database is named through a symbolic link: that log is
    the one synced (before, a log looked for beside the link was not found and nothing was synced, silently)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link.db").symlink_to(tmp_path / "real" / "d.db")
    store = open_store(f"sqlite:///{tmp_path}/link.db", group_commit=True)
    synced: list[int] = []
    store.durable = GroupSync(tmp_path / "link.db", sync=lambda fd: (synced.append(fd), os.fdatasync(fd)) and None)
    for i in range(3):
        with store.transaction() as s:
            s.execute(text(f"INSERT INTO ticker_lease(name, holder, expires_at) VALUES ('x{i}', 'me', '2030-01-01')"))
    assert len(synced) == 3
    assert os.path.samefile(f"/proc/self/fd/{synced[0]}", tmp_path / "real" / "d.db-wal")
    store.close()


def test_a_listener_that_reads_the_store_is_refused_not_a_deadlock(tmp_path: Path, caplog: Any) -> None:
    """A listener runs inside the sync that covers its commit: a read there would wait for that sync for ever.
    It is refused with an error in the log, and writes go on."""
    db = tmp_path / "listener.db"
    declared_db(db)
    service = grouped(db, os.fdatasync)
    service.listeners.append(lambda mechanism, seq: service.messages(M, reader=service.member(M, "IL")))
    done: list[str] = []
    sender = threading.Thread(
        target=lambda: [
            done.append(service.send_message(mechanism_id=M, actor="TR", text=f"{i}")["id"]) for i in (1, 2)
        ],
        daemon=True,
    )
    sender.start()
    sender.join(20)
    assert done == ["M1", "M2"], "a listener reading the store stopped the writes"
    assert "may not read the store" in caplog.text
    service.store.close()


def test_a_failed_sync_refuses_the_track_reports_it_stored(tmp_path: Path) -> None:
    """Track reports are stored for several requests at once: a request is answered only once the sync covers
    them, and refused when that sync fails, like any write."""
    db = tmp_path / "tracks.db"
    declared_db(db)
    service = grouped(db, failing_once())
    with pytest.raises(DiskFailed):
        service.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", system_clock(), (37.6, 34.5), 90)])
    service.store.close()
