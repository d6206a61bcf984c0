"""A store opened read-only (the commands that only read) reads what the database holds and is refused any write
by the database itself, on SQLite and on PostgreSQL; and a file's name is the file opened, whatever it holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from deconflict.store import open_store


def test_a_read_only_store_reads_and_is_refused_every_write(store_url: str) -> None:
    writer = open_store(store_url)
    with writer.transaction() as s:
        s.execute(
            text("INSERT INTO mechanisms (id, name, doc, declared_at) VALUES ('m1', 'M', '{}', '2030-01-01 00:00:00')")
        )
    writer.close()
    reader = open_store(store_url, read_only=True)
    try:
        with reader.read() as s:
            assert s.execute(text("SELECT name FROM mechanisms WHERE id = 'm1'")).scalar_one() == "M"
        with pytest.raises(DBAPIError, match="readonly|read-only"), reader.transaction() as s:
            s.execute(text("UPDATE mechanisms SET name = 'changed' WHERE id = 'm1'"))
    finally:
        reader.close()
    again = open_store(store_url, migrate=False)
    try:
        with again.read() as s:
            assert s.execute(text("SELECT name FROM mechanisms WHERE id = 'm1'")).scalar_one() == "M"
    finally:
        again.close()


@pytest.mark.parametrize("name", ["a b.db", "a%20b.db", "a?b.db", "a#b.db", "50%.db"])
def test_a_file_name_is_the_file_opened(tmp_path: Path, name: str) -> None:
    """SQLAlchemy takes one quoting off a URL's database name and reads a '?' as the start of its options: a
    path was put into the URL as it was, so 'a%20b.db' opened 'a b.db' and 'a?b.db' opened 'a'."""
    path = tmp_path / name
    open_store(str(path)).close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm", "-gate"))) == [name]
    reader = open_store(str(path), read_only=True)
    try:
        with reader.read() as s:
            assert s.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        reader.close()


def test_a_readers_url_keeps_its_own_options(store_url: str, store_kind: str) -> None:
    """A URL's own settings (PostgreSQL's options, SQLite's driver time-out) hold for a reader as for a writer."""
    if store_kind == "postgresql":
        url = f"{store_url}{'&' if '?' in store_url else '?'}options=-c%20statement_timeout%3D4321"
        reader = open_store(url, read_only=True)
        try:
            with reader.read() as s:
                assert s.execute(text("SHOW statement_timeout")).scalar_one() == "4321ms"
                assert s.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        finally:
            reader.close()
        return
    reader = open_store(f"sqlite:///{store_url}?timeout=7", read_only=True)
    try:
        args, options = reader.engine.dialect.create_connect_args(reader.engine.url)
        assert options["timeout"] == 7.0 and options["uri"] is True and args[0].endswith("?mode=ro")
        with reader.read() as s:
            assert s.execute(text("PRAGMA query_only")).scalar_one() == 1
    finally:
        reader.close()
