"""Storage: migrations build exactly the schema the models describe; SQLite runs in WAL mode; times stay UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from deconflict.errors import DeconflictError
from deconflict.store import alembic_config, open_store
from deconflict.store.schema import Base, MechanismRow


def test_migrations_match_the_models(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "m.db"))
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head


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
