"""Operations over real HTTP on loopback: ``/healthz``, ``/readyz`` (ready; not ready without the duty
loop, with the database out of reach, with migrations behind), ``/metrics`` (parsed by prometheus_client;
the figures move after a notice, a conflict and an escalation; no ids), the request logs (JSON, no
token), and ``deploy/`` (the systemd unit verifies and its ``ExecStart`` is a valid ``serve`` line)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.builders import A, M, declared_db, declared_service, vol
from support.live import LiveServer, auth, free_port, post_notice, start_server, wait_until
from support.pg import PgDatabases
from typer.main import get_command

from deconflict import logs
from deconflict.api.ops import SingleFlight, Watch, documented_paths, readiness
from deconflict.api.settings import Settings
from deconflict.cli import app as cli_app
from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.store import open_store

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
T4 = (34.5226, 37.6298)


def metrics(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``/metrics`` parsed by prometheus_client's own parser: (sample name, labels) → value."""
    r = httpx.get(f"{server.url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(figures: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """One sample's value (0 when the series is absent, as Prometheus would treat a sum over nothing)."""
    return figures.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def ticking(db: str, clock: FixedClock) -> Iterator[LiveServer]:
    """The app on ``db`` with its duty loop running every 50 ms."""
    server = start_server(db, clock, tick_s=0.05)
    yield server
    server.stop()


# --- /healthz and /readyz --------------------------------------------------------------------------


def test_healthz_answers_alive_without_a_token(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "alive"}
    assert r.headers["cache-control"] == "no-store"
    assert "/healthz" not in client.get("/openapi.json").json()["paths"]


def test_readyz_is_ready_once_the_duty_loop_ran(ticking: LiveServer) -> None:
    r = wait_until(lambda: (x := httpx.get(f"{ticking.url}/readyz")).status_code == 200 and x, "ready")
    # the probe opens a new connection each time: measured 5 ms on SQLite, 58 ms on PostgreSQL (direct)
    assert r.elapsed.total_seconds() < 5
    body = r.json()
    assert body["status"] == "ready"
    assert {name: c["ok"] for name, c in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "ticker": True,
    }
    assert body["checks"]["migrations"]["detail"].startswith("at head ")
    assert body["checks"]["ticker"]["lease"] == "held by this process"


def test_two_processes_on_one_database_are_both_ready_and_one_holds_the_lease(
    ticking: LiveServer, db: str, clock: FixedClock
) -> None:
    other = start_server(db, clock, tick_s=0.05)
    try:
        servers = (ticking, other)
        for server in servers:
            wait_until(lambda s=server: httpx.get(f"{s.url}/readyz").status_code == 200, "both ready")
        leases = sorted(httpx.get(f"{s.url}/readyz").json()["checks"]["ticker"]["lease"] for s in servers)
        assert leases == ["held by another process", "held by this process"]
        assert sum(value(metrics(s), "deconflict_duty_lease_held") for s in servers) == 1
    finally:
        other.stop()


def test_readyz_is_ready_on_a_file_whose_name_needs_quoting(db: str, clock: FixedClock, tmp_path: Path) -> None:
    """The probe named the file in a URI unquoted: on 'a%20b.db' it looked for 'a b.db' (database unreachable), on
    'a?b.db' it opened 'a', made it, and found no migrations there (a review). Each name is its own file."""
    folder = tmp_path / "case %20 #7"
    folder.mkdir()
    served = folder / "a%20b?.db"
    shutil.copyfile(db, served)
    server = start_server(str(served), clock, tick_s=0.05)
    try:
        r = wait_until(lambda: (x := httpx.get(f"{server.url}/readyz")).status_code == 200 and x, "ready")
        assert {name: c["ok"] for name, c in r.json()["checks"].items()} == {
            "database": True,
            "migrations": True,
            "ticker": True,
        }
    finally:
        server.stop()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(served.name)) == []


def test_readyz_is_not_ready_when_the_duty_loop_is_off(client: httpx.Client) -> None:
    r = client.get("/readyz")  # the live fixture's ticker is off: tests drive time
    assert r.status_code == 503
    body = r.json()
    assert body["not_ready"] == ["ticker"] and body["field"] is None
    assert body["detail"] == "not ready: ticker: the duty loop is off in this process (tick_s is 0)"
    assert r.headers["retry-after"] == "5"


def test_readyz_says_when_the_duty_loop_stopped(db: str, clock: FixedClock) -> None:
    """The loop counts as running while its last pass is within five tick periods (at least 5 s)."""
    now = [100.0]
    service = Service(open_store(db), clock=clock)
    watch = Watch(Settings(db=db, tick_s=1.0), service, monotonic=lambda: now[0])
    assert "has not completed a pass yet" in readiness(watch)["ticker"]["detail"]
    watch.ticked()
    now[0] += 4.9
    assert readiness(watch)["ticker"]["ok"] is True
    now[0] += 1.2
    check = readiness(watch)["ticker"]
    assert check["ok"] is False and check["detail"] == "the duty loop last completed a pass 6.1 s ago (limit 5 s)"
    assert check["lease"] == "free"  # this service never ticked: nobody holds the duty lease
    service.store.close()


def test_readyz_is_not_ready_when_the_database_is_out_of_reach(ticking: LiveServer, db: str) -> None:
    wait_until(lambda: httpx.get(f"{ticking.url}/readyz").status_code == 200, "ready")
    folder = Path(db).parent
    moved = folder.with_name(folder.name + "-away")
    folder.rename(moved)  # as a lost mount would: the file is no longer where the service opens it
    try:
        r = httpx.get(f"{ticking.url}/readyz", timeout=10)
        assert r.status_code == 503
        body = r.json()
        assert body["not_ready"] == ["database", "migrations"]
        detail = body["checks"]["database"]["detail"]
        assert detail == "unreachable: OperationalError (the service's log says why)"
        assert str(folder) not in r.text  # where the database lives is for the log, not for anyone asking
        assert httpx.get(f"{ticking.url}/healthz").status_code == 200  # alive all the same
        assert not folder.exists()  # the probe created nothing
    finally:
        moved.rename(folder)
    wait_until(lambda: httpx.get(f"{ticking.url}/readyz").status_code == 200, "ready again")


def test_readyz_is_not_ready_when_migrations_are_behind(ticking: LiveServer, db: str) -> None:
    def ready() -> Any:  # ready in every check first (the ticker's first tick included), then break one
        r = httpx.get(f"{ticking.url}/readyz")
        return r.status_code == 200 and r.json()["checks"]["migrations"]

    watch_heads = wait_until(ready, "ready")
    with sqlite3.connect(db) as conn:
        (head,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    try:
        r = httpx.get(f"{ticking.url}/readyz", timeout=10)
        assert r.status_code == 503 and "migrations" in r.json()["not_ready"]  # the ticker may lag on a busy machine
        assert r.json()["checks"]["migrations"]["detail"] == f"at 0001, the code's head is {head}"
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (head,))
    assert watch_heads["detail"] == f"at head {head}"


def test_callers_at_once_share_one_database_read() -> None:
    """A flood of unauthenticated /readyz or /metrics requests is one probe in flight, its answer shared."""
    once = SingleFlight()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        return len(calls)

    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(once(slow)))
    first.start()
    started.wait(10)
    others = [threading.Thread(target=lambda: answers.append(once(slow))) for _ in range(5)]
    for t in others:
        t.start()
    wait_until(lambda: once.waiting == 5, "the others wait for the first's answer")
    release.set()
    for t in (first, *others):
        t.join(10)
    assert answers == [1] * 6 and len(calls) == 1
    assert once(lambda: 7) == 7  # the next round computes again
    with pytest.raises(ZeroDivisionError):
        once(lambda: 1 // 0)


def test_ready_metrics_and_not_ready_on_postgresql(
    pg_databases: PgDatabases, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL: ready, the figures move, and once the database is gone (dropped under the running
    service, its connections cut) not ready and ``deconflict_store_up 0``, while /healthz stays 200."""
    url = pg_databases.create()
    declared_db(url, clock)
    server = start_server(url, clock, tick_s=0.05)
    try:
        ready = wait_until(lambda: (r := httpx.get(f"{server.url}/readyz")).status_code == 200 and r, "ready")
        assert ready.json()["checks"]["migrations"]["ok"] is True
        tokens = server.tokens("IL", "TR")
        post_notice(server, tokens["IL"], "uav_patrol", *T4)
        post_notice(server, tokens["TR"], "uav_patrol", *T4)
        figures = metrics(server)
        assert value(figures, "deconflict_notices_total", mechanism=M) == 2
        assert value(figures, "deconflict_conflicts_open", mechanism=M, kind="separation") == 1
        pg_databases.drop(url)
        r = httpx.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 503 and r.json()["not_ready"][:2] == ["database", "migrations"]
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="deconflict.api.metrics"):
            assert value(metrics(server), "deconflict_store_up") == 0
        said = [r for r in caplog.records if r.name == "deconflict.api.metrics"]
        # one line, as every other part says an outage: a scrape every 15 s must not fill the log with tracebacks
        assert [r.exc_info for r in said] == [None]
        assert said[0].getMessage().startswith("metrics: the database could not be read (")
    finally:
        server.stop()
        server.service.store.close()
        pg_databases.drop(url)


# --- /metrics ------------------------------------------------------------------------------------


def test_metrics_move_with_a_notice_a_conflict_and_an_escalation(
    live: LiveServer, tokens: dict[str, str], clock: FixedClock
) -> None:
    before = metrics(live)
    assert value(before, "deconflict_store_up") == 1
    assert value(before, "deconflict_notices_total", mechanism=M) == 0
    assert value(before, "deconflict_line_state", mechanism=M, party="IL", state="up") == 1
    head = value(before, "deconflict_record_head_seq", mechanism=M)

    post_notice(live, tokens["IL"], "uav_patrol", *T4)
    raised = post_notice(live, tokens["TR"], "uav_patrol", *T4)["raised"]
    assert [c["kind"] for c in raised] == ["separation"]
    after = metrics(live)
    assert value(after, "deconflict_notices_total", mechanism=M) == 2
    assert value(after, "deconflict_activities", mechanism=M, state="notified") == 2
    assert value(after, "deconflict_conflicts_raised_total", mechanism=M, kind="separation") == 1
    assert value(after, "deconflict_conflicts_open", mechanism=M, kind="separation") == 1
    assert value(after, "deconflict_record_head_seq", mechanism=M) > head
    route = "/api/v1/mechanisms/{mechanism_id}/activities"
    assert value(after, "deconflict_http_request_duration_seconds_count", route=route, method="POST", status="2xx") == 2
    assert value(after, "deconflict_write_batch_size_count", batch="send_messages") == 0
    sent = httpx.post(
        f"{live.url}/api/v1/mechanisms/{M}/messages",
        headers={"Authorization": f"Bearer {tokens['TR']}"},
        json={"template": "holding", "params": {"ref": raised[0]["id"]}, "to": ["IL"]},
    )
    assert sent.status_code == 201, sent.text
    written = metrics(live)  # one plain message: a batch of one
    assert value(written, "deconflict_write_batch_size_count", batch="send_messages") == 1
    assert value(written, "deconflict_write_batch_size_sum", batch="send_messages") == 1
    text = httpx.get(f"{live.url}/metrics").text
    for secret in ("IL-0001", "TR-0001", raised[0]["id"] + '"', "37.6", "34.5", tokens["IL"]):
        assert secret not in text  # counts only: no ids, no places

    # past the acknowledgement deadline the alert is overdue at the first rung; a tick climbs it one rung
    rules = live.service.mechanism(M).rules
    ladder = [rung.name for rung in rules.ladder]
    clock.advance(seconds=rules.ack_deadline_s + 1)
    late = metrics(live)
    assert value(late, "deconflict_messages_overdue", mechanism=M, type="alert", rung=ladder[0]) >= 1
    assert value(late, "deconflict_messages_overdue", mechanism=M, type="alert", rung=ladder[1]) == 0
    assert value(late, "deconflict_duty_lease_held") == 0
    assert live.service.tick() > 0
    climbed = metrics(live)
    assert value(climbed, "deconflict_duty_lease_held") == 1
    alerts = value(late, "deconflict_messages_overdue", mechanism=M, type="alert", rung=ladder[0])
    assert value(climbed, "deconflict_messages_overdue", mechanism=M, type="alert", rung=ladder[0]) == 0
    assert value(climbed, "deconflict_messages_overdue", mechanism=M, type="alert", rung=ladder[1]) == alerts
    # the tick signed a checkpoint of the head; its age runs on the service's clock
    assert value(climbed, "deconflict_checkpoint_seq", mechanism=M) == value(
        climbed, "deconflict_record_head_seq", mechanism=M
    )
    assert value(climbed, "deconflict_checkpoint_age_seconds", mechanism=M) == 0
    clock.advance(seconds=90)
    assert value(metrics(live), "deconflict_checkpoint_age_seconds", mechanism=M) == 90


def test_metrics_name_unknown_paths_unmatched(client: httpx.Client) -> None:
    assert client.get("/no/such/IL-0001").status_code == 404
    text = client.get("/metrics").text
    assert 'route="unmatched"' in text and "IL-0001" not in text


def test_the_routes_are_named_before_the_first_request(db: str, clock: FixedClock) -> None:
    """The routes' templates (each request's metric label and log line), 0.1 s to read from the routes (0.3 s
    on a busy machine): built as the server starts, not on the event loop by the first request after a
    restart, every other request waiting meanwhile."""
    server = start_server(db, clock)
    try:
        assert server.app.state.routes._table is not None  # started, and no request made yet
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert 'route="/healthz"' in httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()


def test_the_templates_are_the_paths_of_the_openapi_document(live: LiveServer) -> None:
    """Read from the routes as FastAPI reads them to write the document, without writing it: the same paths
    in the same order (a FastAPI that read its routes otherwise would change the requests' labels)."""
    app = live.app
    paths = documented_paths(app)
    assert paths == list(app.openapi()["paths"])
    assert {"/api/v1/me", "/api/v1/mechanisms/{mechanism_id}/activities/{activity_id}"} <= set(paths)
    labels = {label for _, label in app.state.routes.table()}
    assert set(paths) <= labels and {"/healthz", "/metrics", "/web/{path}"} <= labels


def test_the_openapi_document_is_built_off_the_event_loop(live: LiveServer) -> None:
    """Not at start-up (0.2-0.5 s of CPU every server would spend, most never asked for it), and not on the event
    loop by the first request for it either, every other request waiting meanwhile: in a worker thread."""
    app = live.app
    assert app.openapi_schema is None
    where: list[str] = []
    build = app.openapi

    def watched() -> dict[str, Any]:
        try:
            asyncio.get_running_loop()
            where.append("event loop")
        except RuntimeError:
            where.append("worker thread")
        return build()

    app.openapi = watched
    r = httpx.get(f"{live.url}/openapi.json", timeout=30)
    assert r.status_code == 200 and r.json() == app.openapi_schema
    assert where[0] == "worker thread", where
    assert "/api/v1/mechanisms/{mechanism_id}/activities" in r.json()["paths"]


# --- logs ----------------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The service's log lines, as ``serve --log-format json`` writes them, while the test runs."""
    out = io.StringIO()
    level = logging.getLogger("deconflict").level
    handler = logs.configure("json", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)
    logging.getLogger("deconflict").setLevel(level)


def test_request_logs_are_json_with_the_member_and_never_the_token(
    live: LiveServer, tokens: dict[str, str], json_log: io.StringIO
) -> None:
    title = "Sortie over T4, body text"
    post_notice(live, tokens["IL"], "uav_patrol", *T4, title=title)
    with httpx.Client(base_url=live.url, timeout=10) as c:
        assert c.get(f"{A}/activities", headers=auth(tokens["TR"])).status_code == 200
        assert c.get(f"{A}/activities", headers=auth("dcf_not-a-token")).status_code == 401
        assert c.get(f"{A}/conflicts?status=open", headers=auth(tokens["AZ"])).status_code == 200
    wait_until(lambda: json_log.getvalue().count("\n") >= 4, "four request lines")
    text = json_log.getvalue()
    for token in tokens.values():
        assert token not in text
    assert "dcf_" not in text and "Bearer" not in text and "authorization" not in text.lower()
    assert title not in text and "status=open" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "deconflict.request"]
    assert len(requests) == 4
    for line in requests:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert line["level"] == "INFO" and isinstance(line["duration_ms"], float)
    assert [(r["method"], r["route"], r["status"], r.get("member")) for r in requests] == [
        ("POST", "/api/v1/mechanisms/{mechanism_id}/activities", 201, "IL"),
        ("GET", "/api/v1/mechanisms/{mechanism_id}/activities", 200, "TR"),
        ("GET", "/api/v1/mechanisms/{mechanism_id}/activities", 401, None),
        ("GET", "/api/v1/mechanisms/{mechanism_id}/conflicts", 200, "AZ"),
    ]
    assert requests[0]["mechanism"] == M


def test_text_logs_say_a_request_on_one_line() -> None:
    out = io.StringIO()
    level = logging.getLogger("deconflict").level
    handler = logs.configure("text", stream=out)
    try:
        extra = {"method": "GET", "route": "/healthz", "status": 200, "duration_ms": 1.5, "member": "IL"}
        logs.request_logger.info("%s %s %d", "GET", "/healthz", 200, extra={**extra, "token": "dcf_secret"})
        handler.flush()  # written by the handler's own thread: flush waits for it
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("deconflict").setLevel(level)
    line = out.getvalue()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO deconflict.request: GET /healthz 200 duration_ms=1.5 member=IL\n",
        line,
    )
    with pytest.raises(ValueError, match="log format: 'xml' is not one of text, json"):
        logs.configure("xml")


def test_serve_log_format_json_writes_one_object_per_line(db: str, clock: FixedClock, tmp_path: Path) -> None:
    """``deconflict serve --log-format json`` as the systemd unit runs it: every stderr line is JSON."""
    service = Service(open_store(db), clock=clock)
    token = service.issue_token(mechanism_id=M, member_id="IL")
    service.store.close()
    port = free_port()
    err = tmp_path / "stderr"
    exe = Path(sys.executable).with_name("deconflict")
    cmd = [str(exe), "serve", "--db", db, "--port", str(port), "--log-format", "json"]
    with err.open("w") as stderr:
        proc = subprocess.Popen(cmd, stderr=stderr, stdout=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, "serve answers", deadline_s=60)
            assert httpx.get(f"{url}{A}/activities", headers=auth(token), timeout=10).status_code == 200
            wait_until(lambda: '"member": "IL"' in err.read_text(), "the request is logged")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = err.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["logger"] == "deconflict.serve" and lines[0]["message"].startswith("serving ")
    assert {"time", "level", "logger", "message"} <= set(lines[-1])
    assert token not in text


# --- deploy/ ---------------------------------------------------------------------------------------


def _unit() -> dict[str, dict[str, str]]:
    """deploy/deconflict.service as sections of keys (each key once in this unit)."""
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for raw in (DEPLOY / "deconflict.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
            continue
        key, sep, val = line.partition("=")
        assert sep and key.strip() not in sections[current], f"bad or repeated line: {raw!r}"
        sections[current][key.strip()] = val.strip()
    return sections


SYSTEMD_KEYS = {
    "Unit": {"Description", "Documentation", "Wants", "Requires", "After", "Before", "PartOf", "BindsTo"},
    "Service": {
        "Type", "User", "Group", "EnvironmentFile", "Environment", "WorkingDirectory", "StateDirectory",
        "StateDirectoryMode", "ExecStart", "ExecReload", "KillSignal", "TimeoutStopSec", "Restart", "RestartSec",
        "LimitNOFILE", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
        "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
        "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "LockPersonality",
        "SystemCallArchitectures", "UMask", "ReadWritePaths",
    },
    "Install": {"WantedBy", "RequiredBy", "Alias"},
}  # fmt: skip
"""systemd.unit(5), systemd.service(5), systemd.exec(5) and systemd.kill(5) directives this unit may use:
where systemd-analyze is missing, a misspelt key is still caught."""


def _example_env() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (DEPLOY / "deconflict.env").read_text().splitlines()]
    return {k: v for k, *rest in pairs if rest and not k.startswith("#") for v in rest}


def test_the_systemd_unit_runs_serve_with_the_example_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = _unit()
    assert set(unit) == {"Unit", "Service", "Install"}
    for section, keys in unit.items():
        assert set(keys) <= SYSTEMD_KEYS[section], f"[{section}]: unknown keys {set(keys) - SYSTEMD_KEYS[section]}"
    service = unit["Service"]
    assert service["EnvironmentFile"] == "/etc/deconflict/deconflict.env"
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/deconflict") and argv[1] == "serve"
    env = _example_env()
    used = set(re.findall(r"\$\{(\w+)\}", service["ExecStart"]))
    assert used <= set(env), f"ExecStart uses {used - set(env)}, which the example does not set"
    args = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a) for a in argv[2:]]
    # the database (its URL may hold a password) from the environment, not on the command line ps shows
    assert "DECONFLICT_DB" not in used and "--db" not in argv
    monkeypatch.setenv("DECONFLICT_DB", env["DECONFLICT_DB"])
    serve = get_command(cli_app).commands["serve"]  # type: ignore[attr-defined]
    ctx = serve.make_context("serve", args)  # parses and checks every option as `serve` would
    assert ctx.params["log_format"] == "json" and ctx.params["db"] == env["DECONFLICT_DB"]
    assert ctx.params["port"] == int(env["DECONFLICT_PORT"])
    assert ctx.params["workers"] == int(env["DECONFLICT_WORKERS"]) == 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` with the command pointed at this checkout's (the unit's own path,
    /opt/deconflict, exists only once installed); any warning about the unit fails."""
    exe = Path(sys.executable).with_name("deconflict")
    text = (DEPLOY / "deconflict.service").read_text().replace("/opt/deconflict/.venv/bin/deconflict", str(exe))
    (tmp_path / "deconflict.service").write_text(text)
    out = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "deconflict.service")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    said = [line for line in (out.stdout + out.stderr).splitlines() if "deconflict.service" in line]
    assert out.returncode == 0 and said == [], out.stdout + out.stderr


TRACED = """
import json, sys, threading, time
import httpx, uvicorn
from opentelemetry import _logs, metrics, trace

asked = []

class Tracing(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        asked.append("tracer")
        return trace.NoOpTracer()

class Measuring(metrics.MeterProvider):
    def get_meter(self, *args, **kwargs):
        asked.append("meter")
        return metrics.NoOpMeter("x")

class Logging(_logs.LoggerProvider):
    def get_logger(self, *args, **kwargs):
        asked.append("logger")
        return _logs.NoOpLogger("x")

# as a deployment's OpenTelemetry set-up would, before the app: each kind of provider
trace.set_tracer_provider(Tracing())
metrics.set_meter_provider(Measuring())
_logs.set_logger_provider(Logging())
from deconflict.api import create_app
from deconflict.api.settings import Settings

db, token, port, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
server = uvicorn.Server(uvicorn.Config(create_app(Settings(db=db)), host="127.0.0.1", port=port, log_level="error"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.02)
base = f"http://127.0.0.1:{port}/api/v1/mechanisms/tr-il-syria"
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
refused = body.replace("uav_patrol", "no_such_kind")
statuses = [httpx.post(f"{base}/activities", content=text, headers=headers).status_code for text in (body, refused)]
statuses.append(httpx.get(f"{base}/activities", headers=headers).status_code)
server.should_exit = True
print(json.dumps({"statuses": statuses, "asked": asked}))
"""


def test_a_deployments_opentelemetry_is_handed_nothing_of_a_request(tmp_path: Path) -> None:
    """FastAPI's own telemetry, on whenever a process has an OpenTelemetry provider, would give a collector
    each request's body and a refused request's input values (where and when a party flies): the service
    keeps it off, whatever the environment sets up (its own metrics and log hold no such thing)."""
    db = str(tmp_path / "traced.db")
    service = declared_service(db)
    token = service.issue_token(mechanism_id=M, member_id="TR")
    service.store.close()
    body = json.dumps({"kind": "uav_patrol", "volumes": [vol(start=datetime.now(UTC) + timedelta(hours=2))]})
    env = {**os.environ, "FASTAPI_OTEL_AUTO_CONFIGURE": "true"}
    out = subprocess.run(
        [sys.executable, "-c", TRACED, db, token, str(free_port()), body],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    said = json.loads(out.stdout.strip().splitlines()[-1])
    assert said["statuses"] == [201, 422, 200]
    assert said["asked"] == []
