"""The request body, checked before any route reads it: size, media type, JSON that every reader reads
the same way, and text a duty officer's screen shows as written.

One ASGI middleware (:class:`BodyGuard`) reads a request's body in full (it is bounded), and answers
itself, with the API's JSON error ``{"detail", "field"}``, when the body is:

- larger than the limit, declared (``Content-Length``) or sent: 413, ``field: "body"``;
- not declared as JSON (``Content-Type: application/json``): 415, ``field: "body"``;
- not JSON, or JSON two readers could read differently (a key twice in one object, NaN, Infinity, a
  number too large for a float): 422 naming the key or ``body``;
- holding, in any text, a control character (other than tab, line feed and carriage return) or a
  bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069), which can make text
  read otherwise than it was written (or drive a terminal): 422 naming the field.

Text is also normalised to Unicode NFC, so that one word has one spelling in the record. The route then
reads the checked body as if it had been sent so. A body-less request passes untouched.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconflict.text import forbidden_character, refusal

__all__ = [
    "READ_KEY",
    "BodyGuard",
    "ReadOnceRequest",
    "ReadOnceRoute",
    "Refused",
    "check_json",
    "forbidden_character",
    "passes_as_sent",
]


class Refused(ValueError):
    """A body refused: why, in words, the field it concerns and the status to answer."""

    def __init__(self, message: str, *, field: str | None = "body", status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise Refused(f"{k}: given twice in one object; give each field once", field=k)
            seen.add(k)
    return obj


def _constant(name: str) -> Any:
    raise Refused(f"body: holds {name}, which is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(f"body: the number {text[:40]} is too large")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # beyond the interpreter's limit on an integer's digits (4,300): no field takes one
        digits = len(text.lstrip("-"))
        raise Refused(f"body: the number {text[:20]}... has {digits:,} digits, more than any field takes") from None


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float, parse_int=_int)


def _clean(text: str, path: list[str | int]) -> str:
    bad = forbidden_character(text)
    if bad is not None:
        field = ".".join(str(p) for p in path) or "body"
        raise Refused(refusal(field, bad), field=field)
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def _walk(value: Any, path: list[str | int]) -> tuple[Any, bool]:
    """The value with every text checked and NFC-normalised, and whether anything changed."""
    if isinstance(value, str):
        clean = _clean(value, path)
        return clean, clean is not value
    if isinstance(value, list):
        changed = False
        out_list = []
        for i, item in enumerate(value):
            new, moved = _walk(item, [*path, i])
            out_list.append(new)
            changed = changed or moved
        return out_list, changed
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, item in value.items():
            key = _clean(k, [*path, k])
            new, moved = _walk(item, [*path, key])
            if key in out:
                raise Refused(f"{key}: given twice in one object (once normalised); give each field once", field=key)
            out[key] = new
            changed = changed or moved or key is not k
        return out, changed
    return value, False


_UNREAD = object()
"""What :func:`_read_as_sent` answers for a body it cannot vouch for."""
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_ZEROS = b"0" * 19


def has_long_number(body: bytes) -> bool:
    """Nineteen digits in a row: an integer orjson may read as a float where the standard reader keeps it whole
    (beyond 64 bits: from 20 digits, and from 19 below -2**63, ``-9223372036854775809``).

    Each digit made a zero, then a search for nineteen zeros: what ``re.search(rb"[0-9]{19}", body)`` finds,
    ten times faster on a batch of track reports (1 ms against 10 for 1,000, the regex trying every digit).

    >>> has_long_number(b'{"n": -9223372036854775809}'), has_long_number(b'{"lat": 35.123456789012345678}')
    (True, False)
    """
    return _NINETEEN_ZEROS in body.translate(_DIGITS_AS_ZERO)


READ_KEY = "deconflict.body"
"""Where :class:`BodyGuard` leaves, in the request's scope, the body it passed unchanged and the document
it read there, when that document is the one the standard reader would give (see :class:`ReadOnceRoute`)."""


def _read_as_sent(body: bytes) -> Any:
    """The document in ``body`` when ``body`` provably passes :func:`check_json` unchanged, else
    :data:`_UNREAD` (see :func:`passes_as_sent`)."""
    if not body.isascii() or b"\\" in body or b"\x7f" in body:
        return _UNREAD
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNREAD
    return doc if orjson.dumps(doc).count(b":") == body.count(b":") else _UNREAD


def passes_as_sent(body: bytes) -> bool:
    """Whether ``body`` provably passes :func:`check_json` unchanged, found at C speed.

    That holds for ASCII without a backslash or DEL (no escape, no forbidden character, nothing to
    normalise) that orjson reads (strict JSON: no NaN, no number beyond a double) with each object's
    keys all different. orjson keeps the last of a repeated key; written out again, what it read has
    every string as sent (no escapes) and one colon a key, so it has as many colons as the body exactly
    when no key was dropped. False says only "look closer": :func:`check_json` then decides, with its
    worded refusal.

    >>> passes_as_sent(b'{"id": "TR/1", "at": "2025-04-09T06:00:00Z", "lat": 34.9}')
    True
    >>> passes_as_sent(b'{"a": 1, "a": 2}'), passes_as_sent(rb'{"t": "Caf\\u00e9"}'), passes_as_sent(b'[1e400]')
    (False, False, False)
    """
    return _read_as_sent(body) is not _UNREAD


class ReadOnceRequest(Request):
    """A request whose JSON is the document :class:`BodyGuard` already read, when it left one for this
    body (the same bytes), instead of reading the body a second time."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            left = self.scope.get(READ_KEY)
            if left is not None and left[0] == body:
                self._json = left[1]
            else:
                self._json = await super().json()
        return self._json


class ReadOnceRoute(APIRoute):
    """A route that reads its JSON body with :class:`ReadOnceRequest`: for routes taking large batches
    (position reports), where reading a body twice is a measurable share of the request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_once(request: Request) -> Response:
            return await handler(ReadOnceRequest(request.scope, request.receive))

        return read_once


def check_json(body: bytes) -> bytes:
    """The body as the route should read it: refused (:class:`Refused`) or returned, normalised.

    >>> check_json(b'{"title": "Cafe\\\\u0301"}')
    b'{"title": "Caf\\\\u00e9"}'
    >>> check_json(b'{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    deconflict.api.body.Refused: a: given twice in one object; give each field once
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("body: not UTF-8 text; send JSON in UTF-8") from None
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise Refused(f"body: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise Refused("body: nested too deeply") from None
    except ValueError as e:
        if isinstance(e, Refused):
            raise
        raise Refused(f"body: not valid JSON: {e}") from None
    clean, changed = _walk(doc, [])
    return json.dumps(clean).encode("utf-8") if changed else body


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyGuard:
    """ASGI middleware: every request body checked (see the module) before the application sees it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "content-length" not in headers and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(headers, receive)
            if body:
                if not _is_json(headers.get("content-type")):
                    shown = headers.get("content-type") or "none"
                    raise Refused(
                        f"body: send JSON with the header Content-Type: application/json (the request said {shown!r})",
                        status=415,
                    )
                doc = _read_as_sent(body)
                if doc is _UNREAD:
                    body = check_json(body)
                elif not has_long_number(body):
                    scope = {**scope, READ_KEY: (body, doc)}
        except Refused as e:
            response = JSONResponse({"detail": e.message, "field": e.field}, status_code=e.status)
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the client's disconnect, when it comes

        if body:
            scope = {**scope, "headers": _with_length(scope["headers"], len(body))}
        await self.app(scope, replay, send)

    async def _read(self, headers: Headers, receive: Receive) -> bytes:
        too_large = Refused(
            f"body: larger than the {self.max_body_bytes:,} bytes a request may carry; send less at once", status=413
        )
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise Refused("body: Content-Length is not a number of bytes", status=400)
            if int(declared) > self.max_body_bytes:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused("body: the client went away before sending the whole body", status=400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _with_length(raw: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    """The request's headers with Content-Length set to the checked body's length (it may have been normalised)."""
    kept = [(k, v) for k, v in raw if k.lower() not in (b"content-length", b"transfer-encoding")]
    return [*kept, (b"content-length", str(length).encode("ascii"))]
