"""The service's logs: one line per event on stderr, as text (the default) or as one JSON object per line
(``deconflict serve --log-format json``) for a log collector.

Every line carries the time (UTC, ISO 8601 with milliseconds), the level, the logger and the message. A
request's line (logger ``deconflict.request``, written by :class:`deconflict.api.ops.Observe`) adds the
method, the route *template* (``/api/v1/mechanisms/{mechanism_id}/activities``, never the path with its
ids or query), the status, the duration in milliseconds and the member id when the request carried a
live token. Only the fields named in :data:`FIELDS` are ever written from a record's extras, so a token,
an ``Authorization`` header or a request body cannot reach the logs through a stray ``extra=``.

The lines are written by a thread of their own (:class:`LineWriter`): a request never waits for the log's
reader. Written from the request itself, a reader that fell behind (a pipe to a stopped or slow collector,
64 KiB of it) held up the event loop, and with it every request, the hotline and the event streams, until it
read again. Now at most :data:`MOST_WAITING` lines wait; beyond them lines are dropped and counted, and the
count is written as a warning once the reader takes lines again.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import select
import sys
import threading
import time
import weakref
from collections import deque
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

__all__ = [
    "FIELDS",
    "FORMATS",
    "MOST_WAITING",
    "JsonFormatter",
    "LineWriter",
    "LogFormat",
    "TextFormatter",
    "configure",
    "dropped_lines",
    "flush_all",
    "request_logger",
]


class LogFormat(StrEnum):
    """The formats ``serve`` and ``demo`` accept for ``--log-format``."""

    TEXT = "text"
    JSON = "json"


FORMATS = tuple(f.value for f in LogFormat)

FIELDS = ("method", "route", "status", "duration_ms", "member", "mechanism")
"""The extra fields a log line may carry (a request's): nothing else given as ``extra=`` is written."""

request_logger = logging.getLogger("deconflict.request")
"""Where each HTTP request is logged once it is answered (INFO), with the message ``METHOD ROUTE STATUS``."""
_IN_MESSAGE = ("method", "route", "status")
"""A request's fields its message already says: a text line does not repeat them."""

_HANDLER_NAME = "deconflict"

MOST_WAITING = 10_000
"""Lines held for the log's reader, waiting or being written (about 5 s of a busy server's requests, some
10 MB); those beyond are dropped and counted (:class:`LineWriter`)."""
LINGER_S = 0.05
"""Once a line waits, how long the writing thread lets more come before it writes them all (one write and one
wake-up of the thread for the lines of a moment, not one for each: on a busy server, woken for each line,
the thread cost more than writing from the request itself)."""
WRITE_AT = 512
"""Lines waiting that have the thread write them without lingering further."""
_ATOMIC = getattr(select, "PIPE_BUF", 4096)
"""The most bytes one write to a pipe puts there whole, never mixed with another process's writes."""
FLUSH_WAIT_S = 5.0
"""How long :meth:`LineWriter.flush` waits at most for the lines to be written (at exit: a reader that has
stopped must not hold the process)."""


def _time(record: logging.LogRecord) -> str:
    """The record's time as UTC ISO 8601 with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback: as :class:`LineWriter` formatted it when queued, else formatted now."""
    if record.exc_text:
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else None


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {name: record.__dict__[name] for name in FIELDS if record.__dict__.get(name) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the request fields of
    :data:`FIELDS` when present, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        exception = _exception(self, record)
        if exception:
            line["exception"] = exception
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...`` on one line (a traceback follows on its own)."""

    def format(self, record: logging.LogRecord) -> str:
        said = _IN_MESSAGE if record.name == request_logger.name else ()
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items() if k not in said)
        text = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        text = f"{text} {fields}" if fields else text
        exception = _exception(self, record)
        if exception:
            text = f"{text}\n{exception}"
        return text


def configure(
    fmt: LogFormat | str = LogFormat.TEXT, *, stream: IO[str] | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send every log line to ``stream`` (stderr by default) in ``fmt``: the ``deconflict`` loggers from
    ``level`` up, every other library (uvicorn included, once it propagates) from WARNING up.

    Idempotent: a handler installed by an earlier call is replaced (and closed, once its lines are written).
    Returns the handler, a :class:`LineWriter` (a test flushes it before reading ``stream``, and removes it with
    ``logging.getLogger().removeHandler``).

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format: {fmt!r} is not one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler = LineWriter(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == LogFormat.JSON else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("deconflict").setLevel(level)
    _no_unwritten_fields()
    return handler


def _no_unwritten_fields() -> None:
    """Stop ``logging`` working out, for every record, what no line of :data:`FORMATS` writes: the thread, the
    process and the caller's file and line (the settings of the logging HOWTO's "Optimization"). A request's
    line (:class:`deconflict.api.ops.Observe`, every request) then costs 27 µs of CPU instead of 42."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the HOWTO's way: no sys._getframe for each record


def _writers() -> list[LineWriter]:
    """The service's handlers (:func:`configure`) on the root logger."""
    return [h for h in logging.getLogger().handlers if isinstance(h, LineWriter)]


def flush_all() -> None:
    """Wait until the lines queued by the service's handler are written (at most :data:`FLUSH_WAIT_S`): the
    server's last step before it stops, since a stop by SIGTERM ends the process by that signal once the
    server is down, with no ``logging.shutdown``."""
    for handler in _writers():
        handler.flush()


def dropped_lines() -> int:
    """Log lines the service's handler (:func:`configure`) dropped while the log's reader was behind."""
    return sum(h.dropped for h in _writers())


class LineWriter(logging.Handler):
    """Writes each record's line to ``stream`` from a thread of its own, in the order they came, the lines
    waiting together (:meth:`_write`). :meth:`emit` only queues the record (its message made, its exception
    formatted): it never waits for the stream.

    At most ``most`` records are held (waiting or being written); beyond them a record is dropped and counted
    (:attr:`dropped`), and the count is written as a warning of logger ``deconflict.logs`` after the lines
    queued before the drop. Lines a failing stream refused are counted too. :meth:`flush` waits (at most
    :data:`FLUSH_WAIT_S`) until every line queued is written; :meth:`close` ends the thread once it has written
    them (a record handed over after it starts another: ``logging.config`` closes the handlers it replaces
    yet leaves them on the root logger). The thread is started with the first record, again if it ever
    stopped, and in a process forked after it (which writes and counts only its own records); when none can
    start (the interpreter exiting), a record is written at once. Writes to the stream, and to stderr,
    outside logging (a traceback printed by the interpreter) are not held here."""

    def __init__(self, stream: IO[str], *, most: int = MOST_WAITING) -> None:
        super().__init__()
        self.stream = stream
        self._most = most
        self._waiting: deque[logging.LogRecord] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = False
        """The thread waits for records (:meth:`emit` wakes it)."""
        self._writing = 0
        """Records taken by the thread and not written yet."""
        self._hurry = False
        """:meth:`flush` waits: write what waits without lingering."""
        self._closed = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        """Records dropped since the handler was made, the reader being behind (the lines waiting at most)."""
        self._untold = 0
        """Records dropped not yet said in a warning line."""
        if hasattr(os, "register_at_fork"):  # a child forked while the thread held the lock starts afresh
            os.register_at_fork(after_in_child=functools.partial(_forked, weakref.ref(self)))

    def _forked(self) -> None:
        """In a forked child: the parent's thread is not there, and its lock may have been held."""
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._waiting.clear()  # the parent writes those, and counts what it drops
        self._writing = 0
        self._idle = False
        self.dropped = self._untold = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # the queue holds a copy, its message made now (as the caller meant it, whatever changes later): the
            # record itself goes on to the other handlers as it was, its template and arguments (a handler that
            # groups by template, or reads the arguments, would otherwise get the text and None, as from
            # QueueHandler.prepare before Python 3.12)
            message = record.getMessage()
            record = copy.copy(record)
            record.msg, record.args = message, None
            exc_info = record.exc_info
            if exc_info:  # formatted now: the queue keeps no frames alive, other handlers do
                record.exc_text = record.exc_text or (self.formatter or logging.Formatter()).formatException(exc_info)
                record.exc_info = None
        except Exception:  # noqa: BLE001 - logging's own convention: a bad record is reported, not raised
            self.handleError(record)
            return
        with self._cond:
            # closed, yet still handed records: logging.config closes the handlers it finds and leaves them on
            # the root logger (uvicorn's default configuration does so); a handler goes on writing, as
            # logging's own do
            self._closed = False
            if len(self._waiting) + self._writing >= self._most:  # those being written are held too
                self.dropped += 1
                self._untold += 1
                return
            self._waiting.append(record)
            if self._thread is None or not self._thread.is_alive():
                if self._start():
                    return
                self._waiting.pop()  # no thread can start (the interpreter is exiting): written here
            else:
                if self._idle or len(self._waiting) == WRITE_AT:
                    self._cond.notify()
                return
        self._write([record], 0)

    def _start(self) -> bool:
        """Start the writing thread (held: ``_cond``); False when none can start."""
        self._idle = False
        self._writing = 0
        thread = threading.Thread(target=self._write_lines, name="deconflict-log", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            self._thread = None
            return False
        self._thread = thread
        return True

    def _write_lines(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                if not self._closed and not self._hurry and len(self._waiting) < WRITE_AT:
                    self._cond.wait(LINGER_S)  # let the lines of the next moments come: one write for them all
                self._hurry = False
                if not self._waiting:
                    if self._closed:
                        self._cond.notify_all()
                        return
                    continue
                records = list(self._waiting)
                self._waiting.clear()
                untold, self._untold = self._untold, 0
                self._writing = len(records)
            try:
                self._write(records, untold)
            except BaseException:  # noqa: BLE001 - the thread goes on: every later line depends on it
                with self._cond:
                    self.dropped += len(records)
            finally:
                with self._cond:
                    self._writing = 0
                    self._cond.notify_all()  # flush() waits for this

    def _write(self, records: list[logging.LogRecord], untold: int) -> None:
        """Write ``records``' lines, then the warning of ``untold`` lines dropped (all of them dropped after
        these were queued), in chunks of at most ``PIPE_BUF`` bytes cut at line ends: each one write, which a
        pipe keeps whole, so that the lines of several processes on one pipe (``serve --workers``) never cut
        into each other, as one line a write never did."""
        if untold:
            records.append(_dropped_record(untold, self._most))
        chunks: list[str] = []
        chunk: list[str] = []
        size = 0
        for record in records:
            try:
                line = self.format(record) + "\n"
            except Exception:  # noqa: BLE001 - that record reported, the others written
                self._report(record)
                continue
            n = len(line.encode("utf-8", "replace"))
            if chunk and size + n > _ATOMIC:
                chunks.append("".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += n
        if chunk:
            chunks.append("".join(chunk))
        for k, text in enumerate(chunks):
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:  # noqa: BLE001 - a stream that fails: its lines are counted as dropped
                with self._cond:
                    self.dropped += sum(c.count("\n") for c in chunks[k:])
                self._report(records[-1])
                return

    def _report(self, record: logging.LogRecord) -> None:
        """logging's own report of a record it could not write (on stderr), never raised into the thread."""
        try:
            self.handleError(record)
        except Exception:  # noqa: BLE001, S110 - stderr itself is gone: nothing is left to tell
            pass

    def flush(self) -> None:
        """Wait until every record queued so far is written (at most :data:`FLUSH_WAIT_S`)."""
        deadline = time.monotonic() + FLUSH_WAIT_S
        with self._cond:
            if self._thread is None or self._thread is threading.current_thread():
                return
            while self._waiting or self._writing:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return
                self._hurry = True
                self._cond.notify_all()
                self._cond.wait(left)

    def close(self) -> None:
        """Take no more records: the thread writes those waiting, then ends (``logging.shutdown`` calls
        :meth:`flush` first, which waits for them)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        super().close()


def _forked(handler: weakref.ref[LineWriter]) -> None:
    """In a forked child: the handler (if still there) starts afresh."""
    found = handler()
    if found is not None:
        found._forked()


def _dropped_record(count: int, most: int) -> logging.LogRecord:
    """The warning that ``count`` lines were dropped while the log's reader was behind."""
    return logging.LogRecord(
        "deconflict.logs",
        logging.WARNING,
        __file__,
        0,
        f"{count} log line{'s' if count != 1 else ''} dropped: the log's reader fell behind (at most "
        f"{most} lines wait for it; the service did not)",
        None,
        None,
    )
