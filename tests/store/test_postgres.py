"""PostgreSQL as a store: the migrations build exactly the models' schema there too, a driverless URL means
psycopg 3, and appends to one record from two processes are serialised in the database (no fork, no lost
write, the chain verifies), on PostgreSQL and on SQLite alike.

These need the tests' PostgreSQL server (``DECONFLICT_TEST_PG``, see ``scripts/pg-test-cluster``); without
it they are skipped, except in CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, make_url, select, text
from sqlalchemy.exc import OperationalError
from support.builders import M, declared_service

from deconflict.service import Service
from deconflict.store import alembic_config, ledger, open_store
from deconflict.store.schema import Base, LedgerEntry, MechanismRow, MessageRow

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated PostgreSQL database (dropped afterwards)."""
    databases = request.getfixturevalue("pg_databases")
    url = databases.create()
    request.addfinalizer(lambda: databases.drop(url))
    return str(url)


def test_migrations_build_the_models_schema_on_postgresql(pg_url: str) -> None:
    store = open_store(pg_url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head
        kinds = conn.execute(
            text("select data_type from information_schema.columns where table_name = 'ledger' and column_name = :c"),
            [{"c": "seq"}],
        ).scalar()
        assert kinds == "bigint"
    store.close()


def test_a_driverless_postgresql_url_opens_with_psycopg_and_times_stay_utc(pg_url: str) -> None:
    plain = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    assert plain.startswith("postgresql://")
    store = open_store(plain)
    assert store.engine.dialect.driver == "psycopg"
    plus3 = datetime(2025, 4, 9, 11, 0, tzinfo=timezone(timedelta(hours=3)))
    with store.transaction() as s:
        s.add(MechanismRow(id="m", name="m", doc={"a": [1, "b"]}, declared_at=plus3))
    with store.read() as s:
        row = s.get(MechanismRow, "m")
        assert row is not None and row.declared_at == datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
        assert row.doc == {"a": [1, "b"]}
    store.close()


def test_a_sequence_number_beyond_32_bits_is_a_plain_comparison(pg_url: str) -> None:
    """Callers may ask for entries after any number up to 2**62 (PostgreSQL's INTEGER would overflow)."""
    service = declared_service(pg_url)
    assert service.entries_after(M, 2**62, limit=10) == []
    service.store.close()


WORKER = r"""
import json, sys
from deconflict.service import Service
from deconflict.service.context import StaleRecord
from deconflict.store import open_store

url, actor, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
service = Service(open_store(url, migrate=False))
service.mechanism(sys.argv[4])  # the picture is built before the start, so both start writing at once
print("ready", flush=True)
sys.stdin.readline()
for n in range(count):
    text = f"{actor} message {n}"
    try:
        sent = service.send_message(mechanism_id=sys.argv[4], actor=actor, text=text)
    except StaleRecord:  # the other process got there first, twice: refused, nothing written
        print(json.dumps({"text": text, "refused": True}), flush=True)
        continue
    print(json.dumps({"text": text, "id": sent["id"]}), flush=True)
service.store.close()
"""


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_two_processes_appending_to_one_record_neither_fork_nor_lose_a_write(store_url: str, store_kind: str) -> None:
    service = declared_service(store_url)
    start = int(service.entries_after(M, 0, limit=100_000)[-1]["seq"])
    service.store.close()
    count = 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store_url, actor, str(count), M],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for actor in ("TR", "IL")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        outcomes += [json.loads(line) for line in out.splitlines()]
    accepted = {o["text"]: o["id"] for o in outcomes if "id" in o}
    assert len(outcomes) == 2 * count
    assert len(accepted) >= count, f"most writes should get through: {len(accepted)} of {2 * count}"

    service = Service(open_store(store_url))
    with service.store.read() as s:
        stored = {
            row.doc.get("text"): row.id for row in s.scalars(select(MessageRow).where(MessageRow.mechanism_id == M))
        }
        seqs = list(s.scalars(select(LedgerEntry.seq).where(LedgerEntry.mechanism_id == M).order_by(LedgerEntry.seq)))
        entries = s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.mechanism_id == M))
    for text_, message_id in accepted.items():  # no accepted write lost, each under the id it was given
        assert stored.get(text_) == message_id, text_
    refused = {o["text"] for o in outcomes if o.get("refused")}
    print(f"{store_kind}: {len(accepted)} of {2 * count} appends accepted, {len(refused)} refused after a retry")
    assert not refused & set(stored), "a refused write was stored"
    assert seqs == list(range(1, entries + 1)) and entries == start + len(accepted)  # one chain, no gap
    assert service.verify(M).ok
    service.store.close()


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_a_locked_record_holds_other_writers_until_the_transaction_ends(store_url: str, store_kind: str) -> None:
    """lock_record is a lock in the database: a second connection cannot take it while the first holds it
    (it waits; here it is told to wait only briefly), and can as soon as the first commits."""
    first, second = open_store(store_url), open_store(store_url, migrate=False)

    def try_lock(mechanism: str) -> bool:
        with second.transaction() as s:
            if store_kind == "postgresql":
                s.execute(text("SET LOCAL lock_timeout = '150ms'"))
            else:
                s.connection().exec_driver_sql("PRAGMA busy_timeout = 150")
            try:
                ledger.lock_record(s, mechanism)
            except OperationalError:
                return False
            finally:
                if store_kind == "sqlite":
                    s.connection().exec_driver_sql("PRAGMA busy_timeout = 10000")
            return True

    with first.transaction() as s:
        ledger.lock_record(s, M)
        ledger.lock_record(s, M)  # a second call in the same transaction does nothing
        assert not try_lock(M)
        if store_kind == "postgresql":  # one advisory lock per record; SQLite's write lock is the whole file's
            assert try_lock("another-mechanism")
    assert try_lock(M)
    first.close()
    second.close()
