"""Replay: the state of a mechanism as it stood at an instant, rebuilt from its record alone.

The record's entries up to the instant are applied, in order, to empty tables in an in-memory
SQLite database by the same projection functions the service uses live (:mod:`deconflict.store.projection`),
so what replay shows is by construction what the service showed then. Entry times never go
backwards along a chain (a signed entry is appended at its prepared time only if the chain
has not moved since), so "up to the instant" is a prefix of the chain.

A rebuild may start from a :class:`Start` instead of empty tables: the rows every projected table held
just after entry ``seq`` (a replay snapshot, :mod:`deconflict.store.snapshots`), loaded first; only the
entries after it are applied, and the first of them must name the start's hash as its previous one.

:func:`state` reads the tables into one plain document; the tests take it from the live
database at several instants of a scripted day and compare it with replays of each instant.

:func:`around` is replay around an instant, what the page's time bar shows: the state cut by :func:`live`
(what was in force, open or awaited then, and what ended, closed or was sent in a window before it). From a
snapshot's live piece (that cut at the snapshot's entry, with a wider window) it reads only the piece and the
entries after it, so its cost does not grow with the record; it equals :func:`cut` of :func:`replay` from
entry 1 at every instant (tests/store/test_replay_window.py).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Table, Text, bindparam, create_engine, insert, inspect, select, type_coerce
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex, CreateTable

from deconflict.clock import iso, parse_utc
from deconflict.model import counts_after
from deconflict.record.chain import GENESIS_HASH, EntryType, Head
from deconflict.store import direct, projection
from deconflict.store.json_column import json_text
from deconflict.store.schema import (
    ActivityRow,
    ActivityVersionRow,
    Base,
    ConflictRow,
    KeyRow,
    MechanismRow,
    MemberRow,
    MessageRow,
    UTCDateTime,
    ZoneRow,
)

__all__ = [
    "CONTENT",
    "KEEP",
    "TABLES",
    "WINDOW",
    "Piece",
    "Start",
    "around",
    "content",
    "cut",
    "key_columns",
    "live",
    "shown",
    "live_at",
    "no_collection",
    "rebuild",
    "replay",
    "state",
    "walk",
]

TABLES = {
    "members": MemberRow,
    "keys": KeyRow,
    "zones": ZoneRow,
    "activities": ActivityRow,
    "activity_versions": ActivityVersionRow,
    "conflicts": ConflictRow,
    "messages": MessageRow,
}
"""The projected tables a state document holds, by name."""

CONTENT = {"mechanisms": MechanismRow, **TABLES}
"""Every table the record projects, by name: what a rebuild's start holds (the mechanism's own row too,
which the state document leaves out)."""

BATCH = 2000
"""Entries between two flushes of the rebuilding session (its objects are let go then)."""

T = TypeVar("T")

_ENGINE = create_engine("sqlite://", poolclass=NullPool, json_serializer=json_text)
"""Every connection a new, empty in-memory database; one engine for all rebuilds, so that the statements
the projection and :func:`state` run are compiled once per process, not once per replay (half a replay's
time on a short record)."""


@cache
def _schema() -> tuple[str, ...]:
    """The schema's DDL for SQLite, compiled once (``create_all`` on each new database took 50 ms)."""
    dialect = sqlite.dialect()
    out = []
    for table in Base.metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)))
        out.extend(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
    return tuple(out)


@dataclass(frozen=True)
class Start:
    """Where a rebuild starts: the rows of every table in :data:`CONTENT` just after entry ``seq`` of the
    chain, whose hash is ``hash`` (rows as :func:`content` gives them)."""

    seq: int
    hash: str
    rows: dict[str, list[dict[str, Any]]]


@contextmanager
def no_collection() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a large document is built and used: it would
    otherwise run every few hundred new containers and walk them all (parsing a snapshot took 3.4x the CPU
    with it, and a replay from an 80k-row snapshot 5.9 s instead of about 1 s). What is built here is not
    cyclic (refcounting frees it); what others leave meanwhile is collected once this is over. Collection
    resumes after, and is left off if it was off before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@cache
def _read_rows(model: Any, raw_json: bool = False) -> tuple[Any, tuple[str, ...], tuple[bool, ...], tuple[bool, ...]]:
    """A table's rows of one mechanism in key order (built once): the statement, the names of the columns a row
    is given as, and for each whether it is a time (given as ISO text) and whether it is JSON (given as its
    stored text when ``raw_json``, read by the caller)."""
    table = model.__table__
    column = table.c.mechanism_id if "mechanism_id" in table.c else table.c.id
    shown = [c for c in table.columns if c.name != "mechanism_id"]
    jsons = tuple(raw_json and isinstance(c.type, JSON) for c in shown)
    picked = [type_coerce(c, Text).label(c.name) if j else c for c, j in zip(shown, jsons, strict=True)]
    stmt = select(*picked).where(column == bindparam("mechanism")).order_by(*inspect(model).primary_key)
    return stmt, tuple(c.name for c in shown), tuple(isinstance(c.type, UTCDateTime) for c in shown), jsons


class _Parsed:
    """The JSON texts read at the last two marks of a walk and what they read as, so that a row unchanged since
    the last mark is not parsed again (most of a check's reading): only a walk, whose visits do not change the
    rows they are given, shares them."""

    def __init__(self) -> None:
        self.old: dict[str, Any] = {}
        self.new: dict[str, Any] = {}

    def read(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text  # SQL NULL (None), as SQLAlchemy gives it
        found = self.new.get(text, _UNPARSED)
        if found is _UNPARSED:
            found = self.old.get(text, _UNPARSED)
            if found is _UNPARSED:
                found = json.loads(text)
            self.new[text] = found
        return found

    def turn(self) -> None:
        self.old, self.new = self.new, {}


_UNPARSED = object()
_PARSED: ContextVar[_Parsed | None] = ContextVar("deconflict_replay_parsed", default=None)


def _rows(session: Session, model: Any, mechanism: str) -> list[dict[str, Any]]:
    # read as plain tuples (SQLAlchemy's own result processors, not its rows and mappings): the rows of every
    # table are read at each snapshot a check or a rebuild visits, most of their time
    parsed = _PARSED.get()
    stmt, names, times, jsons = _read_rows(model, parsed is not None)
    found = direct.rows(session.connection(), stmt, {"mechanism": mechanism})
    if parsed is not None and any(jsons):
        read = parsed.read
        return [
            {
                name: read(v) if j else iso(v) if time and v is not None else v
                for name, v, time, j in zip(names, row, times, jsons, strict=True)
            }
            for row in found
        ]
    if not any(times):
        return [dict(zip(names, row, strict=True)) for row in found]
    return [
        {name: iso(v) if time and v is not None else v for name, v, time in zip(names, row, times, strict=True)}
        for row in found
    ]


def state(session: Session, mechanism: str) -> dict[str, Any]:
    """Every projected row of a mechanism, table by table, ordered by primary key, times as ISO text."""
    return {name: _rows(session, model, mechanism) for name, model in TABLES.items()}


def content(session: Session, mechanism: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the record projects for a mechanism (:data:`CONTENT`), as :func:`state` spells rows."""
    return {name: _rows(session, model, mechanism) for name, model in CONTENT.items()}


def _times(model: Any) -> frozenset[str]:
    return frozenset(c.name for c in model.__table__.columns if isinstance(c.type, UTCDateTime))


def _load(session: Session, mechanism: str, start: Start) -> None:
    """Insert a start's rows into empty tables (parents first), times parsed back from their ISO text."""
    for name, model in CONTENT.items():
        rows = start.rows.get(name, [])
        if not rows:
            continue
        times = _times(model)
        owner = "id" if name == "mechanisms" else "mechanism_id"
        out = []
        for row in rows:
            r = {k: (datetime.fromisoformat(v) if k in times and v is not None else v) for k, v in row.items()}
            if owner == "mechanism_id":
                r["mechanism_id"] = mechanism
            out.append(r)
        session.execute(insert(cast(Table, model.__table__)), out)


def _entries_in(
    entries: Iterable[dict[str, Any]], start: int, upto: int | None, at: datetime | None
) -> Iterator[tuple[dict[str, Any], datetime]]:
    """The entries after entry ``start``, up to entry ``upto`` and to the instant ``at`` (each bound
    when given), with each one's time: the range a rebuild applies."""
    for e in entries:
        seq = int(e["seq"])
        if seq <= start:
            continue
        if upto is not None and seq > upto:
            break
        when = e["at"] if isinstance(e["at"], datetime) else parse_utc(e["at"], field="at")
        if at is not None and when > at:
            break
        yield e, when


def _rebuild(
    entries: Iterable[dict[str, Any]],
    *,
    mechanism: str,
    at: datetime | None,
    upto: int | None,
    start: Start | None,
    read: Callable[[Session, str], T],
    marks: Collection[int] = (),
    visit: Callable[[Head, dict[str, list[dict[str, Any]]]], None] | None = None,
) -> tuple[Head, T]:
    """Apply the entries (after ``start``'s, up to ``at`` and to ``upto``) in an in-memory database, then
    read it with ``read``; the head reached and what ``read`` gave. Just after each entry in ``marks``,
    ``visit`` is given the head and the tables' :func:`content`."""
    head = Head(0, GENESIS_HASH) if start is None else Head(start.seq, start.hash)
    with _ENGINE.connect() as conn:
        for ddl in _schema():
            conn.exec_driver_sql(ddl)
        # no flush before a row is looked up or an activity's version updated: the changes are written at the next
        # insert (which flushes, ledger.connection_of), at the marks, every BATCH entries and before ``read``.
        # Nothing the projection reads needs them sooner: it changes conflicts, messages and zones through the
        # objects it looked up (which a later look-up finds in the session), an alert's rung by a statement when
        # no object holds that alert (projection._message_escalated; the statement flushes first), and keys and
        # activities by statements of their own, on tables no object of the session holds
        with Session(bind=conn, autoflush=False) as s, s.begin():
            if start is not None:
                _load(s, mechanism, start)
            applied = 0
            for e, when in _entries_in(entries, start.seq if start is not None else 0, upto, at):
                seq = int(e["seq"])
                if "payload" not in e:
                    raise ValueError(f"entry {e['seq']} has no payload (withheld); replay needs the whole record")
                if start is not None and applied == 0 and (seq != start.seq + 1 or e.get("prev_hash") != start.hash):
                    raise ValueError(f"entry {seq} does not follow entry {start.seq} (hash {start.hash[:12]}...)")
                projection.apply(
                    s,
                    mechanism=mechanism,
                    type=e["type"],
                    payload=e["payload"],
                    at=when,
                    seq=seq,
                    actor=e["actor"],
                )
                head = Head(seq, str(e["hash"]))
                applied += 1
                if visit is not None and seq in marks:
                    s.flush()
                    visit(head, content(s, mechanism))
                if applied % BATCH == 0:
                    s.flush()
                    s.expunge_all()
            s.flush()
            out = read(s, mechanism)
    return head, out


def replay(
    entries: Iterable[dict[str, Any]], *, mechanism: str, at: datetime | None, start: Start | None = None
) -> dict[str, Any]:
    """The state after every entry whose time is at or before ``at`` (all entries when None).

    ``entries`` are entry documents in sequence order (as :func:`deconflict.store.ledger.entry_doc` or a bundle gives
    them), each with its payload; from ``start`` (a snapshot of the tables at an earlier entry), those after
    its entry (the ones it holds are skipped). Returns ``{"mechanism", "at", "head": {"seq", "hash"},
    "entries", **state}``.

    Raises:
        ValueError: an entry has no payload, is of an unknown type, or does not follow ``start``.
    """
    if start is None:
        head, body = _rebuild(entries, mechanism=mechanism, at=at, upto=None, start=None, read=state)
    else:
        head, rows = _from_start(entries, mechanism=mechanism, at=at, upto=None, start=start)
        body = {name: rows[name] for name in TABLES}
    return {
        "mechanism": mechanism,
        "at": iso(at) if at is not None else None,
        "head": {"seq": head.seq, "hash": head.hash},
        **body,
    }


def rebuild(
    entries: Iterable[dict[str, Any]], *, mechanism: str, upto: int, start: Start | None = None
) -> tuple[Head, dict[str, list[dict[str, Any]]]]:
    """The head and every projected row (:func:`content`) after entry ``upto`` (or the last one given),
    from ``start`` or from empty tables: what a replay snapshot holds."""
    if start is None:
        return _rebuild(entries, mechanism=mechanism, at=None, upto=upto, start=None, read=content)
    return _from_start(entries, mechanism=mechanism, at=None, upto=upto, start=start)


SMALL = ("mechanisms", "members", "keys", "zones")
"""Tables of a few rows, loaded whole under the entries applied after a start."""


def _names(value: Any, out: set[str]) -> set[str]:
    """Every string in a payload, at any depth (the ids of the rows an entry touches are among them)."""
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _names(v, out)
    elif isinstance(value, list):
        for v in value:
            _names(v, out)
    return out


def key_columns(name: str) -> tuple[str, ...]:
    """The columns that name a row of table ``name`` (of :data:`CONTENT`) within its mechanism."""
    return tuple(c.name for c in inspect(CONTENT[name]).primary_key if c.name != "mechanism_id")


def _from_start(
    entries: Iterable[dict[str, Any]], *, mechanism: str, at: datetime | None, upto: int | None, start: Start
) -> tuple[Head, dict[str, list[dict[str, Any]]]]:
    """Every projected row after the entries that follow ``start`` (up to ``at`` and ``upto``), without
    loading the whole start: only the rows those entries can touch go into the in-memory tables (the
    small tables whole, and every row whose key is named in their payloads, since an entry names each
    row it changes), the entries are applied by the projection as ever, and the rows read back replace
    the start's (in key order, as :func:`state` orders them). Cost: the start's rows scanned once in
    Python, plus the entries' own work; not a database load and read of the whole state."""
    tail = [e for e, _ in _entries_in(entries, start.seq, upto, at)]
    if not tail:
        return Head(start.seq, start.hash), start.rows
    names: set[str] = set()
    for e in tail:
        _names(e.get("payload"), names)
    keys = {name: key_columns(name) for name in CONTENT}
    touched: dict[str, list[dict[str, Any]]] = {}
    for name in CONTENT:
        rows = start.rows.get(name, [])
        if name in SMALL:
            touched[name] = rows
        else:
            cols = keys[name]
            touched[name] = [r for r in rows if any(r[c] in names for c in cols if isinstance(r[c], str))]
    head, after = _rebuild(
        tail, mechanism=mechanism, at=at, upto=upto, start=Start(start.seq, start.hash, touched), read=content
    )
    with no_collection():
        return head, _merge(start, touched, after, keys)


def _merge(
    start: Start,
    touched: dict[str, list[dict[str, Any]]],
    after: dict[str, list[dict[str, Any]]],
    keys: dict[str, tuple[str, ...]],
) -> dict[str, list[dict[str, Any]]]:
    """The start's rows with those loaded under the entries replaced by what they became (dropped if gone),
    and the new ones, in key order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in CONTENT:
        rows, loaded, now = start.rows.get(name, []), touched[name], after[name]
        if not loaded and not now:
            out[name] = rows
            continue
        key = keys[name]

        def pk(row: dict[str, Any], key: tuple[str, ...] = key) -> tuple[Any, ...]:
            return tuple(row[c] for c in key)

        was = {pk(r) for r in loaded}
        fresh = {pk(r): r for r in now}
        merged = [fresh.get(k, r) for r in rows if (k := pk(r)) not in was or k in fresh]
        new = [r for k, r in fresh.items() if k not in was]
        out[name] = sorted(merged + new, key=pk) if new else merged
    return out


def walk(
    entries: Iterable[dict[str, Any]],
    *,
    mechanism: str,
    marks: Collection[int],
    visit: Callable[[Head, dict[str, list[dict[str, Any]]]], None],
) -> Head:
    """Rebuild from entry 1 in one pass, giving ``visit`` the head and every projected row (:func:`content`)
    just after each entry in ``marks``: how replay snapshots are checked. Returns the head reached. The rows
    given at one mark may share their JSON values with the next mark's: ``visit`` must not change them."""
    parsed = _Parsed()

    def visited(head: Head, rows: dict[str, list[dict[str, Any]]]) -> None:
        visit(head, rows)
        parsed.turn()

    token = _PARSED.set(parsed)
    try:
        head, _ = _rebuild(
            entries, mechanism=mechanism, at=None, upto=None, start=None, read=lambda _s, _m: None, marks=marks,
            visit=visited,
        )  # fmt: skip
    finally:
        _PARSED.reset(token)
    return head


# --- replay around an instant: what the page shows, at a cost that does not grow with the record ------

WINDOW = timedelta(hours=24)
"""The window replay around an instant keeps by default: what ended, was resolved or was sent in the 24 hours
before it (the time bar's reach back), beside everything still in force, open or awaited then."""

KEEP = timedelta(hours=48)
"""The window a snapshot's live piece is cut with (:func:`live` at the snapshot's entry): replay around any
later instant with a window up to this one finds in the piece every row it keeps that the entries after the
snapshot leave untouched."""

WHOLE = ("mechanisms", "members", "keys", "zones")
"""Tables kept whole around an instant (a few rows each; zones withdrawn are kept, as the page reads them)."""


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


LIVE_RULE = 2
"""Which rules :func:`live` cuts by, stored with each snapshot's live piece: 2 keeps an activity cancelled after
``since`` (its conflicts, resolved as cancelled, named it while the state did not list it); 1, before, kept
no cancelled activity. A piece of rule 1 still answers (without those rows, as it did), is checked by its own
rule, and is not the start of a new piece."""


def live(
    rows: dict[str, list[dict[str, Any]]], *, at: datetime, window: timedelta, rule: int = LIVE_RULE
) -> dict[str, list[dict[str, Any]]]:
    """The rows that matter around ``at`` (rows as :func:`content` or :func:`state` spell them; tables not
    given are left out), with ``since = at - window``:

    * members, keys, zones (and the mechanism's row): all;
    * activities whose last window ends after ``since``, and those cancelled after it (the version that
      cancelled it, ``notified_at``; not under ``rule`` 1), with all their versions;
    * conflicts still open or acknowledged, resolved after ``since``, or detected against the version in
      force of an activity kept (a notice seen in part is drawn from those);
    * messages awaiting an acknowledgement (neither acknowledged by all nor closed), and those sent after
      ``since``.

    Each rule holds or fails for a row only through the row itself, ``since`` and the activities kept, so a
    row the entries after ``at`` leave untouched is kept at a later instant (and a window no wider) only if
    it is kept here: a snapshot's piece cut so serves every later instant until the next snapshot.
    """
    since = at - window
    out = {name: rows[name] for name in WHOLE if name in rows}
    if "activities" in rows:
        activities = [
            r
            for r in rows["activities"]
            if (_when(r["end"]) or since) > since
            if r["state"] != "cancelled" or (rule >= 2 and (_when(r["notified_at"]) or since) > since)
        ]
        out["activities"] = activities
        kept = {r["id"]: r["version"] for r in activities}
        if "activity_versions" in rows:
            out["activity_versions"] = [r for r in rows["activity_versions"] if r["activity_id"] in kept]
    else:
        kept = {}
    if "conflicts" in rows:
        out["conflicts"] = [
            r
            for r in rows["conflicts"]
            if r["status"] != "resolved" or (_when(r["resolved_at"]) or since) > since or _current(r, kept)
        ]
    if "messages" in rows:
        out["messages"] = [
            r
            for r in rows["messages"]
            if (r["needs_ack"] and r["acknowledged_at"] is None and r["closed_at"] is None)
            or _when(r["sent_at"]) > since  # type: ignore[operator]
        ]
    return out


def kept_for_reader(conflict: dict[str, Any], *, since: datetime, versions: dict[str, Any]) -> bool:
    """Whether a conflict as a member reads it (status, ``resolved_at``, ``acknowledged`` beside what was
    recorded) stays in that member's picture around an instant whose window starts at ``since``, by the rules of
    :func:`live` and :func:`shown` but judged with the activities that member is shown (``versions``: id →
    version; another party's notice seen in part by the parts seen, :func:`disclosure.listed_part`). The rows
    are cut with every activity's own window, which a member who sees a notice in part, or only the fact of a
    short notice, is not told: kept by it, a conflict (or a notice) stayed in that member's replay until the
    hidden end, to the second."""
    a, b = conflict.get("activity_version"), conflict.get("other_version")
    if (a is not None and versions.get(conflict.get("activity") or "", -1) == a) or (
        b is not None and versions.get(conflict.get("other_activity") or "", -1) == b
    ):
        return True
    if conflict["status"] == "resolved":
        return (_when(conflict.get("resolved_at")) or since) > since
    if conflict["status"] == "acknowledged":
        return counts_after(conflict.get("end"), conflict.get("detected_at"), conflict.get("acknowledged"), since)
    return True


def _current(row: dict[str, Any], versions: dict[str, Any]) -> bool:
    """Whether a conflict was detected against the version in force of an activity kept (id → version)."""
    doc = row["doc"]
    a, b = doc.get("activity_version"), doc.get("other_version")
    return (a is not None and versions.get(row["activity"], -1) == a) or (
        b is not None and versions.get(row["other_activity"] or "", -1) == b
    )


def shown(rows: dict[str, list[dict[str, Any]]], *, at: datetime, window: timedelta) -> dict[str, list[dict[str, Any]]]:
    """What the picture around ``at`` shows of :func:`live`'s rows: the same, but for the conflicts
    acknowledged and never resolved, which count as the live picture counts them (:func:`model.counts_after`
    after ``at - window``, or detected against an activity kept). A live piece keeps every unresolved
    conflict, so that it serves every later instant; those acknowledged stay unresolved for ever when
    nobody resolves them (5,965 in the time bar's picture after 14 months, against 7 in the live one)."""
    since = at - window
    versions = {r["id"]: r["version"] for r in rows.get("activities", [])}
    out = dict(rows)
    if "conflicts" in rows:
        out["conflicts"] = [
            r
            for r in rows["conflicts"]
            if r["status"] != "acknowledged"
            or counts_after(r["doc"].get("end"), r.get("detected_at"), r.get("acknowledged"), since)
            or _current(r, versions)
        ]
    return out


@dataclass(frozen=True)
class Piece:
    """A snapshot's live piece: :func:`live` of every projected row just after entry ``seq`` (hash ``hash``,
    time ``at``), cut with the window ``keep``."""

    seq: int
    hash: str
    at: datetime
    keep: timedelta
    rows: dict[str, list[dict[str, Any]]]


_EXISTING: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    EntryType.ACTIVITY_AMENDED: (("activities", ("id",)),),
    EntryType.ACTIVITY_CANCELLED: (("activities", ("id",)),),
    EntryType.CONFLICT_ACKNOWLEDGED: (("conflicts", ("id",)), ("messages", ("messages",))),
    EntryType.CONFLICT_RESOLVED: (("conflicts", ("id",)), ("messages", ("messages",))),
    EntryType.MESSAGE_SENT: (("conflicts", ("settles", "conflicts")), ("messages", ("settles", "messages"))),
    EntryType.MESSAGE_ACKNOWLEDGED: (("messages", ("id",)),),
    EntryType.MESSAGE_ESCALATED: (("messages", ("id",)),),
}
"""For each entry type that changes rows it does not create: which table's rows, named where in its payload
(a string, or a list of them). The projection (:mod:`deconflict.store.projection`) reads these rows."""

_CREATES = {
    EntryType.ACTIVITY_NOTIFIED: "activities",
    EntryType.CONFLICT_DETECTED: "conflicts",
    EntryType.MESSAGE_SENT: "messages",
}


def _at_path(payload: Any, path: tuple[str, ...]) -> list[str]:
    value = payload
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _missing(tail: list[dict[str, Any]], rows: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    """The rows (by table, by id) that the tail's entries change but the piece does not hold and the tail
    does not create: they are in the history (the snapshot's whole state)."""
    have = {name: {r["id"] for r in rows.get(name, [])} for name in ("activities", "conflicts", "messages")}
    out: dict[str, set[str]] = {}
    for e in tail:
        payload = e.get("payload") or {}
        for name, path in _EXISTING.get(e["type"], ()):
            for key in _at_path(payload, path):
                if key not in have[name]:
                    out.setdefault(name, set()).add(key)
        created = _CREATES.get(e["type"])
        if created is not None and isinstance(payload.get("id"), str):
            have[created].add(payload["id"])
    return out


def _with_history(
    rows: dict[str, list[dict[str, Any]]], missing: dict[str, set[str]], history: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """The piece's rows and, from the whole state, the missing ones (an activity with all its versions)."""
    out = {name: list(r) for name, r in rows.items()}
    for name, keys in missing.items():
        out.setdefault(name, []).extend(r for r in history.get(name, []) if r["id"] in keys)
    acts = missing.get("activities", set())
    if acts:
        out.setdefault("activity_versions", []).extend(
            r for r in history.get("activity_versions", []) if r["activity_id"] in acts
        )
    return out


def around(
    entries: Iterable[dict[str, Any]],
    *,
    mechanism: str,
    at: datetime,
    window: timedelta = WINDOW,
    piece: Piece | None = None,
    history: Callable[[], dict[str, list[dict[str, Any]]]] | None = None,
) -> dict[str, Any]:
    """The state at ``at`` as :func:`replay` gives it, cut by :func:`live` with ``window``: what the page
    shows at an instant, identical to ``cut(replay(...))`` from entry 1.

    From ``piece`` (a snapshot's live piece at or before ``at``, cut with a window at least ``window``), only
    the piece's rows and the entries after it are read: the cost follows what is live and the entries since
    the piece, not the record's age. A row those entries change that the piece does not hold (a late
    acknowledgement of an old message, an old notice amended) is taken from ``history()`` (the whole state at
    the piece's entry), read only then. Without ``piece``, the whole record from entry 1 (the reference).
    Returns the :func:`replay` document with ``"window": {"since", "hours"}``.

    Raises:
        ValueError: as :func:`replay`; or the piece is after ``at``, cut narrower than ``window``, or a row
            it misses is needed and there is no ``history``.
    """
    head, rows = live_at(entries, mechanism=mechanism, at=at, window=window, piece=piece, history=history)
    return _around_doc(mechanism, at, {"seq": head.seq, "hash": head.hash}, rows, window)


def live_at(
    entries: Iterable[dict[str, Any]],
    *,
    mechanism: str,
    at: datetime,
    window: timedelta,
    piece: Piece | None,
    history: Callable[[], dict[str, list[dict[str, Any]]]] | None = None,
    upto: int | None = None,
) -> tuple[Head, dict[str, list[dict[str, Any]]]]:
    """The head reached and :func:`live` at ``at`` of every projected row (:data:`CONTENT`) after the entries
    up to ``at`` (and to entry ``upto``), from ``piece`` as :func:`around` reads it (from entry 1 without):
    what :func:`around` returns, and the live piece of a later snapshot (``window`` its keep, ``upto`` its
    entry and ``at`` that entry's time)."""
    if piece is None:
        head, rows = _rebuild(entries, mechanism=mechanism, at=at, upto=upto, start=None, read=content)
    else:
        if piece.at > at or piece.keep < window:
            raise ValueError(f"the piece at entry {piece.seq} does not serve {iso(at)} with a window of {window}")
        tail = [e for e, _ in _entries_in(entries, piece.seq, upto, at)]
        start = piece.rows
        missing = _missing(tail, start)
        if missing:
            if history is None:
                raise ValueError(f"rows changed after entry {piece.seq} are not in its live piece")
            start = _with_history(start, missing, history())
        # only the rows the tail touches go through the in-memory tables, merged back (as from a snapshot)
        head, rows = _from_start(tail, mechanism=mechanism, at=at, upto=upto, start=Start(piece.seq, piece.hash, start))
    return head, live(rows, at=at, window=window)


def cut(doc: dict[str, Any], *, window: timedelta = WINDOW) -> dict[str, Any]:
    """A :func:`replay` document at an instant cut by :func:`live`: the document :func:`around` gives."""
    at = _when(doc["at"])
    if at is None:
        raise ValueError("replay around an instant needs the instant")
    return _around_doc(doc["mechanism"], at, doc["head"], doc, window)


def _around_doc(
    mechanism: str, at: datetime, head: dict[str, Any], rows: dict[str, Any], window: timedelta
) -> dict[str, Any]:
    kept = shown(live({name: rows[name] for name in TABLES}, at=at, window=window), at=at, window=window)
    return {
        "mechanism": mechanism,
        "at": iso(at),
        "head": head,
        "window": {"since": iso(at - window), "hours": window.total_seconds() / 3600},
        **{name: kept[name] for name in TABLES},
    }
