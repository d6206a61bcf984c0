"""The statements the writes run on SQLite's own cursor (store.direct) read what SQLAlchemy's execution reads
and store the very values it stores: every row of every table of a scripted hour of the mechanism is inserted
both ways into two empty databases, which then hold the same bytes (value and SQLite type, column by column);
the writes' queries give the same rows both ways; a driver error is raised as SQLAlchemy raises it; and what is
not a plain statement goes to SQLAlchemy. Real SQLite."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from support.builders import T0, M
from support.day import build_day

from deconflict.clock import FixedClock
from deconflict.record import authority, chain
from deconflict.service import Service, rules, signers, writer
from deconflict.store import direct, ledger, open_store
from deconflict.store.schema import Base, LedgerEntry, MechanismRow


def raw(path: Path, table: str) -> list[tuple[Any, ...]]:
    """A table's rows as SQLite holds them: each value with its storage class."""
    con = sqlite3.connect(path)
    try:
        columns = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
        picked = ", ".join(f"{c}, typeof({c})" for c in columns)
        return sorted(con.execute(f"SELECT {picked} FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("day") / "day.db"
    build_day(str(path)).store.close()
    return path


def test_every_row_is_stored_as_sqlalchemy_stores_it(day: Path, tmp_path: Path) -> None:
    source = open_store(str(day))
    ways = {"direct": tmp_path / "direct.db", "sqlalchemy": tmp_path / "sqlalchemy.db"}
    stores = {name: open_store(str(path)) for name, path in ways.items()}
    filled = []
    with source.read() as s:
        for table in Base.metadata.sorted_tables:
            rows = [dict(r._mapping) for r in s.execute(select(table))]
            if not rows:
                continue
            filled.append(table.name)
            stmt = insert(table)
            for name, store in stores.items():
                with store.transaction() as t:
                    conn = ledger.connection_of(t)
                    conn.execute(text(f"DELETE FROM {table.name}"))  # what the migrations seeded, if anything
                    for row in rows:
                        if name == "direct":
                            direct.run(conn, stmt, row)
                        else:
                            conn.execute(stmt, row)
    for store in (source, *stores.values()):
        store.close()
    assert {"ledger", "messages", "activities", "conflicts", "members"} <= set(filled)
    for table in filled:
        assert raw(ways["direct"], table) == raw(ways["sqlalchemy"], table), table
        assert raw(ways["direct"], table) == raw(day, table), table  # and as the writes stored them


def test_the_writes_queries_read_what_sqlalchemy_reads(day: Path) -> None:
    store = open_store(str(day))
    try:
        with store.transaction() as s:
            conn = ledger.connection_of(s)
            owners = [r[0] for r in conn.execute(text("SELECT owner FROM custody_keys"))]
            asked: list[tuple[Any, dict[str, Any]]] = [
                (ledger._HEAD, {"mechanism": M}),
                (ledger._HEAD, {"mechanism": "nothing"}),
                (writer._NEWEST_CHECKPOINT_AT, {"mechanism": M}),
                (writer._NEWEST_CHECKPOINT_AT, {"mechanism": "nothing"}),
                *((writer._ENTRY_AT, {"mechanism": M, "seq": seq}) for seq in (0, 1, 7, 29, 30)),
                *((signers._CUSTODY, {"owner": owner}) for owner in [*owners, "nobody"]),
            ]
            assert owners
            for stmt, params in asked:
                assert direct.rows(conn, stmt, params) == [tuple(r) for r in conn.execute(stmt, params)]
            assert [type(v) for v in direct.rows(conn, writer._ENTRY_AT, {"mechanism": M, "seq": 1})[0]] == [
                type(conn.execute(writer._ENTRY_AT, {"mechanism": M, "seq": 1}).scalar())
            ]
    finally:
        store.close()


def test_entries_read_as_plain_rows_are_the_documents_the_orm_gives(day: Path) -> None:
    """``ledger.docs_after`` (the event streams' and the record pages' read) gives, page for page, the entry
    documents built from SQLAlchemy's ORM objects: the same keys, values and types."""
    store = open_store(str(day))
    try:
        with store.read() as s:
            whole = [ledger.entry_doc(r) for r in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
            assert len(whole) > 20
            for after, limit in [(0, 1), (0, 7), (5, 10), (0, 100_000), (len(whole) - 1, 50), (len(whole), 5)]:
                page = ledger.docs_after(s, M, after, limit)
                assert page == whole[after : after + limit]
                assert [[type(v) for v in d.values()] for d in page] == [
                    [type(v) for v in d.values()] for d in whole[after : after + limit]
                ]
            assert ledger.docs_after(s, "nothing", 0, 10) == []
    finally:
        store.close()


def test_payloads_read_as_plain_rows_rebuild_the_authority_rules_state_the_documents_give(
    day: Path, tmp_path: Path
) -> None:
    """``ledger.payloads_between`` (what the writer's authority rules are rebuilt from after a restart or a
    rollback) gives each entry's number, type and payload as its document has them, page for page, with
    an integer beyond 64 bits read as an integer (orjson would make it a float); and the rules' state rebuilt
    from it is the state the entry documents build."""
    copy = tmp_path / "day.db"
    copy.write_bytes(day.read_bytes())
    store = open_store(str(copy))
    try:
        with store.transaction() as s:  # a payload orjson refuses, as the record's text may hold it
            head = ledger.read_head(s, M)
            row = chain.draft(mechanism=M, actor="system", type="note", payload={"n": 2**70 + 1}, at=T0, after=head)
            s.execute(insert(LedgerEntry), [{**row, "key_id": None, "signature": None}])
        with store.read() as s:
            whole = [ledger.entry_doc(r) for r in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
            wanted = [(d["seq"], d["type"], d["payload"]) for d in whole]
            for after, upto, page in [(0, len(whole), 7), (0, len(whole), 100_000), (5, 12, 3), (len(whole), 0, 5)]:
                got = list(ledger.payloads_between(s, M, after, upto, page=page))
                assert got == wanted[after:upto]
            assert got == [] and list(ledger.payloads_between(s, "nothing", 0, 10)) == []
            assert wanted[-1][2] == {"n": 2**70 + 1}  # not a float: orjson would make it one
            kept = chain.Head(whole[-2]["seq"], whole[-2]["hash"])  # the day's record, before that entry
            by_docs = authority.AuthorityState()
            for d in whole[:-1]:
                authority.apply(d, by_docs)
            ctx = Service(store, clock=FixedClock(T0))._ctx  # nothing kept yet: rebuilt from entry 1
            assert rules.state_after(ctx, s, M, kept) == by_docs
            assert len(by_docs.messages) > 5 and by_docs.conflicts and by_docs.activities
    finally:
        store.close()


def an_entry_stored(store: Any) -> dict[str, Any]:
    """A ledger row as stored (inserting it again is refused by the ledger's key)."""
    with store.read() as s:
        return dict(s.execute(select(Base.metadata.tables["ledger"]).limit(1)).one()._mapping)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(day: Path) -> None:
    store = open_store(str(day))
    try:
        row = an_entry_stored(store)
        with pytest.raises(IntegrityError) as ours, store.transaction() as t:
            direct.run(ledger.connection_of(t), ledger._INSERT, row)
        with pytest.raises(IntegrityError) as theirs, store.transaction() as t:
            ledger.connection_of(t).execute(ledger._INSERT, row)
        assert str(ours.value) == str(theirs.value)
        assert isinstance(ours.value.orig, sqlite3.IntegrityError)
    finally:
        store.close()


def test_what_is_not_plain_goes_to_sqlalchemy(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "x.db"))
    counter = iter(range(100, 200))
    table = Table(
        "scratch",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("made", Integer, default=lambda: next(counter)),  # a Python-side default: SQLAlchemy computes it
        Column("name", String),
    )
    try:
        with store.transaction() as s:
            conn = ledger.connection_of(s)
            table.create(conn)
            direct.run(conn, insert(table), {"id": 1, "name": "a"})
            assert direct.rows(conn, select(table.c.made, table.c.name), {}) == [(100, "a")]
            direct.run(conn, insert(table), {"id": 2, "nonesuch": 1})  # a value it does not take: as SQLAlchemy does
            conn.execute(insert(table), {"id": 3, "nonesuch": 1})
            assert direct.rows(conn, select(table.c.made, table.c.name).where(table.c.id > 1), {}) == [
                (101, None),
                (102, None),
            ]
            picked = select(table.c.name).where(table.c.id.in_([1, 2]))  # an expanding IN
            assert direct.rows(conn, picked, {}) == [("a",), (None,)]
    finally:
        store.close()


def test_statements_built_per_call_are_not_kept_for_ever(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "x.db"))
    try:
        with store.transaction() as s:
            conn = ledger.connection_of(s)
            for n in range(direct.MOST_FORMS + 50):
                assert direct.rows(conn, select(text(str(n))), {}) == [(n,)]
            assert len(direct._FORMS) <= direct.MOST_FORMS
    finally:
        store.close()


def test_inserts_gathered_wait_for_a_read_or_the_flush_and_keep_their_order(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "x.db"))
    meta = MetaData()
    first = Table("first", meta, Column("id", Integer, primary_key=True), Column("name", String))
    second = Table("second", meta, Column("id", Integer, primary_key=True), Column("name", String))

    def counted(conn: Any, table: Table) -> int:  # past direct: sees only what was executed
        return int(conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one())

    try:
        with store.transaction() as s:
            conn = ledger.connection_of(s)
            meta.create_all(conn)
            with direct.gathered(conn) as gathering:
                assert gathering is not None
                for n, table in enumerate((first, first, second, first)):
                    direct.run(conn, insert(table), {"id": n, "name": f"row {n}"})
                assert (counted(conn, first), counted(conn, second)) == (0, 0)  # waiting
                assert [len(rows) for _, rows in gathering.pending.values()] == [3, 1]  # a statement's rows in one call
                assert direct.rows(conn, select(first.c.id).order_by(first.c.id), {}) == [(0,), (1,), (3,)]
                assert gathering.pending == {}
                direct.run(conn, insert(second), {"id": 9, "name": "later"})
                direct.run(conn, second.update().where(second.c.id == 9).values(name="changed"), {})
                assert direct.rows(conn, select(second.c.name).where(second.c.id == 9), {}) == [("changed",)]
                direct.run(conn, insert(first), {"id": 10, "name": "last"})
                gathering.flush()
                assert counted(conn, first) == 4
            direct.run(conn, insert(first), {"id": 11, "name": "not gathered"})  # after the block: at once
            assert counted(conn, first) == 5
    finally:
        store.close()


def test_a_gathered_insert_the_database_refuses_is_raised_at_the_flush_as_sqlalchemy_raises_it(day: Path) -> None:
    store = open_store(str(day))
    try:
        row = an_entry_stored(store)
        with pytest.raises(IntegrityError) as refused, store.transaction() as t:
            conn = ledger.connection_of(t)
            with direct.gathered(conn) as gathering:
                assert gathering is not None
                direct.run(conn, ledger._INSERT, row)  # the same entry again: refused, but not yet
                gathering.flush()
        assert isinstance(refused.value.orig, sqlite3.IntegrityError)
        assert "ledger" in str(refused.value)
    finally:
        store.close()


def test_a_sessions_connection_is_kept_for_its_transaction_and_not_after(tmp_path: Path) -> None:
    """connection_of keeps the connection of the session's transaction; once that ends (a commit, a rollback),
    the next call gets the connection of the next transaction, never the one given back to the pool."""
    store = open_store(str(tmp_path / "c.db"))
    with store.read() as s:
        first = ledger.connection_of(s)
        assert ledger.connection_of(s) is first
        with s.begin_nested():  # a savepoint runs on the same connection
            assert ledger.connection_of(s) is first
        s.commit()
        second = ledger.connection_of(s)
        assert first.closed and not second.closed
        assert second.execute(text("SELECT 1")).scalar() == 1
        s.rollback()
        third = ledger.connection_of(s)
        assert second.closed and not third.closed
        assert third.execute(text("SELECT 2")).scalar() == 2
    store.close()


def test_after_a_failed_flush_the_sessions_connection_is_refused_as_the_session_refuses_it(tmp_path: Path) -> None:
    """A flush that fails ends the transaction (the same object, no longer active): connection_of must not hand
    out its connection, where a write would begin a transaction SQLAlchemy knows nothing of."""
    db = tmp_path / "f.db"
    store = open_store(str(db))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction() as s:
        s.add(MechanismRow(id="m", name="m", doc={}, declared_at=at))
    with store.read() as s:
        ledger.connection_of(s)  # kept for this transaction
        s.add(MechanismRow(id="m", name="twice", doc={}, declared_at=at))
        with pytest.raises(IntegrityError):
            s.flush()
        with pytest.raises(PendingRollbackError):
            ledger.connection_of(s)
        s.rollback()
        assert ledger.connection_of(s).execute(text("SELECT count(*) FROM mechanisms")).scalar() == 1
    store.close()


def test_an_instant_is_written_as_sqlalchemys_datetime_writes_it_from_any_zone() -> None:
    """The store's instants go to SQLite through one fused step (``direct._utc_sqlite_text``), not SQLAlchemy's
    two closures: the same text to the byte from any zone, a naive datetime refused alike."""
    from datetime import timedelta, timezone
    from random import Random
    from zoneinfo import ZoneInfo

    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    compiled: Any = insert(LedgerEntry.__table__).compile(dialect=dialect, column_keys=["mechanism_id", "seq", "at"])
    theirs = compiled._bind_processors["at"]
    ours = direct._fused(LedgerEntry.__table__.c.at.type, dialect, theirs)
    assert ours is not None
    zones = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30)), ZoneInfo("Asia/Jerusalem")]
    rng = Random(7)
    for _ in range(5_000):
        when = datetime(
            rng.randint(2, 9997), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59), rng.choice([0, rng.randint(0, 999_999)]), tzinfo=rng.choice(zones),
        )  # fmt: skip
        assert ours(when) == theirs(when), when
    assert ours(None) is None and theirs(None) is None
    for refused in (ours, theirs):
        with pytest.raises(ValueError, match="naive datetime"):
            refused(datetime(2026, 12, 7, 12, 0))  # noqa: DTZ001  # naive on purpose


def test_a_json_column_is_written_as_sqlalchemys_processor_writes_it() -> None:
    """A JSON column's documents go straight to the store's serializer (``direct._json_binder``), anything else
    through SQLAlchemy's processor: the same value for documents, text, numbers, None and SQLAlchemy's own null
    marker, on a dialect told to write JSON with the store's serializer."""
    from random import Random

    from sqlalchemy import JSON
    from sqlalchemy.dialects import sqlite

    from deconflict.store.json_column import json_text
    from deconflict.store.schema import MessageRow

    dialect = sqlite.dialect(json_serializer=json_text)
    column = MessageRow.__table__.c.doc
    compiled: Any = insert(MessageRow.__table__).compile(dialect=dialect, column_keys=["mechanism_id", "id", "doc"])
    theirs = compiled._bind_processors["doc"]
    ours = direct._fused(column.type, dialect, theirs)
    assert ours is not None and ours is not theirs
    rng = Random(7)
    words = ["M1", "ü", "שלום", "", 'a"b', "\u2028"]
    values: list[Any] = [None, JSON.NULL, "text", 3, 2.5, True, [], {}, [float("nan")], {"x": float("inf")}]
    for _ in range(2_000):
        doc = {rng.choice(words): rng.choice([None, rng.random(), rng.randint(-(2**70), 2**70), rng.choice(words)])}
        values += [doc, [doc, [doc]], {"nested": doc, "list": list(doc.values())}]
    for value in values:
        assert ours(value) == theirs(value), value
