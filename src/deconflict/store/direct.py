"""The few statements every write runs, executed on SQLite's own cursor: compiled once by SQLAlchemy, their
values turned into the driver's by SQLAlchemy's own bind processors (and the rows read back by its result
processors), without SQLAlchemy's execution layer around each call (its execution context, cursor result
and events: about 60 µs a statement here, several times SQLite's own work for an indexed lookup or a
one-row insert).

Only on SQLite, inside the transaction the caller's connection already holds (the driver's implicit
``BEGIN`` and SQLAlchemy's commit are unchanged, and so are the statements' text and values). Anything
else goes through ``execute`` as before: another database, a stand-in for a connection (restore's batching
session), a statement whose compiled form asks for more than plain positional values (a Python-side column
default, an expanding ``IN``), or a call whose values name a parameter the statement lacks. A driver error
is raised as SQLAlchemy would raise it (``IntegrityError``, ``OperationalError``: the same classes, the
same statement and values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, exc
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import Executable

from deconflict.store.schema import UTCDateTime

__all__ = ["Gathered", "gathered", "rows", "run"]

_MISSING = object()


@dataclass(frozen=True)
class _Form:
    """A statement compiled for SQLite: its text, and for each positional value where it comes from."""

    sql: str
    names: tuple[str, ...]
    """The values' names in order (the caller's keys), or ``""`` where the statement holds the value."""
    constants: tuple[Any, ...]
    """The value the statement holds, at the places named ``""``."""
    binders: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]


_FORMS: dict[tuple[int, tuple[str, ...], int], tuple[Executable, _Form | None]] = {}
"""(statement's id, the value names a call gives, the dialect's JSON serializer's id) → (the statement, kept
alive; its form, None: not plain)."""
MOST_FORMS = 512
"""How many compiled forms are kept: the hot statements are built once, but a caller that built a statement
per call would otherwise keep every one alive here."""


def _form(conn: Connection, stmt: Executable, keys: tuple[str, ...]) -> _Form | None:
    # the bind processors are the dialect's: an engine that writes its JSON columns otherwise compiles its own
    key = (id(stmt), keys, id(getattr(conn.dialect, "_json_serializer", None)))
    found = _FORMS.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    form = _compile(conn, stmt, keys)
    if len(_FORMS) >= MOST_FORMS:
        _FORMS.clear()
    _FORMS[key] = (stmt, form)
    return form


def _compile(conn: Connection, stmt: Executable, keys: tuple[str, ...]) -> _Form | None:
    dialect = conn.dialect
    compiled: Any = cast(ClauseElement, stmt).compile(dialect=dialect, column_keys=list(keys))
    if (
        compiled.positiontup is None
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
    ):
        return None
    names: list[str] = []
    constants: list[Any] = []
    binders: list[Callable[[Any], Any] | None] = []
    processors = compiled._bind_processors
    for name in compiled.positiontup:
        bind = compiled.binds.get(name)
        if bind is None or bind.expanding or bind.callable is not None:
            return None
        if name in keys:
            names.append(name)
            constants.append(None)
        elif not bind.required:
            names.append("")
            constants.append(bind.effective_value)
        else:
            return None
        binders.append(_fused(bind.type, dialect, processors.get(name)) or processors.get(name))
    unused = set(keys) - set(names)
    if unused:  # a value the statement does not take: SQLAlchemy's answer (it may refuse), not ours
        return None
    results = tuple(column[3]._cached_result_processor(dialect, None) for column in (compiled._result_columns or ()))
    return _Form(compiled.string, tuple(names), tuple(constants), tuple(binders), results)


_SQLITE_DATETIME = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
"""SQLAlchemy's text of a datetime on SQLite (its ``DATETIME``'s default storage format)."""


def _utc_sqlite_text(value: datetime | None) -> str | None:
    """What :class:`~deconflict.store.schema.UTCDateTime`'s bind processor on SQLite makes of ``value`` (the
    instant in UTC, as SQLAlchemy's ``DATETIME`` writes it), in one step instead of two closures, a
    conversion that changes nothing for the service's UTC instants, a copy and a dictionary formatted: every
    entry writes two or three of them. The same text to the byte (``tests/store/test_direct.py``), and the
    same refusal of a naive datetime."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use aware UTC")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _fused(kind: Any, dialect: Any, compiled: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """A bind processor equivalent to the one SQLAlchemy compiles for ``kind`` on ``dialect`` (``compiled``), and
    quicker; None where there is none (SQLAlchemy's is used)."""
    if dialect.name != "sqlite":
        return None
    if isinstance(kind, JSON) and compiled is not None:
        return _json_binder(kind, dialect, compiled)
    if not isinstance(kind, UTCDateTime):
        return None
    impl = kind.impl_instance.dialect_impl(dialect)
    if getattr(impl, "_storage_format", None) != _SQLITE_DATETIME:  # a DATETIME told to write another text
        return None
    return _utc_sqlite_text


def _json_binder(kind: JSON, dialect: Any, compiled: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    """A JSON column's bind processor: a document (a dict or a list) given straight to the dialect's serializer,
    as SQLAlchemy's processor does once it has looked for its null markers (which are neither), and anything
    else to SQLAlchemy's. None when SQLAlchemy's would also convert the serializer's text (not on SQLite)."""
    serializer = getattr(dialect, "_json_serializer", None)
    if serializer is None or kind._str_impl.bind_processor(dialect) is not None:
        return None

    def bind(value: Any) -> Any:
        if value.__class__ is dict or value.__class__ is list:
            return serializer(value)
        return compiled(value)

    return bind


def _values(form: _Form, params: Mapping[str, Any]) -> tuple[Any, ...]:
    out = []
    for name, constant, binder in zip(form.names, form.constants, form.binders, strict=True):
        value = params[name] if name else constant
        out.append(binder(value) if binder is not None else value)
    return tuple(out)


def _execute(conn: Connection, form: _Form, params: Mapping[str, Any]) -> Any:
    values = _values(form, params)
    driver = conn.connection.dbapi_connection
    assert driver is not None
    try:
        return driver.execute(form.sql, values)
    except conn.dialect.loaded_dbapi.Error as e:
        raise exc.DBAPIError.instance(
            form.sql, values, e, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect, ismulti=False
        ) from e


@dataclass
class Gathered:
    """The inserts :func:`run` was given on one connection inside :func:`gathered`, not yet executed: each
    statement's rows are executed together by :meth:`flush` (``executemany``: one prepared statement, one
    cursor), the statements in the order of their first row, each statement's rows in the order they came.
    So rows of different statements may be inserted in another order than they came: gather only inserts
    whose order across tables does not matter (a batch's ledger rows and the rows its entries add to the
    tables, each table's first row coming after the rows it refers to)."""

    conn: Connection
    pending: dict[str, tuple[_Form, list[tuple[Any, ...]]]] = field(default_factory=dict)

    def add(self, form: _Form, values: tuple[Any, ...]) -> None:
        kept = self.pending.get(form.sql)
        if kept is None:
            self.pending[form.sql] = (form, [values])
        else:
            kept[1].append(values)

    def flush(self) -> None:
        """Execute every insert gathered so far (a driver error raised as :func:`run` would raise it, the
        statement's rows given as an executemany's)."""
        pending, self.pending = self.pending, {}
        driver = self.conn.connection.dbapi_connection
        assert driver is not None
        dialect = self.conn.dialect
        for form, values in pending.values():
            try:
                driver.executemany(form.sql, values).close()
            except dialect.loaded_dbapi.Error as e:
                raise exc.DBAPIError.instance(
                    form.sql, values, e, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=True
                ) from e


_GATHERING: ContextVar[Gathered | None] = ContextVar("deconflict_direct_gathering", default=None)


@contextmanager
def gathered(conn: Connection) -> Iterator[Gathered | None]:
    """Inside the block, the plain inserts :func:`run` is given on ``conn`` (SQLite only) wait in the
    :class:`Gathered` it yields, and are executed together when the caller calls its ``flush`` or when
    :func:`rows` reads on ``conn`` (a read sees every row written before it); on another database it
    yields None and changes nothing. What is still waiting when the block ends is dropped: the caller
    flushes before it commits, and a block left by an exception rolls its transaction back anyway.

    Only for a run of writes that read nothing through the ORM meanwhile (the ORM's reads do not pass here
    and would not see the rows waiting): a busy hotline's batch of messages, each a ledger row and a
    messages row, 2 inserts a message that a batch of 8 makes in 2 calls instead of 16; a batch of
    notices, each about 18 inserts into 5 tables (at 2.6 conflicts a notice), a batch of 8 in 5 calls."""
    if not _sqlite(conn):
        yield None
        return
    kept = Gathered(conn)
    token = _GATHERING.set(kept)
    try:
        yield kept
    finally:
        _GATHERING.reset(token)


def _sqlite(conn: object) -> bool:
    """Whether ``conn`` is SQLAlchemy's connection to SQLite (not a stand-in, such as restore's batching
    session, which gathers the statements it is given)."""
    return isinstance(conn, Connection) and conn.dialect.name == "sqlite"


def run(conn: Connection, stmt: Executable, params: Mapping[str, Any] | None = None) -> None:
    """Execute a statement that returns no rows (an insert, an update) with ``params``."""
    params = params if params is not None else {}
    form = _form(conn, stmt, tuple(params)) if _sqlite(conn) else None
    gathering = _GATHERING.get()
    if gathering is not None and gathering.conn is conn:
        if form is not None and form.sql.startswith("INSERT "):
            gathering.add(form, _values(form, params))
            return
        gathering.flush()  # anything else runs after what was gathered before it
    if form is None:
        conn.execute(stmt, params)  # the Mapping as the caller gave it (restore's batching session keeps it)
        return
    _execute(conn, form, params).close()


def rows(conn: Connection, stmt: Executable, params: Mapping[str, Any] | None = None) -> Sequence[tuple[Any, ...]]:
    """The rows a query returns with ``params``, each a tuple of its columns' values as SQLAlchemy reads them."""
    params = params if params is not None else {}
    form = _form(conn, stmt, tuple(params)) if _sqlite(conn) else None
    gathering = _GATHERING.get()
    if gathering is not None and gathering.conn is conn:
        gathering.flush()  # a read sees every row written before it
    if form is None:
        return [tuple(row) for row in conn.execute(stmt, params)]
    cursor = _execute(conn, form, params)
    try:
        found = cursor.fetchall()
    finally:
        cursor.close()
    results = form.results
    if not any(results):
        return found
    return [tuple(p(v) if p is not None else v for p, v in zip(results, row, strict=True)) for row in found]
