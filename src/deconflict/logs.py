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
"""Lines that may wait for the log's reader (about 5 s of a busy server's requests, some 10 MB); those beyond
are dropped and counted (:class:`LineWriter`)."""
LINGER_S = 0.05
"""Once a line waits, how long the writing thread lets more come before it writes them all (one write and one
wake-up of the thread for the lines of a moment, not one for each: on a busy server, woken for each line,
the thread cost more than writing from the request itself)."""
WRITE_AT = 512
"""Lines waiting that have the thread write them without lingering further."""
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
    return handler


def dropped_lines() -> int:
    """Log lines the service's handler (:func:`configure`) dropped while the log's reader was behind."""
    return sum(h.dropped for h in logging.getLogger().handlers if isinstance(h, LineWriter))


class LineWriter(logging.Handler):
    """Writes each record's line to ``stream`` from a thread of its own, in the order they came, several at a
    time (one write and one flush for the lines waiting). :meth:`emit` only queues the record (its message
    made, its exception formatted): it never waits for the stream.

    At most ``most`` records wait; beyond them a record is dropped and counted (:attr:`dropped`), and the
    count is written as a warning of logger ``deconflict.logs`` before the next lines written. :meth:`flush`
    waits (at most :data:`FLUSH_WAIT_S`) until every line queued is written; :meth:`close` (called by
    ``logging.shutdown`` at exit) flushes and ends the thread. The thread is started with the first record,
    and again in a process forked after it (which writes only its own records)."""

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
        self._waiting.clear()  # the parent writes those
        self._writing = 0
        self._idle = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None  # as the caller meant it, whatever changes later
            exc_info = record.exc_info
            if exc_info:  # formatted now, on a copy: the queue keeps no frames alive, other handlers do
                record = copy.copy(record)
                record.exc_text = record.exc_text or (self.formatter or logging.Formatter()).formatException(exc_info)
                record.exc_info = None
        except Exception:  # noqa: BLE001 - logging's own convention: a bad record is reported, not raised
            self.handleError(record)
            return
        with self._cond:
            if self._closed:
                return
            if len(self._waiting) >= self._most:
                self.dropped += 1
                self._untold += 1
                return
            self._waiting.append(record)
            if self._thread is None:
                self._start()
            elif self._idle or len(self._waiting) == WRITE_AT:
                self._cond.notify()

    def _start(self) -> None:
        """Start the writing thread (held: ``_cond``)."""
        self._idle = False
        self._writing = 0
        self._thread = threading.Thread(target=self._write_lines, name="deconflict-log", daemon=True)
        self._thread.start()

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
            finally:
                with self._cond:
                    self._writing = 0
                    self._cond.notify_all()  # flush() waits for this

    def _write(self, records: list[logging.LogRecord], untold: int) -> None:
        if untold:
            records.insert(0, _dropped_record(untold, self._most))
        lines: list[str] = []
        for record in records:
            try:
                lines.append(self.format(record) + "\n")
            except Exception:  # noqa: BLE001 - that record reported, the others written
                self.handleError(record)
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except Exception:  # noqa: BLE001 - a stream that fails is reported as logging reports it
            self.handleError(records[-1])

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
        """Write what waits (see :meth:`flush`), then end the thread; records after it are not written."""
        self.flush()
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
