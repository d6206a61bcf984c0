"""Backups you can trust, the restore: a new database rebuilt from a backup's record and checked before
it is used.

Nothing is taken from the backup's tables on trust: a new database gets the schema (the migrations), the
record's entries (the ``ledger``) one by one, and every projected table rebuilt from them by
:mod:`deconflict.store.projection` (as replay does); the tables that are not the record's (tokens, the
service's keys, checkpoints and cosignatures, tracks) are copied. Then every chain is verified
(:func:`deconflict.store.ledger.verify_store`'s checks, and its signed checkpoints held against it), and the
rebuilt tables are compared with the backup's, row by row: a backup whose tables were edited without the
record is refused, as is one whose record does not verify. An SQLite target is written to a temporary
file renamed into place only at the end; a PostgreSQL target in one transaction: a refused restore
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    String,
    Table,
    create_engine,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from deconflict.clock import Clock, iso, system_clock
from deconflict.errors import DeconflictError
from deconflict.record import chain
from deconflict.record.bundle import PARALLEL_FROM
from deconflict.record.checkpoints import check_checkpoints
from deconflict.record.verify import KeyRing, verify_docs
from deconflict.store import alembic_config, database_url, open_store, projection
from deconflict.store import backup as backups
from deconflict.store.gate import sqlite_file, sqlite_uri
from deconflict.store.json_column import json_text
from deconflict.store.replay import TABLES
from deconflict.store.schema import Base, CheckpointRow, LedgerEntry, MechanismRow

__all__ = ["PROJECTED", "RUNTIME", "BackupRefused", "BatchingSession", "RestoreReport", "restore"]

PROJECTED: dict[str, Any] = {"mechanisms": MechanismRow, **TABLES}
"""The tables rebuilt from the record on restore (and compared with the backup's), by name."""
RUNTIME = frozenset({"ticker_lease"})
"""Tables of the running processes' coordination, not data: never copied (a restored database starts free)."""
SQLITE_MAGIC = b"SQLite format 3\x00"
BATCH = 2000
"""Rows per insert, and entries between two flushes of the rebuilding session."""


class BackupRefused(DeconflictError):
    """The backup cannot be trusted (its record does not verify, or its tables disagree with its record):
    nothing was restored."""


@dataclass
class RestoreReport:
    """What ``restore`` rebuilt: each chain's entries and head, rows copied as they were, the time taken."""

    db: str
    heads: dict[str, chain.Head] = field(default_factory=dict)
    entries: int = 0
    checkpoints: int = 0
    copied: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def restore(
    source: Path,
    db: str,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    clock: Clock = system_clock,
) -> RestoreReport:
    """Rebuild a database at ``db`` (a new SQLite file or an empty PostgreSQL database) from the backup
    ``source``: schema, record, projected tables rebuilt from the record, the other tables copied; every
    chain verified and the rebuilt tables compared with the backup's before anything is kept.

    Raises:
        DeconflictError: ``source`` is missing or not a backup; ``db`` exists (without ``force``), or a server
            is running on it (its duty lease held until after ``clock()``: replaced under it, the file would
            lose the writes the server answers meanwhile).
        BackupRefused: the record does not verify, a checkpoint does not match it, or the backup's tables
            disagree with its record (nothing written).
    """
    started = time.perf_counter()
    say = progress or (lambda _line: None)
    _check_backup_file(source)
    url = database_url(db)
    is_sqlite = url.startswith("sqlite:")
    target_path = sqlite_file(make_url(url)) if is_sqlite else None
    if target_path is not None:
        backups.check_out(target_path, force=force, option="--db")
        if target_path.exists() and target_path.resolve() == source.resolve():
            raise DeconflictError(f"--db: {target_path} is the backup itself; give another file", field="--db")
        _not_served(target_path, clock)
    with _readable(source) as engine, engine.connect() as backup_conn:
        report = RestoreReport(db, manifest=_manifest(backup_conn))
        if target_path is None:
            _restore_into(url, backup_conn, report, say, empty_first=True)
        else:
            partial = target_path.parent / f".{target_path.name}.restoring-{os.getpid()}"
            backups.remove(partial)
            try:
                _restore_into(database_url(str(partial)), backup_conn, report, say, empty_first=False)
                _settle(partial)
                _not_served(target_path, clock)  # (a server started meanwhile)
                for extra in ("-wal", "-shm"):
                    backups.remove(Path(f"{target_path}{extra}"))
                os.chmod(partial, 0o600)  # the service's signing seed and the tokens' hashes: its owner only
                os.replace(partial, target_path)
            finally:
                backups.remove(partial)
    report.seconds = time.perf_counter() - started
    return report


def _not_served(path: Path, clock: Clock) -> None:
    """Refuse to replace the SQLite file ``path`` while a server runs on it: one holds the duty lease, which every
    running server takes in turn and renews each second (``ticker``: it runs out 5 s after a server stopped).
    A file that is not a deconflict database, or holds no lease, is not served.

    Raises:
        DeconflictError: a server holds the lease now, named.
    """
    if not path.is_file():
        return
    try:
        with closing(sqlite3.connect(sqlite_uri(path, "ro"), uri=True, timeout=5)) as con:
            found = con.execute(
                "SELECT holder, expires_at FROM ticker_lease ORDER BY expires_at DESC LIMIT 1"
            ).fetchone()
    except sqlite3.Error:
        return  # not a deconflict database, or one no server has run on
    if found is None:
        return
    holder, expires = str(found[0]), datetime.fromisoformat(str(found[1])).replace(tzinfo=UTC)
    if expires <= clock():
        return
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0] or "?"
    raise DeconflictError(
        f"--db: {path} is in use: a server (process {pid} on {host}) runs on it and holds its duty until "
        f"{iso(expires)}; stop it first (replaced under it, the file would lose the writes it answers meanwhile)",
        field="--db",
    )


def _restore_into(
    url: str, backup: Connection, report: RestoreReport, say: Callable[[str], None], *, empty_first: bool
) -> None:
    """Schema, record, projections, copies, verification and comparison, in one transaction on ``url``."""
    from alembic import command

    engine = open_store(url, migrate=False).engine
    try:
        with engine.connect() as conn, conn.begin():
            if empty_first and "ledger" in inspect(conn).get_table_names():
                if conn.scalar(select(func.count()).select_from(LedgerEntry.__table__)):
                    raise DeconflictError("--db: that database already holds a record; restore into an empty one")
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            with Session(bind=conn, autoflush=True) as session:
                mechanisms = list(backup.scalars(select(LedgerEntry.mechanism_id).distinct()))
                counts: dict[str, int] = {}
                for mid in sorted(mechanisms):
                    counts[mid] = n = _rebuild(backup, session, mid)
                    report.entries += n
                    say(f"{mid}: {n} entries copied and projected")
                session.flush()
                copied = {t.name for t in Base.metadata.sorted_tables} - set(PROJECTED) - RUNTIME - {"ledger"}
                backup_tables = set(inspect(backup).get_table_names())
                for table in Base.metadata.sorted_tables:
                    if table.name in copied and table.name in backup_tables:
                        report.copied[table.name] = _copy(backup, session, table)
                for mid in sorted(mechanisms):
                    report.heads[mid], cps = _verify(session, mid, counts[mid])
                    report.checkpoints += cps
                    say(f"{mid}: chain verifies to entry {report.heads[mid].seq}, {cps} checkpoint(s) match it")
                for name, model in PROJECTED.items():
                    say(f"{name}: {_compare(backup, session, name, model.__table__)} rows equal to the backup's")
    finally:
        engine.dispose()


class BatchingSession:
    """The session as the projection sees it, with its single-row inserts gathered per table and sent as
    one multi-row insert just before anything else touches the database (a read, an update, a flush):
    the same rows in the same tables, several times faster than one statement per row. Tables are
    written in dependency order, so a version never goes before its activity."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: dict[Table, list[dict[str, Any]]] = {}

    def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if isinstance(statement, Insert) and isinstance(params, list | dict) and not kw and _plain_insert(statement):
            self.pending.setdefault(cast(Table, statement.table), []).extend(
                params if isinstance(params, list) else [params]
            )
            return None
        self.flush()
        return self.session.execute(statement, params, **kw)

    def connection(self) -> BatchingSession:
        """What the projection's statements run on (:func:`deconflict.store.ledger.connection_of`): this
        session again, so that its single-row Core inserts are gathered like the rest."""
        return self

    def get(self, *args: Any, **kw: Any) -> Any:
        self.flush()
        return self.session.get(*args, **kw)

    def flush(self) -> None:
        """Send the gathered inserts, parents first, then the session's own changes."""
        pending, self.pending = self.pending, {}
        for table in Base.metadata.sorted_tables:
            if rows := pending.get(table):
                self.session.execute(insert(table), rows)
        self.session.flush()


def _plain_insert(statement: Insert) -> bool:
    return not statement._values and not statement._returning  # noqa: SLF001 - an INSERT with rows only


def _rebuild(backup: Connection, session: Session, mid: str) -> int:
    """Copy one mechanism's entries in order and apply each to the tables; the number of entries."""
    ledger = cast(Table, LedgerEntry.__table__)
    rows = backup.execution_options(stream_results=True, yield_per=BATCH).execute(
        select(ledger).where(ledger.c.mechanism_id == mid).order_by(ledger.c.seq)
    )
    batching = BatchingSession(session)
    n = 0
    for row in rows.mappings():
        entry = dict(row)
        batching.pending.setdefault(ledger, []).append(entry)
        n += 1
        try:
            projection.apply(
                cast(Session, batching),
                mechanism=mid,
                type=entry["type"],
                payload=json.loads(entry["payload"]),
                at=entry["at"],
                seq=entry["seq"],
                actor=entry["actor"],
            )
            if n % BATCH == 0:
                batching.flush()
                session.expunge_all()
        except Exception as e:  # noqa: BLE001 - any fault of a tampered entry is named, never a traceback
            raise BackupRefused(
                f"{mid}: entry {entry['seq']} ({entry['type']}) cannot be rebuilt into the tables: "
                f"{type(e).__name__}: {e}; the backup's record is damaged"
            ) from None
    try:
        batching.flush()
    except Exception as e:  # noqa: BLE001 - e.g. two entries projecting the same row
        raise BackupRefused(f"{mid}: the entries cannot be rebuilt into the tables: {type(e).__name__}: {e}") from None
    return n


def _copy(backup: Connection, session: Session, table: Table) -> int:
    """Copy a table that is not the record's; a row that does not fit the rebuilt tables (a token of a
    member the record never added, say) refuses the backup."""
    try:
        with session.begin_nested():
            return backups.copy_table(backup, session.connection(), table)
    except SQLAlchemyError as e:
        problem = str(getattr(e, "orig", e)).splitlines()[0]
        raise BackupRefused(
            f"table {table.name}: its rows do not fit the tables rebuilt from the record ({problem})"
        ) from None


def _verify(session: Session, mid: str, entries: int) -> tuple[chain.Head, int]:
    """Verify a rebuilt chain as :func:`deconflict.store.ledger.verify_store` does (the entries read back
    from the new database, without the ORM's cost per row; signatures checked in two processes for a long
    record, as a bundle's are) and hold it against its signed checkpoints; its head and checkpoint count."""
    cps = [
        chain.checkpoint_doc(mechanism=mid, seq=r.seq, hash=r.hash, at=r.at, key_id=r.key_id, signature=r.signature)
        for r in session.scalars(select(CheckpointRow).where(CheckpointRow.mechanism_id == mid))
    ]
    ring, hashes = KeyRing(), dict.fromkeys((int(c["seq"]) for c in cps), "")
    times: dict[int, datetime] = {}
    workers = 2 if entries >= PARALLEL_FROM and (os.cpu_count() or 1) >= 2 else 1
    report = verify_docs(mid, _docs(session.connection(), mid), workers=workers, ring=ring, hashes=hashes, times=times)
    report = check_checkpoints(mid, cps, hashes, report, ring, times)
    if not report.ok:
        raise BackupRefused(f"{mid}: the backup's record does not verify: {report.problem}")
    return chain.Head(report.head_seq, report.head_hash), report.checkpoints


def _docs(conn: Connection, mid: str) -> Iterator[dict[str, Any]]:
    """A mechanism's entries as stored in the new database, in order, as entry documents (as
    :func:`deconflict.store.ledger.store_docs` gives them)."""
    ledger = cast(Table, LedgerEntry.__table__)
    stmt = select(ledger).where(ledger.c.mechanism_id == mid).order_by(ledger.c.seq)
    for row in conn.execution_options(stream_results=True, yield_per=BATCH).execute(stmt).mappings():
        doc = dict(row)
        del doc["mechanism_id"]
        try:
            doc["payload"] = json.loads(doc["payload"])
        except json.JSONDecodeError:
            doc["payload"] = {"__unreadable__": doc["payload"]}
        yield doc


def _ordered(conn: Connection, table: Table) -> Iterator[Any]:
    """A table's rows in primary-key order, byte order for text on either store (as Python orders them)."""
    pg = conn.dialect.name == "postgresql"
    order = [c.collate("C") if pg and isinstance(c.type, String) else c for c in table.primary_key.columns]
    return iter(
        conn.execution_options(stream_results=True, yield_per=BATCH).execute(select(table).order_by(*order)).mappings()
    )


def _compare(backup: Connection, session: Session, name: str, table: Table) -> int:
    """Hold a rebuilt table against the backup's, row by row in key order; the number of rows."""
    keys = [c.name for c in table.primary_key.columns]
    theirs, ours = _ordered(backup, table), _ordered(session.connection(), table)
    a, b = next(theirs, None), next(ours, None)
    count = 0
    while a is not None or b is not None:
        ka = tuple(a[k] for k in keys) if a is not None else None
        kb = tuple(b[k] for k in keys) if b is not None else None
        if kb is None or (ka is not None and ka < kb):
            raise BackupRefused(f"table {name}: row {_key_text(ka)} is in the backup's table but not in its record")
        if ka is None or kb < ka:
            raise BackupRefused(f"table {name}: row {_key_text(kb)} is in the record but not in the backup's table")
        if dict(a) != dict(b):  # type: ignore[arg-type]
            raise BackupRefused(f"table {name}: row {_key_text(ka)} {_difference(table, a, b)}")
        count += 1
        a, b = next(theirs, None), next(ours, None)
    return count


def _difference(table: Table, theirs: Any, ours: Any) -> str:
    """What differs in one row: the first column whose value the backup's table and the record disagree on."""
    for column in table.columns:
        a, b = _plain(theirs[column.name]), _plain(ours[column.name])
        if a != b:
            said = f"the backup's table says {_short(a)}, the record {_short(b)}"
            return f"differs from its record in column {column.name}: {said}"
    return "differs from its record"


def _check_backup_file(source: Path) -> None:
    if not source.exists():
        raise DeconflictError(f"--from: {source}: no such file", field="--from")
    if not source.is_file():
        raise DeconflictError(f"--from: {source} is not a file", field="--from")
    with source.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise DeconflictError(
                f"--from: {source} is not a deconflict backup (not an SQLite file; make one with 'deconflict backup')",
                field="--from",
            )
    con = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        backups.require_deconflict(con, f"--from: {source}")
    except sqlite3.DatabaseError as e:
        raise DeconflictError(f"--from: {source} is not a deconflict backup ({e})", field="--from") from None
    finally:
        con.close()


@contextmanager
def _readable(source: Path) -> Iterator[Engine]:
    """The backup, read only, at the schema's latest revision (an older backup is migrated in a copy)."""
    uri = f"{source.resolve().as_uri()}?mode=ro"
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), json_serializer=json_text)
    with engine.connect() as conn:
        revision = backups.revision(conn)
    if revision == backups.head_revision():
        try:
            yield engine
        finally:
            engine.dispose()
        return
    engine.dispose()
    if revision not in _known_revisions():
        raise DeconflictError(
            f"--from: {source} was made by a newer deconflict (schema {revision}); restore it with that version",
            field="--from",
        )
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "backup.db"
        shutil.copyfile(source, copy)
        store = open_store(str(copy))  # the migrations bring an older backup to this schema
        try:
            yield store.engine
        finally:
            store.close()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _manifest(conn: Connection) -> dict[str, str]:
    if backups.MANIFEST not in inspect(conn).get_table_names():
        return {}
    return {str(k): str(v) for k, v in conn.execute(text(f"SELECT key, value FROM {backups.MANIFEST}"))}


def _settle(path: Path) -> None:
    """Fold the write-ahead log into the file and leave it self-contained, then flush it to disk."""
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def _plain(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _key_text(key: tuple[Any, ...] | None) -> str:
    if key is None:
        return "()"
    return "(" + ", ".join(str(k) for k in key) + ")"


def _short(value: Any) -> str:
    said = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return said if len(said) <= 80 else said[:77] + "..."
