"""The busiest writes (notify, send a message) answered without FastAPI's general request machinery when
the request is plain, and the few threads every such write runs in.

FastAPI resolves a route's parameters through a general dependency solver (nested sub-dependencies,
each header and path parameter validated through pydantic one by one) and runs a sync route through
anyio's thread pool: about a millisecond of the event loop's time a write, as much as the service's own
work on a hotline message. :class:`FastWrites`, an ASGI middleware inside :class:`~deconflict.api.body.BodyGuard`
(so the body it sees is already checked), answers a write to one of :func:`routes` itself when every
dependency resolves the plain way:

- the bearer token is live (the service's token cache, or a lookup shared with the other requests presenting
  it meanwhile: ``deps.looked_up``), its client address is not slowed down for failed authentications, and
  the token belongs to the path's mechanism;
- the member has writes left in the window (``writes_per_member``);
- no signing header (``Deconflict-*``) is sent: the service's key signs;
- the body is JSON the route's model accepts (validated by the same pydantic model, from the document
  :class:`~deconflict.api.body.BodyGuard` read in the checked body when it kept one, else ``json.loads``
  of it); the token is read from the ``Authorization`` header as ``HTTPBearer`` reads it.

Then it makes the same side effects the dependencies make (the address's known token, the write counted,
the member noted for the request's log line) and calls the route's own function with the same arguments,
in :class:`WriteThreads`. Anything else (no token, an unknown or revoked one, a lookup that failed, a limit
reached, a signed or prepared write, a body the model refuses, a path that is not exactly the route's) goes
on to FastAPI untouched, before any side effect (a token's lookup only fills the service's cache, as
FastAPI's would), and is answered there as always: every error, message and status stays FastAPI's. An
exception the route's function raises is answered by the application's own exception handler for it (as
the route's would be), or goes on up to the server-error handler.

The routes keep their declarations: the OpenAPI document is unchanged, and a test checks that each route
named here still takes exactly the parameters this module resolves.

:class:`WriteThreads` is a few threads of its own: handing a write to one costs a queue append (and a
wake-up when one is idle) and one call back to the event loop, against anyio's capacity limiter, cancel
scopes and worker queue. More than one, since the use cases queue on the service's lock anyway but what a
route does around its use case (the answer's view and JSON) overlaps another's database work: with 8
clients notifying, 4 threads took 5.8 ms of CPU a notice in the application where 1 thread took 7.2 (same
run). A database that stalls holds these threads, never the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette._exception_handler import _lookup_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconflict.api.body import READ_KEY
from deconflict.api.deps import WRITE_METHODS, Caller, limits, looked_up
from deconflict.service import SignatureMode

__all__ = ["Batches", "FastRoute", "FastWrites", "WriteThreads", "routes"]

T = TypeVar("T")

MAX_MECHANISM_ID = 64
"""The path's ``mechanism_id`` longest accepted (``deps.mechanism_caller``'s ``max_length``)."""
WRITE_THREADS = 4
"""Threads the fast writes run in: the use cases queue on the service's lock, and what a route does around
its use case (the answer's view, its JSON) overlaps another's database work."""
MOST_BATCHED = 64
"""The most writes :class:`Batches` runs together (those waiting beyond it go in the next batch)."""
LINGER_S = 0.0005
"""How long :class:`Batches` waits at most, after writers were several at once, for the ones it has just
answered to send their next write, so that one batch (one commit, one wait for the disk) takes them all
(PostgreSQL's ``commit_delay`` with ``commit_siblings``, in short). Writers taking turns otherwise split
into two groups that alternate, each batch half of them: 8 hotline clients made batches of 4.0, and a
batch costs about 0.6 ms of CPU besides its messages (its transaction, the disk's sync, the record's
checks, the hand-overs between threads). Measured with the server on one CPU (``bench/hotline.py``'s
load, 8 clients, same runs): 1,629-1,658 messages a second against 1,332-1,333 without, 0.57 ms of CPU a
message against 0.70."""
LINGER_STEP_S = 0.0001
"""The wait is given up as soon as one step of this length brings no new write: a write that is alone
waits for nothing, and one after a burst at most this long."""
PLAIN = SignatureMode(prepare=False)
"""The signing mode of a write that sends no signing header (``deps.signing_headers``' answer then)."""


class WriteThreads:
    """A few threads that run the writes handed to them, oldest first; :meth:`run` awaits one from the event
    loop. A thread is started when a write finds none idle, up to ``threads``."""

    def __init__(self, threads: int = WRITE_THREADS, name: str = "deconflict-writes") -> None:
        self._most = threads
        self._name = name
        self._jobs: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._generation = 0
        """Bumped by :meth:`stop`: the threads of an earlier generation leave the queue to the next ones."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a write thread (with the caller's context variables); its answer or its
        exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        job = (loop, future, lambda: context.run(fn, *args, **kwargs))
        with self._cond:
            self._jobs.append(job)
            if self._idle:
                self._cond.notify()
            elif len(self._threads) < self._most:
                thread = threading.Thread(target=self._work, args=(self._generation,), name=self._name, daemon=True)
                self._threads.append(thread)
                thread.start()
        return await future

    def stop(self) -> None:
        """End the threads once the writes handed to them are done (a later :meth:`run` starts others)."""
        with self._cond:
            threads, self._threads = self._threads, []
            self._generation += 1
            self._cond.notify_all()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)

    def _work(self, generation: int) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    if generation != self._generation:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                loop, future, call = self._jobs.popleft()
            try:
                outcome: tuple[Any, BaseException | None] = (call(), None)
            except BaseException as e:  # noqa: BLE001 - handed back to the request that awaits it
                outcome = (None, e)
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # that request's event loop has closed: nobody awaits the answer
                pass


Batch = Callable[[Any, str, list[Any]], Iterator[list[tuple[int, Any]]]]
"""A route's writes run together: ``(service, mechanism id, items)`` yields the answers as they are ready, in
groups of (the item's place in ``items``, its answer: a response, or the exception to answer it with); each
group is handed to the requests at once. An exception it raises answers every item not answered yet."""


class Batches:
    """One thread that runs a route's writes together: the writes that arrived while the thread was busy go
    in one call of the route's :data:`Batch` per mechanism, in the order they arrived. A write that comes
    after a write alone runs at once; after a batch of several, the thread first waits while more keep
    coming (:data:`LINGER_S`, at most half a millisecond). :meth:`run` awaits one write's answer from the
    event loop."""

    def __init__(
        self,
        name: str = "deconflict-batches",
        most: int = MOST_BATCHED,
        on_batch: Callable[[str, int], None] | None = None,
        linger_s: float = LINGER_S,
        linger_step_s: float = LINGER_STEP_S,
    ) -> None:
        self._name = name
        self._most = most
        self._linger_s = linger_s
        self._linger_step_s = linger_step_s
        self._last = 0
        """How many writes the last batch took (several: wait a little for more, :data:`LINGER_S`)."""
        self._on_batch = on_batch
        """Told of each call: the batch's name (its function's), and how many writes it ran together."""
        self._jobs: deque[tuple[Batch, Any, str, Any, asyncio.AbstractEventLoop, asyncio.Future[Any]]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._generation = 0

    @property
    def waiting(self) -> int:
        """Writes handed over and not taken into a batch yet."""
        with self._cond:
            return len(self._jobs)

    async def run(self, batch: Batch, service: Any, mechanism_id: str, item: Any) -> Any:
        """The answer ``batch`` gives ``item``, run with the other items of the same batch and mechanism
        waiting meanwhile; an exception the whole batch raised is raised here too."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._cond:
            self._jobs.append((batch, service, mechanism_id, item, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, args=(self._generation,), name=self._name, daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()
        return await future

    def stop(self) -> None:
        """End the thread once the writes handed to it are done (a later :meth:`run` starts another)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._generation += 1
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _work(self, generation: int) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    if generation != self._generation:
                        return
                    self._cond.wait()
                if self._last > 1:
                    self._linger()
                taken = [self._jobs.popleft() for _ in range(min(self._most, len(self._jobs)))]
                self._last = len(taken)
            groups: dict[tuple[int, int, str], list[int]] = {}
            for i, (batch, service, mechanism_id, _, _, _) in enumerate(taken):
                groups.setdefault((id(batch), id(service), mechanism_id), []).append(i)
            for members in groups.values():
                batch, service, mechanism_id = taken[members[0]][:3]
                if self._on_batch is not None:
                    self._on_batch(batch.__name__, len(members))
                answered: set[int] = set()
                try:
                    for group in batch(service, mechanism_id, [taken[i][3] for i in members]):
                        outcomes: list[tuple[int, tuple[Any, BaseException | None]]] = [
                            (members[k], (None, a) if isinstance(a, BaseException) else (a, None)) for k, a in group
                        ]
                        answered.update(k for k, _ in group)
                        self._hand_over(taken, outcomes)
                    missing = [k for k in range(len(members)) if k not in answered]
                    if missing:
                        raise RuntimeError(f"{batch.__name__} gave no answer to items {missing}")
                except BaseException as e:  # noqa: BLE001 - handed back to every request not answered yet
                    rest = [k for k in range(len(members)) if k not in answered]
                    self._hand_over(taken, [(members[k], (None, _own(e))) for k in rest])

    def _linger(self) -> None:
        """Wait (the condition held) while writes keep arriving, up to :data:`LINGER_S`, each step at most
        :data:`LINGER_STEP_S`, or until a batch is full: the event loop reads the next writes meanwhile."""
        deadline = time.monotonic() + self._linger_s
        while len(self._jobs) < self._most:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            seen = len(self._jobs)
            self._cond.wait(min(left, self._linger_step_s))
            if len(self._jobs) == seen:
                return

    @staticmethod
    def _hand_over(taken: list[Any], outcomes: list[tuple[int, tuple[Any, BaseException | None]]]) -> None:
        """Settle the requests' futures, with one wake-up of each event loop."""
        settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for i, outcome in outcomes:
            settled.setdefault(taken[i][4], []).append((taken[i][5], outcome))
        for loop, answers in settled.items():
            try:
                loop.call_soon_threadsafe(_settle_all, answers)
            except RuntimeError:  # that event loop has closed: nobody awaits these answers
                pass


def _own(error: BaseException) -> BaseException:
    """A copy of ``error`` for one request (its type and arguments; the original as its cause), so that
    requests answered with one failure do not share an exception and its traceback; ``error`` itself when it
    cannot be copied."""
    try:
        mine = copy.copy(error)
    except Exception:  # noqa: BLE001 - an exception that cannot be rebuilt from its arguments
        return error
    if type(mine) is not type(error) or mine is error:
        return error
    mine.__cause__ = error
    mine.__traceback__ = None
    return mine


def _settle_all(answers: list[tuple[asyncio.Future[Any], tuple[Any, BaseException | None]]]) -> None:
    for future, outcome in answers:
        _settle(future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    value, error = outcome
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


@dataclass(frozen=True)
class FastRoute:
    """A write route :class:`FastWrites` answers itself when the request is plain."""

    method: str
    path: str
    """The route's path template under the API prefix, e.g. ``/mechanisms/{mechanism_id}/messages``."""
    endpoint: Callable[..., Any]
    """The route's own function: called with ``caller``, ``service``, ``mode`` and the body as ``body_arg``."""
    body_arg: str
    model: type[BaseModel]
    batch: Batch | None = None
    """The route's writes run together (:class:`Batches`), when it has a way to: each with ``(caller, body)``."""


def routes() -> tuple[FastRoute, ...]:
    """:data:`ROUTES` (imported late: the route modules import this package)."""
    from deconflict.api.routes import activities, hotline
    from deconflict.api.schemas import NoticeIn

    return (
        FastRoute(
            "POST",
            "/mechanisms/{mechanism_id}/activities",
            activities.notify,
            "notice",
            NoticeIn,
            batch=activities.notify_many,
        ),
        FastRoute(
            "POST",
            "/mechanisms/{mechanism_id}/messages",
            hotline.send_message,
            "message",
            hotline.MessageIn,
            batch=hotline.send_messages,
        ),
    )


class FastWrites:
    """ASGI middleware: the plain requests to :func:`routes` answered here (see the module), the rest passed on."""

    def __init__(self, app: ASGIApp, *, prefix: str, writes: WriteThreads, batches: Batches | None = None) -> None:
        self.app = app
        self.writes = writes
        self.batches = batches
        self._routes: dict[str, list[tuple[Any, FastRoute]]] = {}
        for route in routes():
            assert route.method in WRITE_METHODS
            regex, _, _ = compile_path(prefix + route.path)
            self._routes.setdefault(route.method, []).append((regex, route))
        self._handlers: tuple[dict[Any, Any], dict[int, Any]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        candidates = self._routes.get(scope["method"])
        if candidates is not None:
            path = scope["path"]
            for regex, route in candidates:
                found = regex.match(path)
                if found is not None:
                    await self._write(route, found.group("mechanism_id"), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _write(self, route: FastRoute, mechanism_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        plain = await self._plain(route, mechanism_id, request)
        if plain is None:
            await self.app(scope, _replaying(request), send)
            return
        caller, address, argument = plain
        rates = limits(request)
        rates.known.add(address, caller.token)
        request.state.member = (caller.member.id, caller.mechanism_id)  # for the request's log line (ops.Observe)
        rates.writes.hit((caller.mechanism_id, caller.member.id))
        service = scope["app"].state.service
        try:
            if route.batch is not None and self.batches is not None:  # an error answer is raised by run()
                response: Response = await self.batches.run(
                    route.batch, service, caller.mechanism_id, (caller, argument)
                )
            else:
                response = await self.writes.run(
                    route.endpoint, caller=caller, service=service, mode=PLAIN, **{route.body_arg: argument}
                )
        except Exception as exc:  # noqa: BLE001 - answered as the route's own handling would, or passed up
            handler = self._handler(scope, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
            exc.__traceback__ = None
        await response(scope, _replaying(request), send)

    async def _plain(
        self, route: FastRoute, mechanism_id: str, request: Request
    ) -> tuple[Caller, str, BaseModel] | None:
        """The caller, its address and the validated body, when every dependency resolves the plain way
        and nothing would be refused; None otherwise (the request goes on to FastAPI). No side effect."""
        if len(mechanism_id) > MAX_MECHANISM_ID:
            return None
        authorization: bytes | None = None
        for name, value in request.scope["headers"]:
            if name.startswith(b"deconflict-"):
                return None  # prepared or signed (or a malformed attempt at it): FastAPI's signing_headers
            if authorization is None and name == b"authorization":
                authorization = value
        token = _bearer_token(authorization)
        if token is None:
            return None
        service = request.app.state.service
        rates = limits(request)
        client = request.scope.get("client")
        address = client[0] if client else ""
        if rates.auth_failures.wait_s(address) and (address, token) not in rates.known:
            return None
        try:
            found = await looked_up(request, service, token)
        except Exception:  # noqa: BLE001 - the store failed: FastAPI's dependency looks again and answers it
            return None
        if not isinstance(found, tuple) or found[0] != mechanism_id:
            return None
        caller = Caller(found[0], found[1], token)
        if rates.writes.wait_s((caller.mechanism_id, caller.member.id)):
            return None
        body = await request.body()
        if not body:
            return None
        left = request.scope.get(READ_KEY)  # the document BodyGuard read from these very bytes, when it kept one
        try:
            doc = left[1] if left is not None and left[0] == body else json.loads(body)
            argument = route.model.model_validate(doc)
        except (ValueError, ValidationError):  # not JSON (BodyGuard lets no such body through), or refused
            return None
        return caller, address, argument

    def _handler(self, scope: Scope, exc: Exception) -> Any:
        """The application's handler for ``exc``, as Starlette's ExceptionMiddleware would find it (not the
        one for ``Exception``/500: that one answers at the outermost layer, as for any route)."""
        if self._handlers is None:
            by_class: dict[Any, Any] = {}
            by_status: dict[int, Any] = {}
            for key, value in scope["app"].exception_handlers.items():
                if key in (500, Exception):
                    continue
                if isinstance(key, int):
                    by_status[key] = value
                else:
                    by_class[key] = value
            self._handlers = (by_class, by_status)
        by_class, by_status = self._handlers
        handler = by_status.get(exc.status_code) if isinstance(exc, StarletteHTTPException) else None
        return handler or _lookup_exception_handler(by_class, exc)


def _bearer_token(authorization: bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, read as FastAPI's ``HTTPBearer`` reads it
    (the first such header; the scheme in any case, the token stripped); None for any other header or none."""
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if not scheme or not token or scheme.lower() != "bearer":
        return None
    return token


def _replaying(request: Request) -> Receive:
    """The request's receive channel with its body, once read here, given again to whoever reads next."""
    body: bytes | None = getattr(request, "_body", None)
    receive = request.receive
    if body is None:
        return receive
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
