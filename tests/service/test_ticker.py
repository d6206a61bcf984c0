"""Exactly one process runs the duty loop (issue 15): the lease in the database, taken at a tick, renewed
at each of the holder's ticks, and taken over by another process once it has run out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.builders import HAMA, T0, M, declared_db, vol

from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.service.recheck import recheck
from deconflict.service.ticker import LEASE_S, lease
from deconflict.store import open_store


def _two(tmp_path: Path) -> tuple[Service, Service, FixedClock]:
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "shared.db", clock)
    return Service(open_store(db), clock=clock), Service(open_store(db), clock=clock), clock


def test_one_process_ticks_and_another_takes_over_once_its_lease_runs_out(tmp_path: Path) -> None:
    a, b, clock = _two(tmp_path)
    assert a.tick() > 0  # the first line checks fall due at once
    holder, until = lease(a.store) or ("", T0)
    assert holder == a.context.holder and until == T0 + timedelta(seconds=LEASE_S)
    head = a.head(M).seq
    clock.advance(seconds=3)
    assert b.tick() == 0 and b.head(M).seq == head  # a holds it: b does nothing, writes nothing
    assert a.tick() == 0  # nothing due, but a renewed its lease
    clock.advance(seconds=LEASE_S - 1)
    assert b.tick() == 0 and (lease(b.store) or ("",))[0] == a.context.holder
    clock.advance(seconds=1)  # a has not ticked for LEASE_S: it is gone, b takes over
    b.tick()
    assert (lease(b.store) or ("",))[0] == b.context.holder
    clock.advance(seconds=1)
    assert a.tick() == 0  # a is back, but b holds it now


def test_a_takeover_misses_no_escalation_step_and_doubles_none(tmp_path: Path) -> None:
    """A short notice's alert goes unanswered for the whole ladder while the ticking process changes hands
    three times; each step is recorded once, when due, and the record rechecks clean."""
    a, b, clock = _two(tmp_path)
    a.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, T0 + timedelta(minutes=20))])
    services = [a, b]
    for minute in range(1, 130):
        clock.now = T0 + timedelta(minutes=minute)
        services[(minute // 30) % 2].tick()  # a ticks for half an hour, then b, then a again...
    docs = a.entries_after(M, 0, limit=10_000)
    steps = [(d["payload"]["id"], d["payload"]["rung"]) for d in docs if d["type"] == "message.escalated"]
    assert len(steps) == len(set(steps)) and ("M1", 3) in steps
    assert recheck(docs, mechanism=M).problems == []


def test_a_process_that_stops_cleanly_gives_up_the_lease_and_another_takes_over_at_its_next_tick(
    tmp_path: Path,
) -> None:
    """A server stopped cleanly (SIGTERM, a restart) gives up the lease: the next process ticks at once instead of
    ``LEASE_S`` later, when ``/readyz`` said another process held it and nothing was ticked."""
    a, b, clock = _two(tmp_path)
    a.tick()
    clock.advance(seconds=1)
    assert b.tick() == 0 and (lease(b.store) or ("",))[0] == a.context.holder
    a.release_duty()
    b.tick()  # within a's lease, had it not given it up
    holder, until = lease(b.store) or ("", T0)
    assert holder == b.context.holder and until == clock() + timedelta(seconds=LEASE_S)
    a.release_duty()  # not its own any more: nothing changes
    assert lease(b.store) == (holder, until)
