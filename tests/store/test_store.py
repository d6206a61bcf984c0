"""Storage: migrations build exactly the schema the models describe; SQLite runs in WAL mode; times stay UTC."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from support import fresh_schema
from typer.testing import CliRunner

import deconflict.store
from deconflict.cli import app
from deconflict.errors import DeconflictError
from deconflict.store import Store, alembic_config, head_revision, open_store
from deconflict.store.schema import Base, MechanismRow, TrackReportRow


def test_migrations_match_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deconflict.store, "_migrate", fresh_schema.MIGRATE)  # Alembic itself, every revision
    store = open_store(str(tmp_path / "m.db"))
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head


def test_the_head_read_from_the_scripts_names_is_alembics_and_each_revision_is_its_name() -> None:
    """open_store skips Alembic for a database at ``head_revision()``, read from the scripts' names: were a
    script named otherwise than its revision, a database one revision behind would be left unmigrated."""
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [head_revision()]
    for script in scripts.walk_revisions():
        assert script.path is not None and Path(script.path).name.startswith(f"{script.revision}_"), script.path


def test_a_database_a_revision_behind_is_upgraded_when_opened(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    store = open_store(db)
    cfg = alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    store.close()
    reopened = open_store(db)
    with reopened.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    reopened.close()


def test_sqlite_file_is_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "w.db"))
    with store.engine.connect() as conn:
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
        assert conn.execute(text("pragma foreign_keys")).scalar() == 1


def test_times_come_back_aware_utc_and_naive_ones_are_refused(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "t.db"))
    plus3 = datetime(2025, 4, 9, 11, 0, tzinfo=timezone(timedelta(hours=3)))
    with store.transaction() as s:
        s.add(MechanismRow(id="m", name="m", doc={}, declared_at=plus3))
    with store.read() as s:
        row = s.get(MechanismRow, "m")
        assert row is not None and row.declared_at == datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
        assert row.declared_at.tzinfo is not None
    with pytest.raises(Exception, match="naive"), store.transaction() as s:
        s.add(MechanismRow(id="n", name="n", doc={}, declared_at=datetime(2025, 4, 9, 8, 0)))  # noqa: DTZ001


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeconflictError, match="does not exist"):
        open_store(str(tmp_path / "no" / "such" / "x.db"))


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_the_tracks_history_is_keyed_time_first_and_upgrading_keeps_it(store_url: str) -> None:
    """Migration 0013: the history's key is (mechanism_id, at, party, id), the reports stored before it are
    kept, a report of a track at an instant is still stored once, and it goes back down and up again."""
    store = open_store(store_url)
    cfg = alembic_config()

    def migrate(step: Callable[[Config, str], None], revision: str) -> None:
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, revision)

    def key() -> list[str]:
        return list(inspect(store.engine).get_pk_constraint("track_reports")["constrained_columns"])

    assert key() == ["mechanism_id", "at", "party", "id"]
    migrate(command.downgrade, "0012")
    assert key() == ["mechanism_id", "party", "id", "at"]
    at = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
    with store.transaction() as s:
        s.add(MechanismRow(id="m", name="m", doc={}, declared_at=at))
        s.add_all(
            TrackReportRow(mechanism_id="m", party=p, id=t, at=at + timedelta(seconds=k), **STATE)
            for k, (p, t) in enumerate([("TR", "UAV-1"), ("IL", "F16-2"), ("TR", "UAV-1")])
        )
    before = history(store)
    migrate(command.upgrade, "head")
    assert key() == ["mechanism_id", "at", "party", "id"] and history(store) == before and len(before) == 3
    with pytest.raises(IntegrityError), store.transaction() as s:
        s.add(TrackReportRow(mechanism_id="m", party="TR", id="UAV-1", at=at, **STATE))
    migrate(command.downgrade, "0012")
    migrate(command.upgrade, "head")
    assert key() == ["mechanism_id", "at", "party", "id"] and history(store) == before
    store.close()


STATE = {"lat": 34.5, "lon": 37.6, "alt_m": 3000.0, "gs_mps": 100.0, "trk_deg": 90.0, "vs_mps": 0.0}


def history(store: Store) -> list[tuple[str, str, datetime]]:
    with store.read() as s:
        return sorted((r.party, r.id, r.at) for r in s.query(TrackReportRow))


def test_an_sqlite_commit_reaches_the_disk_before_the_write_is_answered(tmp_path: Path) -> None:
    """synchronous=FULL in WAL mode: the log is synced at each commit, so what was answered 2xx survives a power
    cut. With NORMAL the last commits could be lost and the record written again at sequence numbers the
    parties' mirrors already hold."""
    store = open_store(str(tmp_path / "durable.db"))
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL (NORMAL is 1)
    finally:
        store.close()


def test_a_database_a_newer_release_migrated_is_refused_in_words_and_left_as_it_is(tmp_path: Path) -> None:
    """Going back to an older release after an upgrade: it says what happened instead of Alembic's traceback
    ("Can't locate revision"), and writes nothing."""
    db = tmp_path / "newer.db"
    open_store(str(db)).engine.dispose()
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(DeconflictError, match=r"revision 9999, written by a newer release.*restore a backup"):
        open_store(str(db))
    assert db.read_bytes() == before
    with pytest.raises(DeconflictError, match="written by a newer release"):  # the command line's opening too
        open_store(str(db), migrate=False)
    for command_line in (
        ["member", "token", "--db", str(db), "--mechanism", "tr-il-syria", "--member", "TR"],  # migrates
        ["ledger", "export", "--db", str(db), "--out", str(tmp_path / "record.jsonl")],  # does not; may checkpoint
    ):
        out = CliRunner().invoke(app, command_line)
        assert out.exit_code != 0 and "written by a newer release" in out.output, (command_line, out.output)
        assert out.exception is None or isinstance(out.exception, SystemExit)
    assert db.read_bytes() == before
