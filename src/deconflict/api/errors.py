"""Every error as JSON {detail, field}: domain errors, validation errors, HTTP errors; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deconflict.errors import DeconflictError
from deconflict.service import Prepared

log = logging.getLogger("deconflict.api")


def _where(loc: tuple[Any, ...]) -> str:
    """The field path as the API names it (``volumes.0.floor_m``): kept in ``field`` for programs."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def _in_words(loc: tuple[Any, ...]) -> str:
    """The same path as a duty officer reads it: ``volume 1 floor_m`` (volumes counted from 1)."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    words: list[str] = []
    for i, p in enumerate(parts):
        if isinstance(p, int) and i > 0 and isinstance(parts[i - 1], str):
            words[-1] = f"{words[-1].removesuffix('s')} {p + 1}"
        else:
            words.append(str(p))
    return " ".join(words)


_WORDED = {
    "float_parsing": "expected a number{unit}, got {input!r}",
    "float_type": "expected a number{unit}, got {input!r}",
    "int_parsing": "expected a whole number, got {input!r}",
    "int_type": "expected a whole number, got {input!r}",
    "int_from_float": "expected a whole number, got {input!r}",
    "string_type": "expected text, got {input!r}",
    "bool_parsing": "expected true or false, got {input!r}",
    "bool_type": "expected true or false, got {input!r}",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "extra_forbidden": "is not a field this request takes",
    "datetime_parsing": "expected a UTC time such as 2025-04-09T08:00:00Z, got {input!r}",
    "datetime_type": "expected a UTC time such as 2025-04-09T08:00:00Z, got {input!r}",
}


def _message(err: dict[str, Any]) -> str:
    """One validation error in words: what was expected, and what was given."""
    kind = str(err.get("type", ""))
    field = str(err.get("loc", ("",))[-1])
    unit = " of metres" if field.endswith("_m") else (" of seconds" if field.endswith("_s") else "")
    given = err.get("input")
    if isinstance(given, str | int | float) and not isinstance(given, bool) and kind in _WORDED:
        shown = given if not isinstance(given, str) or len(given) <= 40 else given[:40] + "…"
        return _WORDED[kind].format(unit=unit, input=shown)
    if kind in _WORDED and "{input" not in _WORDED[kind]:
        return _WORDED[kind].format(unit=unit)
    if kind in ("literal_error", "enum"):
        return f"must be one of {err.get('ctx', {}).get('expected', 'the listed values')}"
    return str(err.get("msg", "invalid"))


def install(app: FastAPI) -> None:
    @app.exception_handler(DeconflictError)
    async def domain(_: Request, exc: DeconflictError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=exc.status)

    @app.exception_handler(Prepared)
    async def prepared(_: Request, exc: Prepared) -> JSONResponse:
        # Not an error: a prepared write appended nothing and returns the entry for the party to sign.
        return JSONResponse({"prepared": exc.entry}, status_code=200)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = tuple(first.get("loc", ()))
        where, words = _where(loc), _in_words(loc)
        if first.get("type") == "json_invalid":
            message = f"the body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}"
        elif first.get("type") == "missing":
            message = f"{words}: missing; it is required"
        else:
            message = f"{words}: {_message(first)}" if words else _message(first)
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        body = {"detail": message + more, "field": where or None, "code": str(first.get("type", "invalid"))}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "field": None}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error; nothing was changed. The operator's log has the details.", "field": None},
            status_code=500,
        )
