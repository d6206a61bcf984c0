"""Every error as JSON {detail, field}: domain errors, validation errors, HTTP errors; never a stack trace."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from deconflict.errors import DeconflictError
from deconflict.record.chain import canonical
from deconflict.service import Prepared
from deconflict.service.context import StaleRecord
from deconflict.store import unreachable

__all__ = ["UNREACHABLE", "error_body", "install", "is_outage"]

log = logging.getLogger("deconflict.api")


_NOT_FIELDS = frozenset({"body", "query", "path", "header", "str", "int", "float", "bool", "list", "dict", "none"})
"""Parts of a validation error's location that are not fields: where the value came from, or which
member of a union (``str | int``) the value was tried against."""


def _fields(loc: tuple[Any, ...]) -> list[Any]:
    return [p for p in loc if isinstance(p, int) or (p not in _NOT_FIELDS and "[" not in str(p))]


def _where(loc: tuple[Any, ...]) -> str:
    """The field path as the API names it (``volumes.0.floor_m``): kept in ``field`` for programs."""
    return ".".join(str(p) for p in _fields(loc))


def _in_words(loc: tuple[Any, ...]) -> str:
    """The same path as a duty officer reads it: ``volume 1 floor_m`` (volumes counted from 1)."""
    parts = _fields(loc)
    words: list[str] = []
    for i, p in enumerate(parts):
        if isinstance(p, int) and i > 0 and isinstance(parts[i - 1], str):
            words[-1] = f"{words[-1].removesuffix('s')} {p + 1}"
        else:
            words.append(str(p))
    return " ".join(words)


_WORDED = {
    "float_parsing": "expected a number{unit}, got {input}",
    "float_type": "expected a number{unit}, got {input}",
    "finite_number": "expected a finite number{unit}, got {input}",
    "int_parsing": "expected a whole number, got {input}",
    "int_type": "expected a whole number, got {input}",
    "int_from_float": "expected a whole number, got {input}",
    "string_type": "expected text, got {input}",
    "bool_parsing": "expected true or false, got {input}",
    "bool_type": "expected true or false, got {input}",
    "list_type": "expected a list, got {input}",
    "dict_type": "expected an object, got {input}",
    "model_type": "expected an object, got {input}",
    "model_attributes_type": "expected an object, got {input}",
    "extra_forbidden": "is not a field this request takes",
    "string_pattern_mismatch": "may only hold ASCII letters, digits and - _ . :, got {input}",
    "datetime_parsing": "expected a UTC time such as 2025-04-09T08:00:00Z, got {input}",
    "datetime_type": "expected a UTC time such as 2025-04-09T08:00:00Z, got {input}",
}


def _shown(given: Any) -> str:
    """What was given: text quoted as the domain's errors quote it (``'2000'``), anything else as JSON
    shows it (``true``, ``null``, ``[]``), cut short when long."""
    try:
        text = repr(given) if isinstance(given, str) else json.dumps(given, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(given)
    return text if len(text) <= 40 else text[:40] + "…"


def _message(err: dict[str, Any]) -> str:
    """One validation error in words: what was expected, and what was given."""
    kind = str(err.get("type", ""))
    field = str(err.get("loc", ("",))[-1])
    unit = " of metres" if field.endswith("_m") else (" of seconds" if field.endswith("_s") else "")
    ctx = err.get("ctx") or {}
    if kind in _WORDED:
        return _WORDED[kind].format(unit=unit, input=_shown(err.get("input")))
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', 'the listed values')}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return (
            f"needs at least {least} item{'s' if least != 1 else ''}"
            if isinstance(err.get("input"), list | dict)
            else f"must be at least {least} characters long"
        )
    if kind == "too_long":
        most = ctx.get("max_length")
        return f"at most {most} items" if isinstance(err.get("input"), list | dict) else f"at most {most} characters"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "")
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most"}
        return f"must be {words.get(kind, 'less than')} {bound}, got {_shown(err.get('input'))}"
    return str(err.get("msg", "invalid"))


def _problem(err: Any) -> tuple[str, str]:
    """One validation error: the field it names (``""``: none) and the error in words, the field first."""
    loc = tuple(err.get("loc", ()))
    where, words = _where(loc), _in_words(loc)
    if not where and loc[:1] == ("body",):
        where = words = "body"  # the body as a whole: missing, or not an object
    if err.get("type") == "json_invalid":
        return "body", f"body: not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}"
    if err.get("type") == "missing":
        return where, f"{words}: missing; it is required"
    return where, f"{words}: {_message(err)}" if words else _message(err)


UNREACHABLE = (
    "the database is not reachable or not taking writes just now (a restart, or a failover to its standby); "
    "send the request again in a moment. A write whose connection broke while it was being committed may have "
    "been stored: look before sending it again"
)
"""What a request is answered (503, with Retry-After) when its database connection failed."""


DISK_FULL = (
    "the database's disk is full: nothing was written. The operator must free space on it; the service takes "
    "writes again by itself once there is room"
)
"""What a write is answered (503) when SQLite could not store it for lack of space (SQLITE_FULL)."""


READ_ONLY = "25006"
"""PostgreSQL's read_only_sql_transaction: the server is a standby (in recovery), or read-only."""


def is_outage(exc: DBAPIError) -> bool:
    """Whether a database error means the database went away (could not connect, the connection broke, the
    server shut down: the driver's OperationalError, or any error SQLAlchemy took for a disconnect), rather
    than a statement the database refused (a defect: answered 500 and logged in full)."""
    if getattr(exc.orig, "sqlstate", None) == READ_ONLY:  # a standby (a URL naming it alone): no writes now
        return True
    return isinstance(exc, OperationalError) or exc.connection_invalidated


def error_body(detail: str, field: str | None, code: str | None = None) -> dict[str, Any]:
    """The one shape of every error answer (:class:`deconflict.api.schemas.ErrorOut`)."""
    body: dict[str, Any] = {"detail": detail, "field": field}
    if code is not None:
        body["code"] = code
    return body


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the API documents at the request's path (the framework's own 405 names only the
    first route's, while GET and POST of one path are two routes), and HEAD wherever GET is (:mod:`.head`);
    empty for a path it does not know."""
    path = request.url.path
    found: dict[int, set[str]] = {}  # by how many parameters the template has: the fewest wins
    for template, operations in app.openapi().get("paths", {}).items():  # (.../preview over .../{activity_id})
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            found.setdefault(template.count("{"), set()).update(m.upper() for m in operations)
    return _with_head(found[min(found)]) if found else []


def _with_head(methods: set[str]) -> list[str]:
    """The methods, sorted, with HEAD wherever GET is (:mod:`.head` answers it)."""
    return sorted(methods | {"HEAD"} if "GET" in methods else methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(DeconflictError)
    async def domain(_: Request, exc: DeconflictError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=exc.status)

    @app.exception_handler(StaleRecord)
    async def busy(_: Request, exc: StaleRecord) -> JSONResponse:
        # other processes kept appending to the record while this write was retried: nothing was written
        return JSONResponse(
            error_body("the record is busy with other writes; nothing was changed, send it again", None),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Prepared)
    async def prepared(_: Request, exc: Prepared) -> JSONResponse:
        # Not an error: a prepared write appended nothing and returns the entry for the party to sign.
        # With the payload's canonical text, whose SHA-256 is the entry's payload_hash: a client that cannot
        # write Python's canonical JSON (a browser: 1.0 and 1 are one number to JSON.parse) hashes this text
        # and reads what it is asked to sign from it.
        text = canonical(exc.entry.get("payload")).decode()
        return JSONResponse({"prepared": exc.entry, "canonical_payload": text}, status_code=200)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where, message = _problem(first)
        # the next two named too (a client that sends {"as": ...} for {"resolution": ...} is told both)
        also = [_problem(e)[1] for e in errors[1:3]]
        if len(errors) > 3:
            also.append(f"and {len(errors) - 3} more problem{'s' * (len(errors) > 4)}")
        more = f"; also {'; '.join(also)}" if also else ""
        body = error_body(message + more, where or None, str(first.get("type", "invalid")))
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        allowed = _allowed_methods(app, request) if exc.status_code == 405 else []
        framework = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        if exc.status_code == 405 and not allowed and "GET" in framework:  # a path the document leaves out (/healthz)
            headers["Allow"] = ", ".join(_with_head(framework))
        if allowed:
            headers["Allow"] = ", ".join(allowed)
            detail = f"method {request.method} is not allowed here; this path takes {', '.join(allowed)}"
        return JSONResponse(error_body(detail, None), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        # The connection is closed after this answer (Starlette raises the error again once it is sent, and
        # the server drops the connection): said, so that a client does not send its next request on it.
        return JSONResponse(
            {"detail": "internal error; nothing was changed. The operator's log has the details.", "field": None},
            status_code=500,
            headers={"Connection": "close"},
        )

    @app.exception_handler(DBAPIError)
    async def database_gone(request: Request, exc: DBAPIError) -> JSONResponse:
        # A restart or a failover: the pool reconnects by itself (pre-ping; a multi-host URL finds the new
        # primary), so the client is told to come back, never shown a 500. A refused statement is a defect.
        if not is_outage(exc):
            return await unexpected(request, exc)
        if getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_FULL":
            log.error("the database's disk is full on %s %s", request.method, request.url.path)
            return JSONResponse(error_body(DISK_FULL, None), status_code=503, headers={"Retry-After": "60"})
        log.warning("database not reachable on %s %s: %s", request.method, request.url.path, unreachable(exc))
        return JSONResponse(error_body(UNREACHABLE, None), status_code=503, headers={"Retry-After": "1"})
