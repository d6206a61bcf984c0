"""A database that is another application's is refused before anything is written into it.

``serve``, ``member add`` and every command that opens a database for writing used to migrate whatever
``--db`` named: another program's SQLite file (a typo, a neighbouring ``app.db``) got deconflict's twenty
tables added beside its own, and was switched to a write-ahead log; a PostgreSQL database another
application uses got them too. The read-only commands said "no such table: custody_keys". Now each says
which database it is, what it holds, and that nothing was written into it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.errors import DeconflictError
from deconflict.store import open_store

runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """Another program's SQLite file: a table of its own, one row, a rollback journal."""
    path = tmp_path / "notes.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
        conn.commit()
    return path


def test_another_programs_sqlite_file_is_refused_and_left_byte_for_byte(notes: Path) -> None:
    before, beside = _digest(notes), sorted(p.name for p in notes.parent.iterdir())
    with pytest.raises(DeconflictError) as refused:
        open_store(str(notes))
    said = str(refused.value)
    assert f"{notes} is not a deconflict database" in said
    assert "another application's tables (notes)" in said
    assert "nothing was written into it" in said
    assert refused.value.field == "db"
    assert _digest(notes) == before  # not migrated, and not switched to a write-ahead log either
    assert sorted(p.name for p in notes.parent.iterdir()) == beside
    # a reader is refused in the same words (was: "no such table: custody_keys")
    with pytest.raises(DeconflictError, match="is not a deconflict database"):
        open_store(str(notes), read_only=True)
    assert _digest(notes) == before


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "18997"],
        ["member", "add", "--mechanism", "tr-il-syria", "--party", "TR", "--role", "party", "--name", "Duty officer"],
        ["ledger", "check"],
        ["demo", "--script"],
    ],
    ids=["serve", "member add", "ledger check", "demo"],
)
def test_the_commands_say_so_in_one_line_and_exit_2(notes: Path, command: list[str]) -> None:
    before = _digest(notes)
    result = runner.invoke(app, [*command, "--db", str(notes)])
    assert result.exit_code == 2, result.output
    assert "is not a deconflict database" in result.stderr
    assert "Traceback" not in result.output
    assert "serving" not in result.output
    assert _digest(notes) == before


def test_another_alembic_applications_database_is_not_called_a_newer_deconflict(notes: Path) -> None:
    """Its revision (Alembic's hexadecimal names) sorts after ours: it was called "written by a newer release
    of deconflict"."""
    with closing(sqlite3.connect(notes)) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
        conn.commit()
    before = _digest(notes)
    with pytest.raises(DeconflictError, match=r"another application.s \(Alembic revision ae1027a6acf\)") as refused:
        open_store(str(notes))
    assert "newer release" not in str(refused.value)
    assert _digest(notes) == before


@pytest.mark.parametrize(
    "schema",
    [
        # Alembic names revisions as we do when told to (alembic revision --rev-id 0001): ours by its name, not by
        # its tables; it was migrated into (a traceback, half our tables added, the file switched to WAL)
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES "
        "('0001'); CREATE TABLE users (id INTEGER)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES "
        "('0016'); CREATE TABLE users (id INTEGER)",
        "CREATE VIEW answers AS SELECT 42 AS answer",  # a view is another application's as much as a table
    ],
    ids=["revision 0001", "our head's name", "a view"],
)
def test_another_applications_schema_that_looks_like_ours_is_refused(tmp_path: Path, schema: str) -> None:
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.executescript(schema)
        conn.commit()
    before = _digest(other)
    for read_only in (False, True):
        with pytest.raises(DeconflictError, match="is not a deconflict database"):
            open_store(str(other), read_only=read_only)
    assert _digest(other) == before


def test_a_file_another_process_holds_locked_is_refused_before_it_is_switched(
    notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locked longer than the look before writing waited, the file was passed over unlooked at; the store's own
    connection then switched it to a write-ahead log and only then refused it, saying nothing was written."""
    import deconflict.store

    monkeypatch.setattr(deconflict.store, "BUSY_S", 0.3)
    before = _digest(notes)
    holder = sqlite3.connect(notes, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DeconflictError, match="another process has held it locked") as refused:
            open_store(str(notes))
        assert "nothing was written" in str(refused.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _digest(notes) == before
    with pytest.raises(DeconflictError, match="another application's tables"):  # let go of: looked at, refused
        open_store(str(notes))
    assert _digest(notes) == before


def test_a_file_with_an_unfinished_transaction_is_refused_untouched(tmp_path: Path) -> None:
    """A program that died mid-transaction leaves a hot journal, which a read-only look cannot roll back: the look
    stepped aside, and the store's connection rolled it back and switched the file to WAL before refusing it."""

    hot = tmp_path / "hot.db"
    script = (
        "import sqlite3, os, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('create table notes(id int, body text)'); c.execute('begin'); "
        "[c.execute('insert into notes values(?, ?)', (i, 'x' * 200)) for i in range(2000)]; c.execute('commit'); "
        "c.execute('pragma cache_size=2'); c.execute('begin'); c.execute(\"update notes set body = 'y' * 300\"); "
        "os._exit(0)"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script, str(hot)], check=True)
    journal = tmp_path / "hot.db-journal"
    assert journal.exists()
    before = (_digest(hot), _digest(journal))
    with pytest.raises(DeconflictError, match="holds a transaction some program left unfinished"):
        open_store(str(hot))
    assert (_digest(hot), _digest(journal)) == before


def test_an_empty_file_and_a_deconflict_database_still_open(tmp_path: Path) -> None:
    empty = tmp_path / "made-by-touch.db"
    empty.touch()  # an engineer may make the file first (and set its owner)
    open_store(str(empty)).close()
    open_store(str(empty)).close()  # now deconflict's own
    with closing(sqlite3.connect(empty)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"ledger", "alembic_version"} <= tables


@pytest.fixture
def pg_foreign(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database another application uses: its one table, no deconflict table."""
    databases = request.getfixturevalue("pg_databases")
    url = databases.create()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE TABLE invoices (id integer PRIMARY KEY)"))
    engine.dispose()
    yield url
    databases.drop(url)


def _pg_tables(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = list(conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")))
    engine.dispose()
    return names


@pytest.mark.parametrize(
    "made", ["CREATE VIEW answers AS SELECT 42 AS answer", "CREATE SEQUENCE invoice_numbers"], ids=["view", "sequence"]
)
def test_a_postgresql_database_with_only_a_view_or_a_sequence_is_another_applications(
    pg_foreign: str, made: str
) -> None:
    engine = create_engine(pg_foreign, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP TABLE invoices"))
        conn.execute(text(made))
    engine.dispose()
    with pytest.raises(DeconflictError, match="another application's tables"):
        open_store(pg_foreign)
    assert _pg_tables(pg_foreign) == []


def test_a_password_in_the_urls_options_is_not_said(pg_foreign: str) -> None:
    """libpq takes the password as a query option too (``?password=``): it was shown in the refusal, and in the
    log line that names the database served."""
    with pytest.raises(DeconflictError) as refused:
        open_store(pg_foreign + "&password=s3cret-in-query")
    assert "s3cret" not in str(refused.value) and "password=***" in str(refused.value)


def test_another_applications_postgresql_database_is_refused_and_left_alone(pg_foreign: str) -> None:
    with pytest.raises(DeconflictError, match=r"another application's tables \(invoices\)") as refused:
        open_store(pg_foreign)
    assert "password" not in str(refused.value)
    assert _pg_tables(pg_foreign) == ["invoices"]
    with pytest.raises(DeconflictError, match="is not a deconflict database"):
        open_store(pg_foreign, read_only=True)
    # emptied, it is deconflict's to use
    engine = create_engine(pg_foreign, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP TABLE invoices"))
    engine.dispose()
    open_store(pg_foreign).close()
    assert "ledger" in _pg_tables(pg_foreign)
