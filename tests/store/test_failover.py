"""A standby that takes over: a PostgreSQL 15 primary and its synchronous standby on one machine
(``support.pg_pair``), a real ``deconflict serve`` on their multi-host URL, clients writing hotline
messages over HTTP; the standby stops receiving (the primary's WAL sender frozen), then the primary is
killed (SIGKILL, every process) mid-load and the standby promoted. The
service must find the new primary by itself (no restart), refuse meanwhile with 503 and Retry-After (never
a 500), lose no write it acknowledged, and leave a record that verifies. The refused window is measured,
printed and attached to the test's report (``record_property``; ``tests/artifacts/failover.json``). Then the
old primary is rebuilt as the new one's standby with ``pg_rewind`` (docs/standby.md) and catches up.

Needs Debian's PostgreSQL 15 binaries (``/usr/lib/postgresql/15/bin``): skipped without them, except in CI,
where it fails (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url
from sqlalchemy.exc import ProgrammingError
from support.builders import M, declared_service
from support.failover_load import WriteLoad, lost_writes
from support.live import free_port, wait_until
from support.paths import ARTIFACTS
from support.pg_pair import PgPair, pg_binaries_missing
from support.processes import serve

from deconflict.errors import DeconflictError
from deconflict.service import Service
from deconflict.store import FAILOVER_DEFAULTS, connection_options, database_url, open_store

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def pair() -> Iterator[PgPair]:
    """A primary and its synchronous standby, running (stopped and deleted afterwards)."""
    missing = pg_binaries_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the failover test must run in CI: {missing}")
        pytest.skip(missing)
    with PgPair() as running:
        yield running


def test_libpq_multi_host_urls_are_read_and_other_databases_refused_in_words() -> None:
    given = "postgresql://u:pw@db1:5432,db2:5433/d?target_session_attrs=read-write"
    assert make_url(database_url(given)).query["host"] == ("db1:5432", "db2:5433")
    with pytest.raises(DeconflictError, match="'mysql' databases are not supported"):
        database_url("mysql://u@h/d")


def test_a_url_naming_several_hosts_must_ask_for_the_read_write_one() -> None:
    two = "postgresql://u@/d?host=db1:5432&host=db2:5432"
    both = make_url(database_url(two + "&target_session_attrs=read-write"))  # the driver made explicit, hosts kept
    assert both.drivername == "postgresql+psycopg" and both.query["host"] == ("db1:5432", "db2:5432")
    with pytest.raises(DeconflictError, match="target_session_attrs=read-write"):
        open_store(two)
    with pytest.raises(DeconflictError, match="2 hosts"):
        connection_options(database_url_with(two, "target_session_attrs=any"))
    chosen = connection_options(database_url_with(two, "target_session_attrs=read-write", "connect_timeout=2"))
    assert "connect_timeout" not in chosen  # the URL's own choice stands
    assert chosen == {k: v for k, v in FAILOVER_DEFAULTS.items() if k != "connect_timeout"}
    assert connection_options("postgresql+psycopg://u@db1/d")["connect_timeout"] == 5  # one host: bounded too


def test_a_database_that_does_not_answer_is_said_so_host_by_host() -> None:
    ports = free_port(), free_port()
    url = f"postgresql://u@/d?host=127.0.0.1:{ports[0]}&host=127.0.0.1:{ports[1]}&target_session_attrs=read-write"
    for migrate in (True, False):
        with pytest.raises(DeconflictError) as refused:
            open_store(url, migrate=migrate)
        assert str(refused.value) == (
            f"the database is not reachable: 127.0.0.1:{ports[0]}: Connection refused; "
            f"127.0.0.1:{ports[1]}: Connection refused"
        )


def database_url_with(url: str, *options: str) -> str:
    return "&".join([url, *options])


def _log_lines(log: str) -> Counter[str]:
    """The service's log lines other than requests (and tracebacks), times left out, each with its count."""
    said = (line.split(" ", 1)[-1] for line in log.splitlines() if line[:4].isdigit())  # not a traceback's lines
    return Counter(line for line in said if "deconflict.request:" not in line)


class _Stream(threading.Thread):
    """An event stream read all along by one client: the entries' ids in order, the comments, how many
    connections it took."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.ids: list[int] = []
        self.comments: list[str] = []
        self.connections = 0
        self._stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=httpx.Timeout(10.0, read=120.0)) as client:
            while not self._stop.is_set():
                self.connections += 1
                try:
                    with client.stream("GET", self.url, headers=headers) as r:
                        for line in r.iter_lines():
                            if self._stop.is_set():
                                return
                            if line.startswith("id: "):
                                self.ids.append(int(line[4:]))
                            elif line.startswith(":"):
                                self.comments.append(line)
                except httpx.HTTPError:
                    time.sleep(0.2)

    def last(self) -> int:
        return self.ids[-1] if self.ids else 0

    def stop(self) -> None:
        self._stop.set()


def _head(url: str) -> int:
    """The record's head on a server; 0 while a standby has not replayed the database or its tables yet."""
    try:
        store = open_store(url, migrate=False)
    except DeconflictError:  # database "deconflict" does not exist (yet, on the standby)
        return 0
    try:
        return Service(store).head(M).seq
    except ProgrammingError:  # relation ... does not exist: the standby is still behind the migrations
        return 0
    finally:
        store.close()


def _ready(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=10).status_code == 200


def test_the_service_rides_a_failover_to_the_standby_losing_no_acknowledged_write(
    pair: PgPair, tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    began = time.monotonic()
    service = declared_service(pair.url())
    tokens = {p: service.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    service.store.close()
    server = serve(pair.url(), free_port(), "--writes-per-minute", "0", log=tmp_path / "serve.log")
    load = WriteLoad(f"{server.url}/api/v1/mechanisms/{M}", tokens, threads=4)
    stream = _Stream(f"{server.url}/api/v1/mechanisms/{M}/events", tokens["IL"])
    try:
        stream.start()
        load.start()
        wait_until(lambda: len(load.acks) >= 40, "the load did not get going (40 messages acknowledged)")
        # the kill lands in the middle of writes: they were still being acknowledged right before it
        before = len(load.acks)
        wait_until(lambda: len(load.acks) > before + 4, "the writes stopped being acknowledged before the kill")
        # the standby falls behind, then the primary dies: what only the primary held must not have been
        # acknowledged (synchronous commit: nothing is, meanwhile; asynchronous, this loses writes)
        assert pair.sync_state() == "sync" and pair.stall_replication() == 1
        stalled_at = time.monotonic()
        time.sleep(0.5)
        killed_at = time.monotonic()
        pair.kill_primary()
        wait_until(
            lambda: load.refusals_after(killed_at), "no request was refused with the primary gone", deadline_s=60
        )
        pair.promote()
        promoted_at = time.monotonic()
        wait_until(lambda: load.acks_after(promoted_at) >= 40, "the service did not take writes again", deadline_s=60)
        # and it is whole again: the database reachable, its duty loop (the ticker's lease) running on the new primary
        wait_until(lambda: _ready(server.url), "/readyz did not say ready after the failover", deadline_s=60)
        # Israel's event stream, open all along, went on by itself: it delivers what was written after
        wait_until(
            lambda: stream.last() >= _head(pair.node_url(pair.standby)), "the stream did not go on", deadline_s=60
        )
    finally:
        stream.stop()
        load.stop()
        still_running = server.proc.poll() is None
        server.stop()
    log = server.output()
    window = load.window(killed_at, promoted_at) | {"acknowledged_writes": len(load.acks)}
    window["acknowledged_while_stalled"] = sum(1 for a in load.acks if stalled_at + 0.1 < a.at < killed_at)
    acks, refusals = load.acks, load.refusals

    assert still_running, f"the service exited during the failover: {log[-2000:]}"
    # refused with a worded 503 and Retry-After, never a 500 or a dropped connection
    assert {r.status for r in refusals} <= {503}, [(r.status, r.body[:200]) for r in refusals if r.status != 503]
    for r in refusals:
        body = json.loads(r.body)
        assert r.retry_after is not None and int(r.retry_after) >= 1, r
        assert body["field"] is None and body["detail"].startswith("the database is not reachable"), body
    assert "unexpected error" not in log, log[-3000:]
    # the stream was never cut: one connection, every entry once and in order
    assert stream.connections == 1 and stream.ids == list(range(1, len(stream.ids) + 1)), stream.ids[-20:]

    # every acknowledged write is in the record on the new primary, as it was acknowledged
    lost = lost_writes(pair.node_url(pair.standby), M, acks)
    window["lost_acknowledged_writes"] = len(lost)
    assert not lost, f"{len(lost)} acknowledged writes are not in the record as acknowledged: {lost[:5]}"
    assert len({a.id for a in acks}) == len(acks), "two acknowledged writes were given one id"

    promoted = Service(open_store(pair.node_url(pair.standby), migrate=False))
    try:
        report = promoted.verify(M)
        assert report.ok, report
    finally:
        promoted.store.close()

    # the old primary comes back as the new one's standby (pg_rewind, docs/standby.md), and catches up on
    # the whole record: the pair is whole again, roles swapped
    window["rewind_s"] = round(pair.rejoin_old_primary(), 3)
    with pair.primary.connect() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    wait_until(lambda: not lost_writes(pair.node_url(pair.primary), M, acks), "the rebuilt standby did not catch up")

    window["test_s"] = round(time.monotonic() - began, 1)
    print(f"\nfailover: {json.dumps(window)}\nwhat the service logged, besides requests (times left out):")
    for said, times in _log_lines(log).items():
        print(f"{times:5d} x {said[:200]}")
    for name, value in window.items():
        record_property(name, value)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "failover.json").write_text(json.dumps(window, indent=2) + "\n")
    assert window["refused_window_s"] < 30, window


def test_an_event_stream_open_through_an_outage_says_so_and_goes_on_with_every_entry(
    pair: PgPair, tmp_path: Path
) -> None:
    """The primary is gone for several seconds (the stream reads meanwhile: its member's token is checked
    each second); the stream says the database is not reachable, in a comment, and goes on after the
    promotion on the same connection, with every entry once."""
    service = declared_service(pair.url())
    token = service.issue_token(mechanism_id=M, member_id="IL")
    service.store.close()
    server = serve(pair.url(), free_port(), log=tmp_path / "serve.log")
    base = f"{server.url}/api/v1/mechanisms/{M}"
    stream = _Stream(f"{base}/events", token)
    try:
        stream.start()
        wait_until(lambda: stream.last() >= _head(pair.url()), "the stream did not deliver the record")
        pair.kill_primary()
        wait_until(lambda: any("not reachable" in c for c in stream.comments), "the stream did not say", deadline_s=60)
        pair.promote()
        wait_until(
            lambda: any("answers again" in c for c in stream.comments), "the stream did not go on", deadline_s=60
        )
        sent = httpx.post(f"{base}/messages", json={"text": "after"}, headers={"Authorization": f"Bearer {token}"})
        assert sent.status_code == 201, sent.text
        wait_until(lambda: stream.last() >= _head(pair.node_url(pair.standby)), "the stream missed the new entry")
    finally:
        stream.stop()
        server.stop()
    assert stream.connections == 1 and stream.ids == list(range(1, len(stream.ids) + 1)), stream.ids[-20:]
    assert "unexpected error" not in server.output() and "Traceback" not in server.output(), server.output()[-3000:]


def test_a_frozen_primary_holds_the_writes_waiting_on_it_not_the_server(pair: PgPair, tmp_path: Path) -> None:
    """The primary stops answering without closing its connections (a frozen process, a stalled disk): the
    writes waiting on it wait, but the server goes on answering what needs no database (/healthz), and the
    writes go through once the primary is unfrozen."""
    from support.pg_pair import _children

    service = declared_service(pair.url())
    token = service.issue_token(mechanism_id=M, member_id="TR")
    service.store.close()
    server = serve(pair.url(), free_port(), log=tmp_path / "serve.log")
    base = f"{server.url}/api/v1/mechanisms/{M}"
    postmaster = pair.primary.postmaster_pid()
    assert postmaster is not None
    frozen = [postmaster, *_children(postmaster)]
    answers: list[int] = []

    def write() -> None:
        r = httpx.post(
            f"{base}/messages", json={"text": "frozen"}, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        answers.append(r.status_code)

    writer = threading.Thread(target=write, daemon=True)
    try:
        # the token answered a moment ago (cached for a second): the write goes straight to the database
        assert httpx.get(f"{base}/messages", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        writer.start()
        time.sleep(1.0)  # the write is under way, waiting on the frozen primary
        assert not answers
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert time.monotonic() - started < 2.0
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    writer.join(timeout=120)
    server.stop()
    assert answers == [201], answers


def test_a_url_naming_the_standby_alone_answers_503_and_is_not_ready(pair: PgPair, tmp_path: Path) -> None:
    """After a failover a site still naming one host may point at a standby: its writes are refused with a
    worded 503 (never a 500) and /readyz says it is a standby."""
    service = declared_service(pair.url())
    token = service.issue_token(mechanism_id=M, member_id="TR")
    service.store.close()
    wait_until(lambda: _head(pair.node_url(pair.standby)) > 0, "the standby did not replay the record")
    server = serve(pair.node_url(pair.standby), free_port(), log=tmp_path / "serve.log")
    try:
        r = httpx.post(
            f"{server.url}/api/v1/mechanisms/{M}/messages",
            json={"text": "to a standby"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503 and "standby" in ready.json()["checks"]["database"]["detail"], ready.text
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()[-3000:]
