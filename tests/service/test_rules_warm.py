"""The record's authority rules read ahead when a server starts: the writer checks every entry against a state
built from the whole record, and the first write after a restart built it from entry 1 under the mechanism's
lock (1.8 s at 250k entries, linear), while every other write waited. ``Service.warm`` builds it off the lock;
the first write then catches up only what was appended since."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.builders import T4, M, vol
from support.live import LiveServer

from deconflict.clock import FixedClock
from deconflict.record import authority
from deconflict.service import Service
from deconflict.store import ledger, open_store


def _history(svc: Service, clock: FixedClock) -> None:
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=3)])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3)])  # a conflict, an alert
    for i in range(6):
        clock.advance(seconds=60)
        svc.send_message(mechanism_id=M, actor="TR" if i % 2 else "IL", text=f"message {i}", to=["IL", "TR"])
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id="C1")


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The record's entries the writers read for the rules, as they read them."""
    seen: list[int] = []
    original = ledger.payloads_between

    def counted(*args: Any, **kwargs: Any) -> Iterator[tuple[int, str, Any]]:
        for row in original(*args, **kwargs):
            seen.append(row[0])
            yield row

    monkeypatch.setattr(ledger, "payloads_between", counted)
    return seen


def _from_entry_1(svc: Service) -> authority.AuthorityState:
    state = authority.AuthorityState()
    with svc.store.read() as s:
        for seq, type_, payload in ledger.payloads_between(s, M, 0, svc.head(M).seq):
            authority.apply({"mechanism": M, "seq": seq, "type": type_, "payload": payload}, state)
    return state


def test_the_first_write_after_a_restart_catches_up_from_the_state_read_ahead(
    svc: Service, db: str, clock: FixedClock, read: list[int]
) -> None:
    _history(svc, clock)
    cold = Service(open_store(db), clock=clock)  # a restart without reading ahead: the first write reads it all
    read.clear()
    cold.send_message(mechanism_id=M, actor="TR", text="after a cold start", to=["IL"])
    assert read == list(range(1, cold.head(M).seq))
    restarted = Service(open_store(db), clock=clock)
    head = restarted.head(M).seq
    assert restarted.warm() == {M: head}
    svc.send_message(mechanism_id=M, actor="IL", text="from another process, meanwhile", to=["TR"])
    read.clear()
    sent = restarted.send_message(mechanism_id=M, actor="TR", text="after the restart", to=["IL"])
    assert read == [head + 1]  # what the other process appended, not the record from entry 1
    assert sent["seq"] == head + 2
    assert restarted._ctx.authority[M] == (head + 2, _from_entry_1(restarted))


def test_a_state_a_write_kept_first_is_not_replaced(svc: Service, db: str, clock: FixedClock) -> None:
    _history(svc, clock)
    kept = svc._ctx.authority[M]
    assert svc.warm() == {M: None}
    assert svc._ctx.authority[M] is kept


def test_a_server_reads_the_rules_ahead_as_it_starts(live: LiveServer, db: str, clock: FixedClock) -> None:
    head = live.service.head(M).seq
    waited = time.monotonic() + 10
    while M not in live.service._ctx.authority and time.monotonic() < waited:
        time.sleep(0.02)
    assert live.service._ctx.authority[M][0] == head  # before any write


def test_the_duty_loop_ticks_after_the_rules_are_read_ahead_at_each_start_of_the_same_app(
    svc: Service, db: str, clock: FixedClock
) -> None:
    """The duty loop's first pass waits for the rules read ahead: an application started again (its lifespan
    run once more, on another event loop) waits for its own reading and then ticks, even when the first run
    stopped before its reading was done."""
    import asyncio

    from deconflict.api import create_app
    from deconflict.api.settings import Settings

    read_ahead, ticks = svc.warm, []

    def slow_warm() -> dict[str, int | None]:
        time.sleep(0.6)
        return read_ahead()

    def tick(**kwargs: Any) -> int:
        ticks.append(time.monotonic())
        return 0

    svc.warm, svc.tick = slow_warm, tick  # type: ignore[method-assign]
    app = create_app(Settings(db=db, clock=clock, tick_s=0.05), svc)

    async def run(hold_s: float) -> None:
        """The application started, held for ``hold_s`` or until it has ticked, then stopped."""
        async with app.router.lifespan_context(app):
            until = time.monotonic() + hold_s
            while time.monotonic() < until and not ticks:
                await asyncio.sleep(0.02)

    asyncio.run(run(0.1))  # stopped before its reading was done: no pass
    assert ticks == []
    began = time.monotonic()
    asyncio.run(run(20.0))  # a machine under load may read for longer than the 0.6 s slept
    assert ticks and ticks[0] - began >= 0.55  # after its own reading, then every tick
