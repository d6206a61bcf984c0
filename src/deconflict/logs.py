"""The service's logs: one line per event on stderr, as text (the default) or as one JSON object per line
(``deconflict serve --log-format json``) for a log collector.

Every line carries the time (UTC, ISO 8601 with milliseconds), the level, the logger and the message. A
request's line (logger ``deconflict.request``, written by :class:`deconflict.api.ops.Observe`) adds the
method, the route *template* (``/api/v1/mechanisms/{mechanism_id}/activities``, never the path with its
ids or query), the status, the duration in milliseconds and the member id when the request carried a
live token. Only the fields named in :data:`FIELDS` are ever written from a record's extras, so a token,
an ``Authorization`` header or a request body cannot reach the logs through a stray ``extra=``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

__all__ = ["FIELDS", "FORMATS", "JsonFormatter", "LogFormat", "TextFormatter", "configure", "request_logger"]


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


def _time(record: logging.LogRecord) -> str:
    """The record's time as UTC ISO 8601 with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...`` on one line (a traceback follows on its own)."""

    def format(self, record: logging.LogRecord) -> str:
        said = _IN_MESSAGE if record.name == request_logger.name else ()
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items() if k not in said)
        text = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        text = f"{text} {fields}" if fields else text
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def configure(
    fmt: LogFormat | str = LogFormat.TEXT, *, stream: IO[str] | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send every log line to ``stream`` (stderr by default) in ``fmt``: the ``deconflict`` loggers from
    ``level`` up, every other library (uvicorn included, once it propagates) from WARNING up.

    Idempotent: a handler installed by an earlier call is replaced. Returns the handler (a test removes
    it with ``logging.getLogger().removeHandler``).

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format: {fmt!r} is not one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == LogFormat.JSON else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("deconflict").setLevel(level)
    return handler
