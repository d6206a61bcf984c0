"""``HEAD`` answered wherever ``GET`` is, as HTTP requires (RFC 9110 §9.1 and §9.3.2): the same status and
header fields as a ``GET`` of the same resource, and no content.

FastAPI routes a ``HEAD`` only to a route that declares it, and none here does, so ``curl -I .../healthz``, a
monitor that checks the page or ``/readyz`` with ``HEAD``, and a client that asks whether a resource changed
were all answered 405 (a known gap of the framework: fastapi/fastapi#1773). :class:`HeadAsGet` gives the
application a ``GET`` in place of each ``HEAD`` and ends the answer once its head is sent. The server (uvicorn)
knows the request was a ``HEAD`` and sends no content for it whatever it is given; ending the answer there
also ends an event stream at once, which as a ``GET`` would go on for as long as the client listens. A path
that takes no ``GET`` answers 405 with ``Allow`` naming what it takes (``HEAD`` beside each ``GET``:
:func:`deconflict.api.errors.install`).

The request's log line, metrics and security headers are the outer middleware's, which still see the
``HEAD``; the routes, the authentication and the rate limits see a ``GET`` and treat it as one (a ``HEAD``
has no more right than a ``GET``, and no side effect either).
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEAD_AS_GET", "HeadAsGet"]

HEAD_AS_GET = "deconflict.head_as_get"
"""The scope key that says a ``GET`` the application sees was sent as a ``HEAD``: a route whose ``GET`` holds
something for as long as it answers (an event stream, a place among the member's streams) answers the head
alone without taking it."""


class _Answered(OSError):
    """Raised into the application when it sends more of an answer whose head has gone: as a client that
    left would (an ``OSError`` is what Starlette takes for that), so that a stream stops."""


class HeadAsGet:
    """ASGI middleware: a ``HEAD`` request passed on as a ``GET``, its answer ended after its head (see the
    module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def head_only(message: Message) -> None:
            nonlocal answered
            if answered:
                raise _Answered("the head of the answer to a HEAD is sent")
            if message["type"] != "http.response.start":
                await send(message)  # (a body before the head: the server refuses it as it would for a GET)
                return
            await send(message)
            answered = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            await self.app({**scope, "method": "GET", HEAD_AS_GET: True}, receive, head_only)
        except (_Answered, ClientDisconnect):
            if not answered:
                raise
