"""The fixtures the tests share: a pinned clock, a database (an SQLite file, or also a PostgreSQL database
for the modules in ``BOTH_STORES``) with the Syria mechanism declared, a service on it, the same served
over real HTTP on loopback, and pages in a real browser. What they are built from is in ``tests/support/``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import fresh_schema, shared_tls
from support.builders import T0, declared_db
from support.live import LiveServer, start_server
from support.pg import PG_ENV, PgDatabases, pg_url_from_env

from deconflict.clock import FixedClock
from deconflict.record import signing
from deconflict.service import Service
from deconflict.store import open_store

fresh_schema.install()
shared_tls.install()


@pytest.fixture
def clock() -> FixedClock:
    """The service's clock, pinned at ``T0`` (06:00Z on 9 April 2025); tests move it on by hand."""
    return FixedClock(T0)


@pytest.fixture
def party_keys() -> dict[str, signing.KeyPair]:
    """The parties that hold their own signing key (party to its key pair); the service holds the others'.
    A module whose parties sign for themselves overrides this fixture."""
    return {}


TESTS = Path(__file__).parent
BOTH_STORES = frozenset(
    TESTS / module
    for module in (
        "service/test_service.py",
        "service/test_hotline_service.py",
        "service/test_hotline_batch.py",
        "service/test_notice_batch.py",
        "service/test_duty_loop.py",
        "service/test_signed_record.py",
        "api/test_api.py",
        "api/test_durability.py",
        "api/test_processes.py",
        "store/test_gate.py",
        "store/test_read_only_store.py",
        "service/test_follow.py",
        "service/test_replay_snapshots.py",
        "service/test_live_reads.py",
        "service/test_picture_reach.py",
        "service/test_rules_warm.py",
    )
)
"""The modules whose tests on a database run on SQLite and again on PostgreSQL (the record, notices,
conflicts, hotline and duty loop through the service, the basic API, the SIGKILL durability test); the
rest run on SQLite only, to keep the suite's time in check."""


SQLITE_ONLY = frozenset(
    {
        "test_every_role_against_every_route",  # the role table: decided above the store (31 servers)
        "test_schemathesis_finds_no_server_error",  # a minute of fuzzing the transport
        "test_unanswered_alert_climbs_the_whole_ladder_in_a_simulated_day",  # 100 s; duty loop tests escalate on both
        # which CPU each worker takes is settled among the workers (an abstract socket name), not in the store:
        "test_workers_pinned_take_one_cpu_each_and_a_replacement_takes_the_one_left",  # 23-29 s on PostgreSQL
        "test_workers_that_cannot_take_turns_choosing_still_pin_and_serve",  # 19 s, 10 of them waited on purpose
    }
)
"""Tests of ``BOTH_STORES`` modules that run on SQLite only: long, and about what the store does not decide."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each database test of a ``BOTH_STORES`` module once per store (ids ``sqlite``, ``postgresql``)."""
    if (
        "store_kind" in metafunc.fixturenames
        and metafunc.definition.path in BOTH_STORES
        and metafunc.function.__name__ not in SQLITE_ONLY
    ):
        metafunc.parametrize("store_kind", ["sqlite", "postgresql"])


@pytest.fixture
def store_kind() -> str:
    """Which store a test's database is on: SQLite, unless its module is in ``BOTH_STORES``."""
    return "sqlite"


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """The tests' PostgreSQL server (``DECONFLICT_TEST_PG``, see ``scripts/pg-test-cluster``). Without it
    the PostgreSQL tests are skipped, except in CI, where they fail: CI must run them (``.ci/run``)."""
    url = pg_url_from_env()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set in CI: .ci/run starts the tests' PostgreSQL and exports it")
        pytest.skip(f"{PG_ENV} is not set: run `export {PG_ENV}=$(scripts/pg-test-cluster start)` to include them")
    try:
        databases = PgDatabases(url)
    except Exception as e:  # unreachable server, refused login: fail (never skip) when it was asked for
        pytest.fail(f"{PG_ENV} is set but its server cannot be used: {type(e).__name__}: {e}")
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to the newest revision by ``open_store``, once per test process: the tests' SQLite
    stores start as copies of it, as the PostgreSQL ones start as copies of a migrated template database
    (running the migrations costs about 0.1 s a store; their own tests open new files)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    store = open_store(str(path))
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the file copied
    store.close()
    return path


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty store for the test, migrated: an SQLite file (a copy of ``sqlite_template``), or the URL of a
    fresh PostgreSQL database (dropped afterwards)."""
    if store_kind == "sqlite":
        path = tmp_path / "deconflict.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield str(path)
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def db(store_url: str, clock: FixedClock, party_keys: dict[str, signing.KeyPair]) -> str:
    """A store (SQLite file or PostgreSQL URL, see ``store_url``) with the Syria mechanism declared, closed
    again for a service or server to open."""
    return declared_db(store_url, clock, keys=party_keys)


@pytest.fixture
def svc(db: str, clock: FixedClock) -> Service:
    """A service on ``db`` with the pinned clock."""
    return Service(open_store(db), clock=clock)


@pytest.fixture
def live(db: str, clock: FixedClock) -> Iterator[LiveServer]:
    """The app served on loopback over ``db``, its hotline ticker off (tests drive time)."""
    server = start_server(db, clock)
    yield server
    server.stop()


@pytest.fixture
def tokens(live: LiveServer) -> dict[str, str]:
    """A bearer token for each Syria member."""
    return live.tokens()


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the live server."""
    with httpx.Client(base_url=live.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module; its tests are skipped where ``/usr/bin/chromium`` is missing,
    outside CI (in CI, ``.ci/run`` installs it)."""
    from support.browser import CHROMIUM, chromium

    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests"
        )
    with chromium() as b:
        yield b


@pytest.fixture
def page_timezone() -> str | None:
    """The time zone the officers' browsers are in (the machine's if None); a module overrides it."""
    return None


@pytest.fixture
def officer(
    browser: Any, live: LiveServer, tokens: dict[str, str], page_timezone: str | None
) -> Iterator[Callable[[str], Any]]:
    """Opens a member's page on the live server, signed in; afterwards, each page opened must have asked
    nothing outside the service and thrown no error."""
    from support.browser import Officer

    opened: list[Officer] = []

    def open_as(member: str, **options: Any) -> Officer:
        opened.append(Officer(browser, live, tokens[member], timezone_id=page_timezone, **options))
        return opened[-1]

    yield open_as
    for page in opened:
        assert page.outside == [], f"the page asked for something outside the service: {page.outside}"
        assert page.errors == [], page.errors
        assert page.csp == [], f"the page broke its Content-Security-Policy: {page.csp}"
        page.close()


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """The scripted hour of ``support.day.build_day``: its SQLite file (closed) and its record."""
    from support.day import build_day, record_of

    db = str(tmp_path_factory.mktemp("day") / "day.db")
    svc = build_day(db)
    entries = record_of(svc)
    svc.store.close()
    return db, entries
