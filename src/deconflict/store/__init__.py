"""Storage: SQLAlchemy engine, migrations (Alembic) and sessions. SQLite by default (a file path), PostgreSQL by URL
(``postgresql://…`` means psycopg 3). Everything below is portable; what is not (SQLite's pragmas, the record's
lock in :mod:`deconflict.store.ledger`) is chosen by dialect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from deconflict.errors import DeconflictError
from deconflict.store.gate import Gate

MIGRATIONS = Path(__file__).parent / "migrations"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""PostgreSQL URLs without a driver; they mean psycopg 3 (the driver this package depends on)."""


def database_url(db: str) -> str:
    """A database URL from a URL or a plain file path (which means an SQLite file). A PostgreSQL URL without a
    driver gets psycopg 3's (``postgresql+psycopg://``).

    >>> database_url("postgresql://u@db.example/deconflict")
    'postgresql+psycopg://u@db.example/deconflict'
    """
    for scheme in POSTGRES_SCHEMES:
        if db.startswith(scheme):
            return "postgresql+psycopg://" + db.removeprefix(scheme)
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


class Store:
    """A database with the schema migrated to the latest revision."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.gate = Gate(engine)
        """One writer at a time per record, across processes, for a whole use case (:mod:`.gate`)."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose changes are committed together, or not at all."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def open_store(db: str, *, migrate: bool = True) -> Store:
    """Open (and create or upgrade) the database at a URL or SQLite file path."""
    url = database_url(db)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        parent = Path(url.removeprefix("sqlite:///")).parent
        if not parent.is_dir():
            raise DeconflictError(f"database folder {parent} does not exist")
    # A server's connections may be cut (a restart, a failover): check each one as it leaves the pool.
    engine = create_engine(url) if url.startswith("sqlite") else create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return Store(engine)
