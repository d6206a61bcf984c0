"""api/fast.py: the plain notify and send-message requests answered without FastAPI's dependency solver give
the very answers FastAPI gives, and everything else still goes to FastAPI.

Two applications on two copies of one database (same keys, tokens and pinned clock): one as built, one
with no fast route. The same requests, in the same order, get the same status, headers and bytes from both.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import API, A, M, vol

from deconflict.api import create_app, fast
from deconflict.api.deps import MemberDep, ServiceDep, SigningDep
from deconflict.api.settings import Settings
from deconflict.clock import FixedClock
from deconflict.service import Service, credentials
from deconflict.store import open_store

LONG = "m" * 65


def _copy(db: str, to: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        if Path(db + suffix).exists():
            shutil.copy(db + suffix, str(to) + suffix)
    return str(to)


def _requests(tokens: dict[str, str]) -> list[tuple[str, str, dict[str, str], Any]]:
    tr, il, az = (f"Bearer {tokens[m]}" for m in ("TR", "IL", "AZ"))
    message = {"template": "holding", "params": {"ref": "C1"}, "to": ["IL"]}
    notice = {"kind": "uav_patrol", "volumes": [vol()]}
    return [
        ("GET", f"{API}/me", {"Authorization": tr}, None),  # the tokens' answers cached, as a server's are
        ("GET", f"{API}/me", {"Authorization": il}, None),
        ("GET", f"{API}/me", {"Authorization": az}, None),
        ("POST", f"{A}/messages", {"Authorization": tr}, message),
        ("POST", f"{A}/activities", {"Authorization": tr}, notice),
        ("POST", f"{A}/activities", {"Authorization": il}, {**notice, "title": "Caf\u00e9 patrol"}),
        ("POST", f"{A}/activities", {"Authorization": tr}, {**notice, "id": "TR-X1"}),
        ("POST", f"{A}/activities", {"Authorization": tr}, {**notice, "id": "TR-X1"}),  # 409: the service says
        ("POST", f"{A}/activities", {"Authorization": az}, notice),  # a facilitator may not notify: 403
        ("POST", f"{A}/messages", {"Authorization": tr}, {"template": "no-such-phrase"}),  # the service refuses
        ("POST", f"{A}/messages", {"Authorization": il}, {"text": "Please call.", "to": ["TR"], "lang": "en"}),
        ("POST", f"{A}/messages", {"Authorization": tr}, {**message, "extra": 1}),  # the model refuses: 422
        ("POST", f"{A}/activities", {"Authorization": tr}, {"kind": "picnic", "volumes": [vol()]}),
        ("POST", f"{A}/activities", {"Authorization": tr}, []),
        ("POST", f"{A}/messages", {}, message),  # no token: 401
        ("POST", f"{A}/messages", {"Authorization": "Bearer dcf_nope"}, message),
        ("POST", f"{A}/messages", {"Authorization": "Basic abc"}, message),
        ("POST", f"{API}/mechanisms/other/messages", {"Authorization": tr}, message),  # not its mechanism: 403
        ("POST", f"{API}/mechanisms/{LONG}/messages", {"Authorization": tr}, message),
        ("POST", f"{A}/messages/", {"Authorization": tr}, message),  # not the route's path
        ("POST", f"{A}/messages", {"Authorization": tr, "Deconflict-Prepare": "true"}, message),
        ("POST", f"{A}/activities", {"Authorization": tr, "Deconflict-Key-Id": "k"}, notice),
        ("POST", f"{A}/messages", {"Authorization": tr}, b""),
        ("POST", f"{A}/messages", {"Authorization": tr}, message),
        # the token read as HTTPBearer reads it: the scheme in any case, the token stripped
        ("POST", f"{A}/messages", {"Authorization": f"bearer {tokens['IL']}"}, {**message, "to": ["TR"]}),
        ("POST", f"{A}/messages", {"Authorization": f"Bearer  {tokens['TR']}"}, message),
        # bodies BodyGuard leaves no document for: normalised (NFC), and a number beyond a double's digits
        ("POST", f"{A}/messages", {"Authorization": il}, {"text": "Cafe\u0301 at 10?", "to": ["TR"], "lang": "en"}),
        ("POST", f"{A}/messages", {"Authorization": tr}, {**message, "params": {"ref": 123456789012345678901234}}),
        ("POST", f"{A}/messages", {"Authorization": tr}, {**message, "params": {"ref": -9223372036854775809}}),
    ]


def _count_batches(monkeypatch: pytest.MonkeyPatch, taken: list[str]) -> None:
    """Each write handed to :class:`fast.Batches` (the fast path) noted in ``taken`` by its batch's name."""
    batched = fast.Batches.run

    async def counted_batch(self: fast.Batches, batch: Any, *args: Any) -> Any:
        taken.append(batch.__name__)
        return await batched(self, batch, *args)

    monkeypatch.setattr(fast.Batches, "run", counted_batch)


async def _answers(app: Any, requests: list[tuple[str, str, dict[str, str], Any]]) -> list[tuple[Any, ...]]:
    out = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path, headers, body in requests:
            if isinstance(body, bytes):
                r = await client.request(method, path, headers={**headers, "Content-Type": "application/json"})
            else:
                r = await client.request(method, path, headers=headers, json=body)
            out.append((method, path, r.status_code, sorted(r.headers.multi_items()), r.content))
    return out


def test_plain_writes_answer_as_fastapi_does(
    db: str, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "://" in db:
        pytest.skip("copies an SQLite file")
    service = Service(open_store(db), clock=clock)
    tokens = {m: service.issue_token(mechanism_id=M, member_id=m) for m in ("TR", "IL", "AZ")}
    service.store.close()
    other = _copy(db, tmp_path / "reference.db")
    requests = _requests(tokens)
    taken: list[str] = []
    run = fast.WriteThreads.run

    async def counted(self: fast.WriteThreads, fn: Any, *args: Any, **kwargs: Any) -> Any:
        taken.append(fn.__name__)
        return await run(self, fn, *args, **kwargs)

    monkeypatch.setattr(fast.WriteThreads, "run", counted)
    _count_batches(monkeypatch, taken)
    monkeypatch.setattr(credentials, "TOKEN_CACHE_S", 3600.0)  # the answers cached by the warm-up stay, however slow
    fast_app = create_app(Settings(db=db, clock=clock, tick_s=0), Service(open_store(db), clock=clock))
    with monkeypatch.context() as m:
        m.setattr(fast, "routes", lambda: ())
        reference = create_app(Settings(db=other, clock=clock, tick_s=0), Service(open_store(other), clock=clock))
        reference.middleware_stack = reference.build_middleware_stack()  # its FastWrites made now, with no route
    got = asyncio.run(_answers(fast_app, requests))
    assert taken, "no request took the fast path"
    fast_count = len(taken)
    want = asyncio.run(_answers(reference, requests))
    assert len(taken) == fast_count, "the reference application took the fast path"
    for mine, theirs in zip(got, want, strict=True):
        assert mine == theirs
    statuses = [g[2] for g in got]
    assert statuses[3:7] == [201, 201, 201, 201] and {307, 401, 403, 409, 422} <= set(statuses)
    # every plain write went the fast way (those the service refused too), and nothing else did; the
    # messages and the notices through the batches
    assert taken == ["send_messages", *["notify_many"] * 5, *["send_messages"] * 8], taken
    assert [g[2] for g in got[-5:-2]] == [201, 201, 201] and "Caf\u00e9 at 10?" in got[-3][4].decode()


def test_each_fast_route_takes_what_the_fast_path_resolves() -> None:
    """A fast route's function takes exactly the caller, the service, the signing mode and its body model,
    and is the function a route of the application serves at that method and path: a change to the route's
    parameters must be made here too."""
    app = create_app(Settings(db="sqlite:///:memory:", tick_s=0))
    schema = app.openapi()["paths"]
    for route in fast.routes():
        params = inspect.signature(route.endpoint, eval_str=True).parameters
        assert {name: p.annotation for name, p in params.items()} == {
            "caller": MemberDep,
            "service": ServiceDep,
            "mode": SigningDep,
            route.body_arg: route.model,
        }, route
        operation = schema[API + route.path][route.method.lower()]
        assert operation["operationId"].startswith(route.endpoint.__name__), (operation["operationId"], route)


def test_writes_that_arrive_while_a_batch_runs_are_run_together() -> None:
    """Batches: the first write runs alone; those that arrive meanwhile go in the next call, one per mechanism,
    in their order; each gets its own answer (an exception its own request raises) as soon as its group is
    given, and an exception the call raises reaches every write not answered yet, each its own copy."""
    batches = fast.Batches()
    calls: list[tuple[str, list[int]]] = []
    started, release = threading.Event(), threading.Event()

    def batch(service: Any, mechanism_id: str, items: list[int]) -> Iterator[list[tuple[int, Any]]]:
        calls.append((mechanism_id, list(items)))
        if items == [0]:
            started.set()
            release.wait(10)
        if mechanism_id == "broken":
            yield [(0, items[0] * 10)]
            raise RuntimeError("the database went away")
        yield [(k, ValueError(i) if i == 3 else i * 10) for k, i in enumerate(items) if i != 2]
        yield [(k, i * 10) for k, i in enumerate(items) if i == 2]

    async def main() -> list[Any]:
        first = asyncio.create_task(batches.run(batch, None, "m", 0))
        assert await asyncio.to_thread(started.wait, 10)  # the first write is running, held
        rest = [asyncio.create_task(batches.run(batch, None, mid, i)) for mid, i in [("m", 1), ("n", 4), ("m", 2)]]
        rest += [asyncio.create_task(batches.run(batch, None, mid, i)) for mid, i in [("m", 3), ("broken", 5)]]
        rest += [asyncio.create_task(batches.run(batch, None, "broken", i)) for i in (6, 7)]
        await asyncio.sleep(0.05)  # every one of them queued
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        batches.stop()
    assert calls == [("m", [0]), ("m", [1, 2, 3]), ("n", [4]), ("broken", [5, 6, 7])]
    assert answers[:4] == [0, 10, 40, 20]
    assert isinstance(answers[4], ValueError) and answers[4].args == (3,)
    assert answers[5] == 50
    lost = answers[6:]
    assert all(isinstance(a, RuntimeError) and str(a) == "the database went away" for a in lost)
    assert lost[0] is not lost[1] and lost[0].__cause__ is lost[1].__cause__  # copies of the one failure


def test_after_writes_that_came_together_the_next_batch_waits_for_those_still_coming() -> None:
    """After a batch of several writes the thread waits while more keep coming (``LINGER_S``): writers it has
    just answered send their next writes into one batch, not into two that alternate (8 hotline clients made
    batches of 4). The wait ends at the first step that brings nothing; after a write alone, the next runs
    at once."""
    step = 1.5  # a write that waited one step would take 1.5 s; one run at once takes milliseconds, loaded or not
    batches = fast.Batches(linger_s=10.0, linger_step_s=step)
    calls: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def batch(service: Any, mechanism_id: str, items: list[int]) -> Iterator[list[tuple[int, Any]]]:
        calls.append(list(items))
        if items == [0]:
            started.set()
            release.wait(10)
        yield list(enumerate(items))

    async def main() -> float:
        first = asyncio.create_task(batches.run(batch, None, "m", 0))
        assert await asyncio.to_thread(started.wait, 10)
        together = [asyncio.create_task(batches.run(batch, None, "m", i)) for i in (1, 2)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, *together)  # [1, 2]: several at once
        third = asyncio.create_task(batches.run(batch, None, "m", 3))
        await asyncio.sleep(0.05)  # well within a step: the thread is still waiting for more
        assert await asyncio.gather(third, batches.run(batch, None, "m", 4)) == [3, 4]
        assert await batches.run(batch, None, "m", 5) == 5  # after [3, 4] it waits one step, then runs alone
        began = time.monotonic()
        assert await batches.run(batch, None, "m", 6) == 6  # after a write alone: at once
        return time.monotonic() - began

    try:
        alone = asyncio.run(main())
    finally:
        batches.stop()
    assert calls == [[0], [1, 2], [3, 4], [5], [6]]
    assert alone < step / 2


def test_writes_presenting_a_token_not_looked_up_lately_share_one_lookup_and_stay_fast(
    db: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy member's writes that come while the answer about its token is not cached (it lasts
    ``TOKEN_CACHE_S``, a second) wait for one lookup of the token and are answered on the fast path. Each
    went to FastAPI and read the token itself: once a second, a burst of the hotline's writes took the slow
    way. A revoked token is still refused, once its cached answer has run out."""
    service = Service(open_store(db), clock=clock)
    tr = service.issue_token(mechanism_id=M, member_id="TR")
    app = create_app(Settings(db=db, clock=clock, tick_s=0), service)
    looked: list[str] = []
    lookup = Service.authenticate

    def counted_lookup(self: Service, token: str) -> Any:
        looked.append(token)
        time.sleep(0.05)  # a store slow to answer: the other writes come while the lookup is under way
        return lookup(self, token)

    taken: list[str] = []
    monkeypatch.setattr(Service, "authenticate", counted_lookup)
    _count_batches(monkeypatch, taken)
    message = {"template": "holding", "params": {"ref": "C1"}, "to": ["IL"]}

    async def burst(client: httpx.AsyncClient, n: int) -> list[int]:
        sent = [client.post(f"{A}/messages", headers={"Authorization": f"Bearer {tr}"}, json=message) for _ in range(n)]
        return [r.status_code for r in await asyncio.gather(*sent)]

    async def main() -> tuple[list[int], int, list[int]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            first = await burst(client, 12)
            lookups = len(looked)
            service.revoke_tokens(mechanism_id=M, member_id="TR")  # clears this service's cache
            return first, lookups, await burst(client, 3)

    try:
        first, lookups, after_revoking = asyncio.run(main())
    finally:
        service.store.close()
    assert first == [201] * 12
    assert taken == ["send_messages"] * 12  # every one on the fast path
    assert lookups == 1 and looked[0] == tr  # one lookup for the whole burst
    assert after_revoking == [401] * 3
