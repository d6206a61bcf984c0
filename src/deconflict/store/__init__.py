"""Storage: SQLAlchemy engine, migrations (Alembic) and sessions. SQLite by default (a file path), PostgreSQL by URL
(``postgresql://…`` means psycopg 3). Everything below is portable; what is not (SQLite's pragmas, the record's
lock in :mod:`deconflict.store.ledger`) is chosen by dialect.

A PostgreSQL URL may name a primary and its standby, for a failover (docs/standby.md)::

    postgresql://deconflict@/deconflict?host=db1:5432&host=db2:5432&target_session_attrs=read-write

Each new connection goes to whichever of them takes writes now; connections are checked as they leave the
pool, and libpq's options bound how long a silent host is waited for (:data:`FAILOVER_DEFAULTS`)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from deconflict.errors import DeconflictError
from deconflict.store.durable import Durability, GroupSync
from deconflict.store.gate import Gate, sqlite_file, sqlite_uri
from deconflict.store.json_column import json_text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""PostgreSQL URLs without a driver; they mean psycopg 3 (the driver this package depends on)."""


def database_url(db: str) -> str:
    """A database URL from a URL or a plain file path (which means an SQLite file). A PostgreSQL URL without a
    driver gets psycopg 3's (``postgresql+psycopg://``).

    >>> database_url("postgresql://u@db.example/deconflict")
    'postgresql+psycopg://u@db.example/deconflict'
    >>> database_url(":memory:")
    'sqlite:///:memory:'
    >>> database_url("/srv/case 7/a?.db")
    'sqlite:////srv/case%207/a%3F.db'
    """
    for scheme in (*POSTGRES_SCHEMES, "postgresql+psycopg://"):
        if db.startswith(scheme):
            return _hosts_as_query("postgresql+psycopg://" + db.removeprefix(scheme))
    if db.startswith("sqlite:"):
        return db
    if db == ":memory:":  # SQLite's own name for a database in memory, not a file of that name
        return "sqlite:///:memory:"
    if "://" in db:
        scheme = db.split("://", 1)[0]
        raise DeconflictError(
            f"--db: {scheme!r} databases are not supported: give an SQLite file (a path) or a PostgreSQL URL "
            "(postgresql://user@host/database)",
            field="db",
        )
    # quoted: SQLAlchemy takes one quoting off the name, and would read a '?' as the start of options
    return f"sqlite:///{quote(str(Path(db).expanduser().resolve()))}"


def _hosts_as_query(url: str) -> str:
    """libpq's own way of naming several hosts (``postgresql://u@db1:5432,db2:5432/d``) in the form SQLAlchemy
    reads (``postgresql+psycopg://u@/d?host=db1:5432&host=db2:5432``); any other URL as it is.

    >>> _hosts_as_query("postgresql+psycopg://u:p@db1:5432,db2/d?target_session_attrs=read-write")
    'postgresql+psycopg://u:p@/d?host=db1:5432&host=db2&target_session_attrs=read-write'
    """
    rest = url.removeprefix("postgresql+psycopg://")
    location, slash, tail = rest.partition("/")
    user, at, hosts = location.rpartition("@")
    if "," not in hosts:
        return url
    path, _, query = tail.partition("?")
    named = "&".join(f"host={h}" for h in hosts.split(",") if h)
    query = f"{named}&{query}" if query else named
    return f"postgresql+psycopg://{user}{at}/{path}?{query}"


READ_WRITE = ("read-write", "primary")
"""The ``target_session_attrs`` a URL naming several hosts must ask for: only a server that takes writes will
do, whichever host it is on now (after a failover, the promoted standby)."""

FAILOVER_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""libpq's connection options the service sets unless the URL sets them (over TCP; a unix socket ignores
them). libpq's own defaults wait for ever for a host that does not answer, and the kernel's keep-alives
notice a vanished peer after two hours: a server whose machine is lost (no refusal, just silence) would
hold each request, and the next host of a multi-host URL would never be tried. With these, a host that
does not answer a connection is given up after 5 s (then the next host is tried), and a connection whose
peer went silent is dropped within about 20 s (idle: 10 s, then 3 probes 3 s apart; data unacknowledged
for 10 s). Slow queries are not affected: a live peer's kernel answers the probes."""


def connection_options(url: str) -> dict[str, Any]:
    """The driver's connection options for a PostgreSQL ``url``: :data:`FAILOVER_DEFAULTS`, less those the
    URL gives itself.

    Raises:
        DeconflictError: the URL names several hosts but does not ask for the read-write one
        (``target_session_attrs=read-write``): the service could connect to a standby, where every write
        fails.

    >>> sorted(connection_options("postgresql+psycopg://u@db.example/d?connect_timeout=2&keepalives=0"))
    ['keepalives_count', 'keepalives_idle', 'keepalives_interval', 'tcp_user_timeout']
    """
    query = make_url(url).query
    hosts = query.get("host", ())
    count = len(hosts) if isinstance(hosts, tuple) else len(hosts.split(","))
    attrs = query.get("target_session_attrs")
    if count > 1 and attrs not in READ_WRITE:
        raise DeconflictError(
            f"the database URL names {count} hosts but not target_session_attrs=read-write: the service could "
            "connect to a standby, where every write fails; add &target_session_attrs=read-write",
            field="db",
        )
    return {k: v for k, v in FAILOVER_DEFAULTS.items() if k not in query}


BUSY_S = 10.0
"""How long an SQLite connection waits for another process's lock before it gives up."""


def shown_url(db: str) -> str:
    """A database as a message or the log may show it: a path as given, a URL without its password, whether it
    is the user's (``u:***@``) or a ``password=`` option of libpq's in the query.

    >>> shown_url("postgresql://u:secret@db1/d"), shown_url("postgresql://u@/d?host=/run/pg&password=s3")
    ('postgresql://u:***@db1/d', 'postgresql://u@/d?host=/run/pg&password=***')
    """
    if "://" not in db:
        return db
    from urllib.parse import unquote

    url = make_url(db)
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return unquote(url.render_as_string(hide_password=True))  # host=db1:5432, not host=db1%3A5432


def _sqlite_pragmas(synchronous: str | None) -> Callable[[Any, Any], None]:
    """The pragmas of every connection to a SQLite database. A write answered 2xx must survive a power cut
    (else the record would be written again at sequence numbers the parties' mirrors already hold: a fork):
    FULL syncs the write-ahead log inside each commit; NORMAL leaves it to the store's :class:`GroupSync`,
    which syncs it once for every commit made meanwhile, before any of them is answered. None: a reader's
    connection (:func:`open_store`'s ``read_only``), which leaves the file's journal mode as it is (setting
    WAL rewrites the file's header) and refuses every write."""

    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if synchronous is None:
            cur.execute("PRAGMA query_only=ON")
        else:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_S * 1000)}")
        cur.close()

    return pragmas


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def head_revision() -> str:
    """The newest migration's revision, read from the scripts' names (``0013_…py`` is revision ``0013``)
    without loading Alembic: a test holds it equal to Alembic's own head, and every revision to its name."""
    return max(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def _at_head(conn: Connection, where: str) -> bool:
    """Whether the database's schema is already at :func:`head_revision` (then there is nothing to migrate, and
    Alembic, about 0.7 s to import and 20 ms to find that out, is not loaded).

    Raises:
        DeconflictError: a newer release has migrated it beyond the revisions this one knows.
    """
    found = _revisions(conn, where)
    return found == [head_revision()]


def _revisions(conn: Connection, where: str) -> list[str]:
    """The database's schema revisions (none before the first migration); ``where``: the database as the
    user named it.

    Raises:
        DeconflictError: a newer release has migrated it beyond the revisions this one knows; or it is another
            application's database (:func:`refuse_another`).
    """
    if conn.dialect.name == "postgresql":
        tables = list(conn.scalars(_PG_TABLES))
    else:
        seen = inspect(conn)
        tables = seen.get_table_names() + seen.get_view_names()
    found = []
    if "alembic_version" in tables:
        found = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    refuse_another(tables, found, where=where)
    newer = [r for r in found if r > head_revision()]
    if newer:
        raise DeconflictError(
            f"the database's schema is at revision {newer[0]}, written by a newer release of deconflict; this one "
            f"knows revisions up to {head_revision()}. Run the newer release, or restore a backup taken before "
            "the upgrade (deconflict restore)",
            field="db",
        )
    return found


_PG_TABLES = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT EXISTS ("
    "SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
)
"""The tables (and views, sequences, foreign tables: another application's all the same) in the schema a
PostgreSQL session writes to, but those an extension made (PostGIS's ``spatial_ref_sys``: a database made for
deconflict may hold PostGIS)."""

_OUR_REVISION = re.compile(r"\d{4}")
"""How this project names its schema's revisions (``0016``); another application's Alembic names its own."""
_ALWAYS = frozenset({"ledger", "mechanisms"})
"""Tables every revision of this project's schema has held, from the first (``0001``) on."""


def refuse_another(tables: list[str], revisions: list[str], *, where: str) -> None:
    """Refuse a database that holds another application's tables (``tables``: those in it; ``revisions``:
    its Alembic revisions), before anything is written into it: an engineer who gives ``--db`` another
    program's SQLite file or PostgreSQL database must find it as it was, not with deconflict's tables added.
    A database with no table at all is deconflict's to make its record in. A revision named as ours (four digits,
    as ``alembic revision --rev-id 0001`` names another application's too) is ours only beside the tables every
    revision of ours has had since the first (:data:`_ALWAYS`).

    >>> refuse_another(["ledger", "mechanisms", "alembic_version"], ["0016"], where="a.db")
    >>> refuse_another(["notes"], [], where="notes.db")
    Traceback (most recent call last):
    ...
    deconflict.errors.DeconflictError: notes.db is not a deconflict database: it holds another application's \
tables (notes) and no deconflict record, and nothing was written into it. Give deconflict a database of its own: a \
new file (it is made) or an empty PostgreSQL database
    """
    theirs = [r for r in revisions if not _OUR_REVISION.fullmatch(r)]
    named_as_ours = bool(revisions) and not theirs and not _ALWAYS <= set(tables)
    if named_as_ours:
        theirs = revisions  # our revision's name, not its tables: another application's
    others = sorted(t for t in tables if not t.startswith("sqlite_"))
    if not theirs and (revisions or not others):
        return
    if theirs:
        without = ", named as deconflict names its own, without deconflict's tables" if named_as_ours else ""
        held = f"its schema is another application's (Alembic revision {theirs[0]}{without})"
    else:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        held = f"it holds another application's tables ({shown}) and no deconflict record"
    raise DeconflictError(
        f"{where} is not a deconflict database: {held}, and nothing was written into it. Give deconflict a "
        "database of its own: a new file (it is made) or an empty PostgreSQL database",
        field="db",
    )


def _no_record(where: str) -> DeconflictError:
    """A command that reads a record, or writes to one (not the commands that make one), given a database that
    holds none."""
    return DeconflictError(
        f"{where} holds no deconflict record: it is empty (no deconflict server or command has written to it). "
        "Check --db: the file or database your record was written to",
        field="db",
    )


def _refuse_another_file(database: Path, *, need_record: bool = False) -> None:
    """:func:`refuse_another` for an SQLite file, read through a read-only connection of its own before the
    store's first connection (which makes the file a write-ahead-log one, rewriting its header). A file SQLite
    cannot read so is left to that first connection, which says why; one another process holds locked longer
    than the store would wait is refused (the store's connection would switch it before it was looked at).

    ``need_record``: the command writes to a record and makes none (``ledger export``, an import): an empty file
    is refused too, before the store's connection switches it to WAL and fails on a table it lacks.

    Raises:
        DeconflictError: another application's file (:func:`refuse_another`), or one held locked; with
            ``need_record``, one that holds no deconflict record.
    """
    if need_record and database.is_file() and database.stat().st_size == 0:
        raise _no_record(str(database))
    if not database.is_file() or database.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(sqlite_uri(database, "ro"), uri=True, timeout=BUSY_S)) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
            revisions = []
            if "alembic_version" in tables:
                revisions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.OperationalError as e:
        journal = database.with_name(f"{database.name}-journal")
        if "readonly" in str(e) and journal.exists():  # a hot journal, which only a writer may roll back
            raise DeconflictError(
                f"{database}: {journal.name} beside it holds a transaction some program left unfinished, which "
                "must be rolled back before the file can be looked at (open it once with that program, or with "
                "sqlite3); nothing was written",
                field="db",
            ) from None
        if "locked" not in str(e):
            return
        raise DeconflictError(
            f"{database}: another process has held it locked for {BUSY_S:g} s, so it could not be looked at "
            "before anything is written into it; nothing was written. Try again once that process lets it go",
            field="db",
        ) from None
    except sqlite3.Error:
        return
    refuse_another(tables, [str(r) for r in revisions], where=str(database))
    if need_record and not revisions:
        raise _no_record(str(database))


def _migrate(engine: Engine, where: str) -> None:
    """The schema brought to the newest revision by Alembic, in one transaction, unless it is there already."""
    with engine.begin() as conn:
        if _at_head(conn, where):
            return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """A database with the schema migrated to the latest revision."""

    def __init__(self, engine: Engine, durable: Durability | None = None, *, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only
        """Opened for a command that only reads (:func:`open_store`'s ``read_only``): the database refuses writes."""
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.gate = Gate(engine)
        """One writer at a time per record, across processes, for a whole use case (:mod:`.gate`)."""
        self.durable = durable or Durability()
        """When a commit is on the disk (:mod:`.durable`): group commit on a SQLite file."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose changes are committed together, or not at all; on leaving, they are on the disk
        (or, inside :meth:`Durability.deferred`, will be when the block ends)."""
        durable = self.durable
        if type(durable) is Durability:
            with self._sessions.begin() as session:
                yield session
            return
        ticket = 0
        try:
            with self._sessions.begin() as session:
                yield session
                if _writes(session):
                    ticket = durable.begin_commit()  # before the commit: a read that sees it waits for its sync
        finally:
            if ticket:
                durable.end_commit(ticket)
        if not durable.deferring:
            durable.wait(ticket or durable.newest)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session to read in; on leaving, what it could read is on the disk (nothing is answered that a
        power cut could take back)."""
        with self._sessions() as session:
            yield session
        if not self.durable.deferring:
            self.durable.wait(self.durable.newest)

    def close(self) -> None:
        """Every commit put on the disk (unless the disk has failed: said in the log already), then closed."""
        try:
            self.durable.sync()
        except DeconflictError:  # the disk failed (said in the log already): nothing more can be synced
            pass
        finally:
            self.durable.close()
            self.engine.dispose()


def _writes(session: Session) -> bool:
    """Whether a SQLite session's transaction wrote anything (its pending changes flushed first): the driver
    begins a transaction at the first statement that writes."""
    session.flush()
    dbapi = session.connection().connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", True))


def open_store(
    db: str, *, migrate: bool = True, group_commit: bool = False, read_only: bool = False, need_record: bool = False
) -> Store:
    """Open (and create or upgrade) the database at a URL or SQLite file path. ``group_commit`` (a SQLite
    file; the service sets it): one sync of the write-ahead log for every commit made meanwhile, each answered
    only once it is on the disk (:class:`GroupSync`), instead of a sync inside each commit.

    ``read_only`` (the commands that only read: an investigator's check, replay or report of a copy that is
    evidence): nothing is migrated or written, and the database refuses any write. An SQLite file is opened
    read-only (its bytes stay as they were: a hash taken before still holds after) and must exist; a
    PostgreSQL session is a read-only transaction's. Both refuse a database that holds no record.

    ``need_record`` (a command that writes to a record and makes none: ``ledger export``, an import, ``keys
    register``): a database that holds no record is refused, as a reader refuses it, before anything is written
    (an empty SQLite file was switched to WAL, then failed on a table it lacks)."""
    url = database_url(db)
    database = sqlite_file(make_url(url))
    if database is not None and not database.parent.is_dir():
        raise DeconflictError(f"database folder {database.parent} does not exist")
    where = str(database) if database is not None else shown_url(db)  # as the user gave it, its password hidden
    if database is not None and not read_only:
        _refuse_another_file(database, need_record=need_record)
    if url.startswith("sqlite"):
        if read_only and database is not None:
            url = _read_only_url(database, make_url(url).query)
        engine = create_engine(url, json_serializer=json_text)
    else:
        # A server's connections may be cut (a restart, a failover): check each one as it leaves the pool.
        # A reader's transactions are read-only ones (psycopg's, set on the connection: no startup option that
        # a pooler in between might refuse)
        engine = create_engine(
            url,
            pool_pre_ping=True,
            connect_args=connection_options(url),
            json_serializer=json_text,
            execution_options={"postgresql_readonly": True} if read_only else {},
        )
    durable: Durability | None = None
    if engine.dialect.name == "sqlite":
        if group_commit and database is not None and not read_only:
            durable = GroupSync(database)
        synchronous = None if read_only else "FULL" if durable is None else "NORMAL"
        event.listen(engine, "connect", _sqlite_pragmas(synchronous))
    try:
        if migrate and not read_only:
            _migrate(engine, where)
        elif engine.dialect.name != "sqlite" or (database is not None and database.exists()):
            # a server that does not answer is said so here, not by the first query; and a database a newer
            # release migrated is refused before anything is read or written in it
            with engine.connect() as conn:
                if not _revisions(conn, where) and (read_only or need_record):
                    raise _no_record(where)
    except DeconflictError:  # a newer release's database
        engine.dispose()
        raise
    except OperationalError as e:  # no server answers (for a multi-host URL: none that takes writes)
        engine.dispose()
        if engine.dialect.name == "sqlite":
            raise
        raise DeconflictError(f"the database is not reachable: {unreachable(e)}", field="db") from e
    store = Store(engine, durable, read_only=read_only)
    if durable is not None and migrate:
        durable.committed()  # the migrations' commits, on the disk before anything is served
        durable.sync()
    return store


def _read_only_url(database: Path, query: Mapping[str, str | tuple[str, ...]]) -> str:
    """SQLAlchemy's URL of the SQLite file ``database`` opened read-only (SQLite's ``mode=ro`` URI; the URL's own
    options kept): the path quoted for the URI, and once more for SQLAlchemy, which takes one quoting off the
    database's name.

    A file in write-ahead-log mode on a folder this process cannot write (evidence on read-only media): SQLite
    cannot make the shared-memory file such a file is read through, so it is read as immutable, what it is
    there, when no log beside it holds commits the file does not.

    Raises:
        DeconflictError: no such file; or its log holds commits that cannot be read where it is.
    """
    if not database.is_file():
        raise DeconflictError(f"{database}: no such database file", field="db")
    options = {k: v for k, v in query.items() if k not in ("mode", "immutable", "uri")}
    if not _readable_in_place(database):
        log = database.with_name(f"{database.name}-wal")
        if log.exists() and log.stat().st_size > 0:
            raise DeconflictError(
                f"{database}: it is in write-ahead-log mode and {log.name} beside it holds commits, on a folder "
                "this process cannot write (read-only media?), where SQLite cannot read them: copy the file with "
                f"its {log.name} into a folder you can write, and read the copy",
                field="db",
            )
        options["immutable"] = "1"
    return f"sqlite:///file:{quote(quote(str(database)))}?{urlencode({**options, 'mode': 'ro', 'uri': 'true'}, True)}"


def _readable_in_place(database: Path) -> bool:
    """Whether SQLite opens ``database`` read-only where it is (False: a file in write-ahead-log mode on a folder
    that cannot be written, such as read-only media). A file that is no database is said so later, by the use."""
    try:
        with closing(sqlite3.connect(sqlite_uri(database, "ro"), uri=True)) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        return "unable to open" not in str(e)
    except sqlite3.DatabaseError:
        return True
    return True


def unreachable(e: DBAPIError) -> str:
    """Why a connection failed, in one line: each host the driver tried and what it said (``db1:5432:
    Connection refused; db2:5432: session is read-only``), or the driver's first line.

    >>> from psycopg import OperationalError as Failed
    >>> said = "connection failed: ...\\nMultiple connection attempts failed. All failures were:\\n"
    >>> said += "- host: 'db1', port: '5432', hostaddr: '10.0.0.1': connection failed: connection to server "
    >>> said += 'at "10.0.0.1", port 5432 failed: Connection refused\\n\\tIs the server running on that host?\\n'
    >>> said += "- host: 'db2', port: '5432', hostaddr: '10.0.0.2': connection failed: connection to server "
    >>> said += 'at "10.0.0.2", port 5432 failed: session is read-only'
    >>> unreachable(OperationalError("connect", None, Failed(said)))
    'db1:5432: Connection refused; db2:5432: session is read-only'
    """
    lines = [line.strip() for line in str(e.orig if e.orig is not None else e).splitlines() if line.strip()]
    hosts = [re.match(r"- host: '([^']*)', port: '([^']*)'.* failed: (.*)$", line) for line in lines]
    tried = [f"{m[1]}:{m[2]}: {m[3]}" for m in hosts if m is not None]
    return "; ".join(tried) if tried else (lines[0] if lines else type(e).__name__)
