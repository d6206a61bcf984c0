"""What every command module shares: errors worded for a person, input readers, output lines, parsers
for the times and altitudes people type, and the way to the database (through the service only).

Nothing here imports more than the standard library and Typer at load time, so that
``deconflict --help`` starts fast; each helper imports what it needs when it runs.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, TypeVar, cast, overload

import typer

from deconflict.errors import DeconflictError
from deconflict.units import FT_M

if TYPE_CHECKING:
    from deconflict.service import Service

__all__ = [
    "chosen_mechanism",
    "BIDI_CONTROLS",
    "DEFAULT_DB",
    "catch_up",
    "unserved_since",
    "DbFileOpt",
    "MechanismChoiceOpt",
    "shown_db",
    "MechanismChoiceOpt",
    "MechanismIdOpt",
    "chosen_mechanism",
    "TerminalGuard",
    "activity_head",
    "fail",
    "guard_stdout",
    "instant_text",
    "natural_key",
    "open_service",
    "parse_altitude",
    "parse_instant",
    "parse_shift",
    "parse_time_option",
    "read_json",
    "read_text",
    "safe_text",
    "say",
    "user_errors",
    "utc_text",
    "window_text",
]

DEFAULT_DB = "deconflict-demo.db"
"""The database the demo writes, and that the record commands read unless told otherwise."""

DbFileOpt = Annotated[str, typer.Option(help="SQLite file or database URL.")]
MechanismIdOpt = Annotated[str, typer.Option(help="Mechanism id.")]
MechanismChoiceOpt = Annotated[
    str | None, typer.Option("--mechanism", help="Mechanism id (default: the only one the database holds).")
]

F = TypeVar("F", bound=Callable[..., Any])


# --- errors --------------------------------------------------------------------------------------


def fail(message: str) -> typer.Exit:
    """Print an error for a person on stderr and return the exit to raise (code 2)."""
    typer.echo(f"error: {safe_text(message, lines=True)}", err=True)
    return typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn domain errors and unreadable files into a one-line message and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeconflictError as e:
            raise fail(e.message) from None
        except BrokenPipeError:
            _reader_gone()
            raise typer.Exit(0) from None
        except OSError as e:
            raise fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None
        except Exception as e:
            httpx = sys.modules.get("httpx")
            if httpx is not None and isinstance(e, httpx.InvalidURL):  # an id given that no address can hold
                raise fail(f"the request could not be made: {e} (an id or option given is far too long?)") from None
            if httpx is not None and isinstance(e, httpx.TransportError):
                raise fail(
                    f"the service did not answer ({type(e).__name__}: {e}); is it running at that address?"
                ) from None
            sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
            if sqlalchemy_exc is not None and isinstance(e, sqlalchemy_exc.DBAPIError):
                # a file that is not a database, another program's, one on a read-only disk, or a server that
                # refused: the database's own words, and what to check (was a traceback)
                said = str(e.orig).strip().splitlines()[0] if e.orig is not None else type(e).__name__
                raise fail(
                    f"the database refused: {said}; check --db (a deconflict database, file or URL, that this user "
                    "may read and write)"
                ) from None
            raise

    return wrapper  # type: ignore[return-value]


# --- input ---------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The UTF-8 text of a file, or of stdin for ``-`` (a byte order mark at its start left out).

    Raises:
        DeconflictError: no such file, a folder, or not UTF-8.
    """
    if str(path) == "-":
        return sys.stdin.read().removeprefix("\ufeff")
    if not path.exists():
        raise DeconflictError(f"{path}: no such file")
    if path.is_dir():
        raise DeconflictError(f"{path}: is a folder, not a file")
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte order mark, as some editors save UTF-8, read past
    except UnicodeDecodeError:
        raise DeconflictError(f"{path}: not UTF-8 text") from None


def read_json(path: Path) -> Any:
    """The JSON document in a file (or stdin for ``-``).

    Raises:
        DeconflictError: as :func:`read_text`, or not JSON (with the line of the first fault).
    """
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DeconflictError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None


@overload
def parse_instant(value: str, option: str) -> datetime: ...
@overload
def parse_instant(value: str | None, option: str) -> datetime | None: ...
def parse_instant(value: str | None, option: str) -> datetime | None:
    """An optional ISO 8601 UTC instant given to ``option`` (None stays None).

    Raises:
        InvalidInput: not a time with its zone.
    """
    from deconflict.clock import parse_utc

    return None if value is None else parse_utc(value, field=option)


def parse_time_option(value: str, option: str) -> datetime:
    """An ISO 8601 UTC instant given to ``option``; the error shows how to write one.

    Raises:
        DeconflictError: not a time with its zone.
    """
    from deconflict.clock import parse_utc
    from deconflict.errors import InvalidInput

    try:
        return parse_utc(value, field=option)
    except InvalidInput:
        raise DeconflictError(
            f"{option}: {value!r} is not a time; give date and time in UTC with a Z, e.g. 2026-12-02T08:00Z",
            field=option,
        ) from None


def parse_altitude(value: str, option: str) -> float:
    """Metres above mean sea level from '1500', '1500m', '5000ft' or 'FL120' (hundreds of feet).

    >>> parse_altitude("FL100", "--floor")
    3048.0

    Raises:
        DeconflictError: not an altitude, or a number with separators ('1.000' reads two ways).
    """
    import math
    import re

    text = value.strip().lower().replace(" ", "").replace("_", "")
    number = text.removeprefix("fl").removesuffix("ft").removesuffix("m")
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", number) or "," in number:
        # '1.000' is one thousand to a Turkish reader and one to an English one: say which, never guess
        raise DeconflictError(
            f"{option}: {value!r} is ambiguous; write the number without separators (1000 or 1.5), in metres, "
            "feet (5000ft) or a flight level (FL120)",
            field=option,
        )
    try:
        if text.startswith("fl"):
            metres = float(text[2:]) * 100 * FT_M
        elif text.endswith("ft"):
            metres = float(text[:-2]) * FT_M
        else:
            metres = float(text[:-1] if text.endswith("m") else text)
    except ValueError:
        metres = math.nan
    if not math.isfinite(metres):
        raise DeconflictError(
            f"{option}: {value!r} is not an altitude; give metres above sea level (1500), feet (5000ft) "
            "or a flight level (FL120)",
            field=option,
        )
    return round(metres, 1)


def parse_shift(value: str) -> timedelta:
    """A signed duration given to --shift: +2h, -30m, 1h30m, +90m, 45s.

    >>> parse_shift("-1h30m")
    datetime.timedelta(days=-1, seconds=81000)

    Raises:
        DeconflictError: not a duration.
    """
    import re

    found = re.fullmatch(r"\s*([+-]?)\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?:in)?)?\s*(?:(\d+)s)?\s*", value)
    if not found or not any(found.groups()[1:]):
        raise DeconflictError(
            f"--shift: {value!r} is not a duration; write it like +2h, -30m or +1h30m (later with +, earlier with -)",
            field="--shift",
        )
    sign, h, m, s = found.groups()
    delta = timedelta(hours=float(h or 0), minutes=float(m or 0), seconds=int(s or 0))
    return -delta if sign == "-" else delta


# --- output --------------------------------------------------------------------------------------


BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Characters that reorder the text around them: embeddings, overrides, isolates and marks."""


def safe_text(value: object, *, lines: bool = False) -> str:
    r"""``value`` as text that cannot drive a terminal: what a member wrote (a message, a title, a note, an
    id) is printed through this, so an escape sequence cannot clear the screen or retitle the window, a
    carriage return or line feed cannot forge a line, and a bidi override cannot reorder what follows.

    C0 controls (ESC, CR, LF, BEL, tab...) and DEL become their visible control pictures (``␛``, ``␍``,
    ``␊``); C1 controls, bidi controls and the Unicode line and paragraph separators become ``\uXXXX``
    (the same text in a JSON string, so JSON output keeps its data). With ``lines``, line feeds and tabs
    are kept (a whole block of the command's own output, see :func:`say`).

    >>> safe_text("a\x1b[2Jb\rFORGED \u202eabc")
    'a␛[2Jb␍FORGED \\u202eabc'
    >>> safe_text("one\ntwo", lines=True), safe_text("one\ntwo")
    ('one\ntwo', 'one␊two')
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to do (printable excludes controls and bidi marks)
        return text
    return (_UNSAFE_IN_LINES if lines else _UNSAFE).sub(_shown, text)


def _unsafe(keep: str) -> re.Pattern[str]:
    """The characters :func:`safe_text` replaces (C0, DEL, C1, bidi controls, line and paragraph
    separators), but those in ``keep``: one pass in C over a whole output, however long."""
    chars = [chr(o) for o in (*range(0x20), *range(0x7F, 0xA0))] + sorted(BIDI_CONTROLS) + ["\u2028", "\u2029"]
    return re.compile("[" + "".join(re.escape(c) for c in chars if c not in keep) + "]")


_UNSAFE = _unsafe("")
_UNSAFE_IN_LINES = _unsafe("\n\t")


def _shown(match: re.Match[str]) -> str:
    o = ord(match.group())
    if o < 0x20:
        return chr(0x2400 + o)  # its control picture: ␛, ␍, ␊...
    if o == 0x7F:
        return "\u2421"
    return f"\\u{o:04x}"  # C1, bidi, separators: as in a JSON string


class TerminalGuard(io.TextIOBase):
    """A text stream that writes through :func:`safe_text` (lines kept) to another: every command that
    prints what members wrote (hotline, activities, conflicts, report, timeline, replay...) goes through it,
    whichever way it prints (``say``, ``typer.echo``, ``print``). ``deconflict demo`` and ``serve`` keep
    the plain stream (their console output is the program's own, with colours)."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.inner, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # a text stream: click tells text from binary streams this way
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.inner.write(safe_text(text, lines=True))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True


def guard_stdout() -> None:
    """Route stdout through :class:`TerminalGuard` (once)."""
    if not isinstance(sys.stdout, TerminalGuard):
        sys.stdout = TerminalGuard(sys.stdout)


def say(line: str = "") -> None:
    """One line to stdout, flushed at once (a pipe or a file sees it now); a closed pipe ends quietly.
    Controls and bidi overrides in it are neutralised (:func:`safe_text`; line feeds kept)."""
    try:
        sys.stdout.write(safe_text(line, lines=True) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
        raise typer.Exit(0) from None


class _ReaderMayGo:
    """Standard output that, once its reader has gone (``| head``), drops what is written instead of raising:
    the command goes on to its end (:func:`output_may_be_cut`)."""

    def __init__(self, real: TextIO) -> None:
        self._real = real
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._real.write(text)
            except BrokenPipeError:
                self._went()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._real.flush()
            except BrokenPipeError:
                self._went()

    def _went(self) -> None:
        self.gone = True
        _reader_gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def output_may_be_cut() -> Iterator[None]:
    """Inside the block, a reader of standard output that goes away (``deconflict ledger verify ... | head``)
    does not end the command: what follows is dropped and the command reaches its verdict, which its exit status
    then gives (a verifier that stopped at the first write the pipe refused exited 0, its verdict never reached)."""
    real = sys.stdout
    sys.stdout = cast(TextIO, _ReaderMayGo(real))
    try:
        yield
    finally:
        sys.stdout = real


def _reader_gone() -> None:
    """The reader of stdout went away (``| head``): what is still buffered goes nowhere, so the command ends
    quietly, without an error or a traceback at exit."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def utc_text(value: Any) -> str:
    """An instant as ISO 8601 UTC to the second, ``-`` for none (the Z says UTC; no microseconds).

    >>> utc_text("2026-12-02T10:00:00.250+02:00")
    '2026-12-02T08:00:00Z'
    """
    from deconflict.clock import parse_utc

    if not value:
        return "-"
    t = parse_utc(value, field="time")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def instant_text(value: Any) -> str:
    """An instant as ISO 8601 UTC, to the second when it falls on one, else with its fraction (an instant asked
    for, said back as asked: to the second it could name another state).

    >>> instant_text("2026-12-02T10:00:00+02:00"), instant_text("2026-12-02T10:00:00.8Z")
    ('2026-12-02T08:00:00Z', '2026-12-02T10:00:00.800Z')
    >>> instant_text("2026-12-02T10:00:00.000250Z")
    '2026-12-02T10:00:00.000250Z'
    """
    from deconflict.clock import parse_utc

    t = parse_utc(value, field="time")
    spec = "seconds" if not t.microsecond else "milliseconds" if not t.microsecond % 1000 else "microseconds"
    return t.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def window_text(start: Any, end: Any) -> str:
    """A window from ``start`` to ``end`` (either may be missing), with the date once if it is one day.

    >>> window_text("2026-12-02T08:00:00Z", "2026-12-02T10:00:00Z")
    '2026-12-02 08:00:00Z–10:00:00Z'
    """
    a, b = (utc_text(start) if start else "open"), (utc_text(end) if end else "open-ended")
    if a[:10] == b[:10]:
        return f"{a[:10]} {a[11:]}–{b[11:]}"  # one day: the date once
    return f"{a} – {b}"


def activity_head(a: dict[str, Any]) -> str:
    """The start of an activity's line in a listing: id, party, kind and version."""
    return f"{a['id']}  {a['party']}  {a['kind']}  v{a['version']}"


def natural_key(value: str) -> tuple[Any, ...]:
    """Sort key that puts M2 before M10 (numbers inside ids compared as numbers).

    >>> sorted(["M10", "M2"], key=natural_key)
    ['M2', 'M10']
    """
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value))


# --- the database, through the service ----------------------------------------------------------


def chosen_mechanism(service: Service, mechanism: str | None, db: str, *, with_record: bool = False) -> str:
    """``mechanism``, or the only mechanism the database holds when it is None; ``with_record``: among
    the mechanisms with a record only, and ``mechanism`` must have one.

    Raises:
        DeconflictError: none given and the database holds none, or several (they are named); or, with
            ``with_record``, the one given has no record.
    """
    if mechanism is not None and not with_record:
        return mechanism
    ids = service.record_ids() if with_record else service.mechanism_ids()
    if mechanism is not None:
        if mechanism not in ids:
            raise DeconflictError(
                f"mechanism {mechanism!r} has no record in {shown_db(db)} (it holds: {', '.join(ids) or 'none'})"
            )
        return mechanism
    if len(ids) == 1:
        return ids[0]
    what = "record" if with_record else "mechanism"
    found = f"it holds {', '.join(ids)}; choose one with --mechanism" if ids else f"it holds no {what}"
    raise DeconflictError(f"{shown_db(db)}: {found}")


def open_service(db: str, *, migrate: bool = False, read_only: bool = False) -> Service:
    """The service over an existing database (a file path or a database URL); ``read_only``: for a command
    that only reads, which must leave the database as it found it (an investigator's copy is evidence: its
    hash must hold after a check, a replay or a report).

    Raises:
        DeconflictError: the file does not exist (a URL is not checked here).
    """
    from deconflict.service import Service

    if "://" not in db and not Path(db).expanduser().exists():
        raise DeconflictError(f"{db}: no such database file")
    from deconflict.store import open_store

    # a command that does not make the schema (migrate) writes to a record, or reads one: the database must hold one
    return Service(open_store(db, migrate=migrate, read_only=read_only, need_record=not migrate))


def unserved_since(service: Service) -> datetime | None:
    """None while a server's duty loop runs on the service's database (it holds the duty lease); else when that
    loop last ran there (the lease's end), or :data:`~deconflict.clock.EARLIEST` when none ever ran."""
    from deconflict.clock import EARLIEST
    from deconflict.service.ticker import lease

    held = lease(service.store)
    if held is None:
        return EARLIEST
    return None if held[1] > service.clock() else held[1]


def catch_up(service: Service) -> None:
    """Before a command appends to a record that no server runs on (no duty lease held), record what fell due
    while nothing ran (escalation steps, line checks), as a server does when it starts. An entry appended after
    a deadline passed unanswered, with the escalation it calls for missing before it, made the record fail
    ``ledger verify`` for good ("missing before entry N"), whatever was served afterwards. Only when a step
    is due past the verifier's grace (a record stopped a few minutes is written to as before: no line check
    appears in a mechanism being set up). Called once the command's own checks have passed, just before it
    writes."""
    from deconflict.service.recheck import GRACE_S

    if unserved_since(service) is None:
        return  # a server's duty loop runs on it
    if not service.overdue_steps(service.clock() - timedelta(seconds=GRACE_S)):
        return
    try:
        service.tick(snapshots=False)
    finally:
        service.release_duty()


def shown_db(db: str) -> str:
    """A database as the terminal and the log may show it: a path as given, a URL without its password
    (``postgresql://u:***@/d?host=db1:5432&host=db2:5432``).

    >>> shown_db("postgresql://u:secret@db1/d")
    'postgresql://u:***@db1/d'
    """
    from deconflict.store import shown_url

    return shown_url(db)
