"""Backups you can trust, the copy: a consistent backup taken while the service runs.

The copy is always one SQLite file with the service's own schema, so that one restore
(:mod:`deconflict.store.restore`) reads both kinds:

* from SQLite, SQLite's online backup API (``sqlite3.Connection.backup``) in steps of a few hundred
  pages, inside one read transaction on the source: the copy is the database as it stood at one instant
  (WAL mode lets writers go on meanwhile; they are never blocked by it), and a writer's commit does not
  restart the copy;
* from PostgreSQL, a logical export: every table read in one ``REPEATABLE READ`` read-only transaction
  (one snapshot) and written into the same SQLite schema. ``pg_dump`` is not used: its output needs a
  PostgreSQL server to be read, and the restore must read the record from the copy itself.

A table ``deconflict_backup`` in the copy says how and when it was taken and each chain's head then.
The copy is written aside and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Table, create_engine, func, insert, inspect, make_url, select, text

from deconflict.clock import Clock, iso, system_clock
from deconflict.errors import DeconflictError
from deconflict.record import chain
from deconflict.store import BUSY_S, database_url, head_revision, open_store
from deconflict.store.gate import sqlite_file
from deconflict.store.schema import Base, LedgerEntry

__all__ = [
    "MANIFEST",
    "BackupReport",
    "backup",
    "check_out",
    "copy_table",
    "head_revision",
    "remove",
    "require_deconflict",
    "revision",
]

MANIFEST = "deconflict_backup"
"""The table in a backup that says how and when it was taken (key → value, text)."""
BATCH = 2000
"""Rows per insert."""
STEP_PAGES = 512
"""Pages copied per step of SQLite's online backup."""


@dataclass
class BackupReport:
    """What ``backup`` wrote: where, how, how big, how long, and each chain's head in the copy."""

    out: Path
    method: str
    bytes: int
    seconds: float
    heads: dict[str, chain.Head] = field(default_factory=dict)


def backup(db: str, out: Path, *, force: bool = False, clock: Clock = system_clock) -> BackupReport:
    """Copy the database at ``db`` (an SQLite file or a PostgreSQL URL) to the SQLite file ``out``,
    consistent at one instant, while the service may be writing to it.

    Raises:
        DeconflictError: ``db`` is missing or not a deconflict database; ``out`` exists (without
            ``force``) or its folder does not.
    """
    started = time.perf_counter()
    check_out(out, force=force, option="--out")
    url = database_url(db)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    remove(partial)
    try:
        if url.startswith("sqlite:"):
            path = sqlite_file(make_url(url))
            if path is None or not path.is_file():
                raise DeconflictError(f"--db: {db}: no such database file", field="--db")
            if out.exists() and out.resolve() == path.resolve():
                raise DeconflictError(f"--out: {out} is the database itself; give another file", field="--out")
            method, heads = "SQLite online backup", _sqlite_backup(path, partial)
        else:
            method, heads = "PostgreSQL logical export (one REPEATABLE READ snapshot)", _logical_export(url, partial)
        _write_manifest(partial, {"method": method, "taken_at": iso(clock()), "heads": _heads_text(heads)})
        os.chmod(partial, 0o600)  # it holds the service's signing seed and the tokens' hashes: its owner only
        os.replace(partial, out)
    finally:
        remove(partial)
    return BackupReport(out, method, out.stat().st_size, time.perf_counter() - started, heads)


def _sqlite_backup(path: Path, partial: Path) -> dict[str, chain.Head]:
    """SQLite's online backup of ``path`` into ``partial``, in steps, within one read transaction."""
    src = sqlite3.connect(path, isolation_level=None)
    try:
        src.execute(f"PRAGMA busy_timeout={int(BUSY_S * 1000)}")
        require_deconflict(src, f"--db: {path}")
        src.execute("BEGIN")  # one snapshot: the heads read here are the copy's, and commits never restart it
        heads = _sqlite_heads(src)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=STEP_PAGES)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            dst.commit()
        finally:
            dst.close()
        src.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        raise DeconflictError(f"--db: {path}: {e}", field="--db") from None
    finally:
        src.close()
    return heads


def _logical_export(url: str, partial: Path) -> dict[str, chain.Head]:
    """Every table of the PostgreSQL database at ``url``, read in one snapshot, into a new SQLite file."""
    source = create_engine(url)
    target = open_store(str(partial))
    try:
        with source.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                names = set(inspect(conn).get_table_names())
                if "ledger" not in names:
                    raise DeconflictError("--db: not a deconflict database (it has no record table)", field="--db")
                _same_revision(revision(conn), "--db")
                heads = _heads(conn)
                with target.engine.begin() as out:
                    for table in Base.metadata.sorted_tables:
                        if table.name in names:
                            copy_table(conn, out, table)
    finally:
        target.close()
        source.dispose()
    return heads


def _write_manifest(path: Path, values: dict[str, str]) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute(f"DROP TABLE IF EXISTS {MANIFEST}")  # a backup of a backup: this copy's, not the first's
        con.execute(f"CREATE TABLE {MANIFEST} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        con.executemany(f"INSERT INTO {MANIFEST} VALUES (?, ?)", sorted(values.items()))
        con.commit()
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    with path.open("rb+") as f:  # on disk before it is renamed into place
        os.fsync(f.fileno())


# --- shared with restore ------------------------------------------------------------------------------


def check_out(path: Path, *, force: bool, option: str) -> None:
    if path.is_dir():
        raise DeconflictError(f"{option}: {path} is a folder, not a file", field=option)
    if not path.parent.is_dir():
        raise DeconflictError(f"{option}: folder {path.parent} does not exist", field=option)
    if path.exists() and not force:
        raise DeconflictError(
            f"{option}: {path} already exists; give a new file, or --force to replace it", field=option
        )


def require_deconflict(con: sqlite3.Connection, what: str) -> None:
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"ledger", "alembic_version"} <= names:
        raise DeconflictError(f"{what} is not a deconflict database or backup (it has no record table)")


def revision(conn: Connection) -> str | None:
    return conn.scalar(text("SELECT version_num FROM alembic_version"))


def copy_table(source: Connection, target: Connection, table: Table) -> int:
    """Every row of ``table`` from one database to the other, in batches; the number of rows."""
    rows = source.execution_options(stream_results=True, yield_per=BATCH).execute(select(table))
    n = 0
    for part in rows.mappings().partitions(BATCH):
        target.execute(insert(table), [dict(r) for r in part])
        n += len(part)
    return n


def remove(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        p.unlink(missing_ok=True)


def _same_revision(revision: str | None, option: str) -> None:
    if revision != head_revision():
        raise DeconflictError(
            f"{option}: the database is at schema {revision}, this deconflict at {head_revision()}; "
            "start the service on it once (it migrates), then back it up",
            field=option,
        )


def _heads(conn: Connection) -> dict[str, chain.Head]:
    t = LedgerEntry.__table__
    last = select(t.c.mechanism_id, func.max(t.c.seq).label("seq")).group_by(t.c.mechanism_id).subquery()
    rows = conn.execute(
        select(t.c.mechanism_id, t.c.seq, t.c.hash).join(
            last, (t.c.mechanism_id == last.c.mechanism_id) & (t.c.seq == last.c.seq)
        )
    )
    return {str(m): chain.Head(int(s), str(h)) for m, s, h in rows}


def _sqlite_heads(con: sqlite3.Connection) -> dict[str, chain.Head]:
    rows = con.execute(
        "SELECT l.mechanism_id, l.seq, l.hash FROM ledger l JOIN (SELECT mechanism_id, max(seq) AS seq FROM ledger "
        "GROUP BY mechanism_id) h ON l.mechanism_id = h.mechanism_id AND l.seq = h.seq"
    )
    return {str(m): chain.Head(int(s), str(h)) for m, s, h in rows}


def _heads_text(heads: dict[str, chain.Head]) -> str:
    return json.dumps({m: {"seq": h.seq, "hash": h.hash} for m, h in sorted(heads.items())})
