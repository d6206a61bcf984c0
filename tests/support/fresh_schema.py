"""Empty SQLite files given their schema at once in the tests: statement for statement what the migrations made
in the first empty file a test process migrated. Alembic takes 0.1-0.3 s a database (18 revisions) and most
tests start from an empty file, hundreds of them in each test process; the schema they get is the same, and
``tests/store/test_store.py`` migrates for real (:data:`MIGRATE`) where the migrations themselves are tested."""

from __future__ import annotations

from typing import Any

import deconflict.store

__all__ = ["MIGRATE", "install"]

MIGRATE = deconflict.store._migrate
"""The service's own migration (Alembic), as ``deconflict.store`` has it."""
_FRESH: list[tuple[str, tuple[Any, ...]]] = []
"""The statements that gave the first empty file its schema: its DDL as SQLite keeps it, in its order, then its
rows (the revision)."""


def _migrate_like_the_first(engine: Any, where: str) -> None:
    """``deconflict.store._migrate`` in the tests: an empty SQLite file gets the schema the real migrations made
    in the first empty one; anything else (PostgreSQL, a file with a schema) is migrated as the service does."""
    if engine.dialect.name != "sqlite":
        MIGRATE(engine, where)
        return
    with engine.begin() as conn:
        empty = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar() == 0
        if empty and _FRESH:
            for sql, values in _FRESH:
                conn.exec_driver_sql(sql, values)
            return
    MIGRATE(engine, where)
    if empty:
        with engine.begin() as conn:
            master = "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
            schema = list(conn.exec_driver_sql(f"{master} ORDER BY rowid"))
            made: list[tuple[str, tuple[Any, ...]]] = [(sql, ()) for _, _, sql in schema]
            for kind, name, _ in schema:
                if kind == "table":
                    for row in conn.exec_driver_sql(f'SELECT * FROM "{name}"'):
                        marks = ", ".join("?" * len(row))
                        made.append((f'INSERT INTO "{name}" VALUES ({marks})', tuple(row)))
        _FRESH[:] = made


def install() -> None:
    """From now on in this process, empty SQLite files get their schema as the first one did."""
    deconflict.store._migrate = _migrate_like_the_first  # type: ignore[assignment]
