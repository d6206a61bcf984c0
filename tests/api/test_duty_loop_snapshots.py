"""The duty loop goes on while a replay snapshot is written.

A whole replay snapshot costs time in proportion to the state (15.9 s for the 800k rows of a 1M-entry record,
bench/replay.py), and the duty loop writes one every so often (``duty.SNAPSHOT_SHARE``). Written inside the
tick, it held back everything the tick records (escalations, line checks, a line reported down, the tactical
picture's alerts) and made ``/readyz`` say the duty loop was late. The server writes snapshots in a thread of
their own: a snapshot being written here is held until the test lets it go, the way a slow one is."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.builders import T4, A, M, vol
from support.live import LiveServer, auth, free_port, post_notice, start_server, wait_until
from support.processes import serve

from deconflict.api.settings import Settings
from deconflict.clock import FixedClock
from deconflict.service import Service, ticker
from deconflict.store import open_store, snapshots
from deconflict.store.schema import ReplaySnapshot


def test_a_server_started_records_at_once_what_fell_due_while_it_was_down(db: str, clock: FixedClock) -> None:
    """An alert's deadline passed while no server ran: the first pass of the duty loop records its escalation
    as soon as the server is up (once the record's rules are read ahead), not a tick later; with a tick of
    30 s it waited 30 s, the server answering writes meanwhile."""
    svc = Service(open_store(db), clock=clock)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])  # C1, its alert to IL
    svc.store.close()
    clock.advance(seconds=11 * 60)  # past the alert's deadline, with no server running
    server = start_server(db, clock, tick_s=30)
    try:
        tokens = server.tokens("AZ")
        with httpx.Client(base_url=server.url, timeout=10, headers=auth(tokens["AZ"])) as c:
            alerts = [m["id"] for m in c.get(f"{A}/messages").json() if m["type"] == "alert"]
            assert alerts, "the conflict raised no alert"

            def escalated() -> bool:
                steps = {m["id"]: m["escalation_steps"] for m in c.get(f"{A}/messages").json()}
                return all(steps[a] >= 1 for a in alerts)

            wait_until(escalated, "the escalation that fell due while no server ran", deadline_s=10)
    finally:
        server.stop()


def test_a_replay_snapshot_being_written_holds_up_no_escalation_and_the_service_stays_ready(
    db: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "EVERY", 5)  # a whole snapshot is due at once on the declared record
    writing, release = threading.Event(), threading.Event()
    make = snapshots.make

    def slow_make(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        release.wait(60)
        return make(*args, **kwargs)

    monkeypatch.setattr(snapshots, "make", slow_make)
    server = start_server(db, clock, tick_s=0.05)
    try:
        tokens = server.tokens("TR", "IL", "AZ")
        assert writing.wait(10), "no replay snapshot fell due"
        post_notice(server, tokens["TR"], "uav_patrol", 34.52, 37.63)
        post_notice(server, tokens["IL"], "air_sortie", 34.53, 37.70)
        with httpx.Client(base_url=server.url, timeout=10, headers=auth(tokens["AZ"])) as c:
            alerts = [m for m in c.get(f"{A}/messages").json() if m["type"] == "alert"]
            assert alerts, "the conflict raised no alert"
            clock.advance(seconds=11 * 60)  # past the alert's deadline: the next tick records rung 1
            started = time.monotonic()

            def escalated() -> bool:
                steps = {m["id"]: m["escalation_steps"] for m in c.get(f"{A}/messages").json()}
                return all(steps[a["id"]] >= 1 for a in alerts)

            wait_until(escalated, "the alerts' first escalation step while a snapshot is being written", deadline_s=30)
            took = time.monotonic() - started
            ready = c.get("/readyz")
        assert not release.is_set() and writing.is_set()  # the snapshot was being written all along
        # the snapshot is held for up to 60 s: a tick it held up would take that long (30 s for a loaded machine)
        assert took < 30 and ready.status_code == 200, ready.text
        release.set()

        def written() -> bool:
            with server.service.store.read() as s:
                return 5 in s.scalars(select(ReplaySnapshot.seq).where(ReplaySnapshot.mechanism_id == M)).all()

        wait_until(written, "the snapshot, once let go", deadline_s=10)
    finally:
        release.set()
        server.stop()


def _held(work: Any) -> tuple[Any, threading.Event, threading.Event]:
    """``work`` made to wait, once called, until ``release`` is set; ``began`` is set when it is called."""
    began, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        began.set()
        release.wait(60)
        return work(*args, **kwargs)

    return held, began, release


def _stops_once_released(
    db: str, svc: Service, clock: FixedClock, began: threading.Event, release: threading.Event, what: str
) -> None:
    """Serve ``svc`` (on ``db``), its store closed as the server stops (as ``deconflict serve`` does); once ``what`` has
    begun, stop the server gracefully: a second later it is still stopping (waiting for ``what``), and once
    ``what`` is let go it stops, the write-ahead log folded into the database file."""
    settings = Settings(db=db, clock=clock, max_body_bytes=256 * 1024, tick_s=0.05)
    server = LiveServer(svc, settings, closes_store=True).start()
    stopping = threading.Thread(target=server.stop, kwargs={"graceful": True})
    try:
        assert began.wait(10), f"{what}: it never began"
        stopping.start()
        stopping.join(1.0)
        assert stopping.is_alive(), f"the server stopped, its database closed, with {what} still under way"
    finally:
        release.set()
        if stopping.ident is None:
            server.stop()
        else:
            stopping.join(30)
    assert not stopping.is_alive()
    assert not Path(f"{db}-wal").exists()


def test_a_server_that_stops_closes_its_database_only_once_the_snapshot_being_written_is_done(
    db: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that closes its store as it stops (as ``deconflict serve`` does) waits for the replay snapshot
    its duty loop is writing: closed under it, the snapshot's thread went on with a connection of its own, and
    SQLite's write-ahead log stayed beside the database file (the stop's whole point). The snapshot is
    stored, the log folded into the file."""
    monkeypatch.setattr(snapshots, "EVERY", 5)  # a whole snapshot is due at once on the declared record
    slow_make, began, release = _held(snapshots.make)
    monkeypatch.setattr(snapshots, "make", slow_make)
    _stops_once_released(db, Service(open_store(db), clock=clock), clock, began, release, "the replay snapshot")
    store = open_store(db)
    try:
        with store.read() as s:
            assert 5 in s.scalars(select(ReplaySnapshot.seq).where(ReplaySnapshot.mechanism_id == M)).all()
    finally:
        store.close()


def test_a_server_that_stops_lets_the_tick_under_way_finish_before_it_closes_its_database(
    db: str, clock: FixedClock
) -> None:
    """The tick runs in a worker thread: cancelling the duty loop does not stop it, so the server waits for it
    (at most ``TICK_WAIT_S``) before it gives up the lease and closes the store under it."""
    svc = Service(open_store(db), clock=clock)
    svc.tick, began, release = _held(svc.tick)  # type: ignore[method-assign]
    _stops_once_released(db, svc, clock, began, release, "a tick")


def test_a_server_stopped_cleanly_gives_up_the_duty_lease(db: str, tmp_path: Path) -> None:
    """SIGTERM (a restart, a deployment): the stopping server gives up the duty lease, so the next one ticks at
    once; it kept it ``LEASE_S`` (5 s), when ``/readyz`` said another process held it and nothing was ticked."""
    server = serve(db, free_port(), log=tmp_path / "serve.log")
    store = open_store(db)
    try:
        holder = wait_until(lambda: ticker.lease(store), "the duty lease taken", deadline_s=30)
        server.proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then raises the signal it caught again: the status says SIGTERM
        assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM), server.output()
        found = ticker.lease(store)
        assert found is not None and found[0] == holder[0]
        assert found[1] <= datetime.now(UTC), found  # given up: the next process to tick takes it
    finally:
        server.stop()
        store.close()
