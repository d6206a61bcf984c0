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
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


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
        where = _where(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            message = f"the body is not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}"
        elif first.get("type") == "missing":
            message = f"{where}: missing"
        else:
            message = f"{where}: {first['msg']}" if where else str(first["msg"])
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        return JSONResponse({"detail": message + more, "field": where or None}, status_code=422)

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
