"""The writer's fast path (issue 17) keeps the record's rules. A write that passed the record's gate and
compared its picture with the stored head after taking it does not read the head again under the record's
lock; a writer that came in without the gate meanwhile is still caught (the ledger's primary key refuses the
second entry at the same place) and the write runs again on a fresh picture: one chain, no gap, no fork.
Real SQLite, pinned clocks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from support.builders import T0, M, declared_db, vol

from deconflict.clock import FixedClock
from deconflict.service import Service, notices
from deconflict.store import open_store


class Intruding:
    """A clock that, once armed, first lets ``act`` write (the use case reads the clock after its picture
    was compared with the stored head, before it appends)."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.act: Callable[[], None] | None = None

    def __call__(self) -> datetime:
        act, self.act = self.act, None
        if act is not None:
            act()
        return self.clock()


def seqs(svc: Service) -> list[int]:
    return [int(e["seq"]) for e in svc.entries_after(M, 0, limit=100_000)]


def test_a_writer_without_the_gate_is_caught_and_the_write_runs_again_on_the_record_it_left(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "record.db", FixedClock(T0))
    clock = Intruding(FixedClock(T0))
    a = Service(open_store(db), clock=clock)
    b = Service(open_store(db), clock=FixedClock(T0))
    a.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])  # pictures built
    b.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=30)])
    assert a.context.reruns == 0

    def intrude() -> None:  # the use case itself, without `retrying` (no gate): a writer the gate never saw
        notices.notify.__wrapped__(  # type: ignore[attr-defined]
            b.context, mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=40)]
        )

    head = seqs(a)[-1]
    clock.act = intrude
    out = a.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=50)])
    assert a.context.reruns == 1  # its first run met the intruder's entry at its place, and ran again
    found = seqs(a)
    assert found == list(range(1, len(found) + 1))  # one chain, no gap
    entries = a.entries_after(M, head, limit=100)
    assert [e["payload"]["party"] for e in entries if e["type"] == "activity.notified"] == ["IL", "TR"]
    assert out.seq == found[-1] and out.activity is not None
    assert out.activity.id in {e["payload"]["id"] for e in entries if e["type"] == "activity.notified"}
    assert a.verify(M).ok
    a.store.close()
    b.store.close()


def test_a_write_through_the_gate_reads_no_head_again_and_times_follow_the_last_entry(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "record.db", FixedClock(T0))
    clock = FixedClock(T0)
    svc = Service(open_store(db), clock=clock)
    for n in range(4):
        clock.advance(seconds=60)
        svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": f"C{n}"}, to=["IL"])
    clock.advance(seconds=-600)  # the clock steps back: the next entry takes the last one's time
    svc.send_message(mechanism_id=M, actor="IL", template="holding", params={"ref": "C9"}, to=["TR"])
    times = [e["at"] for e in svc.entries_after(M, 0, limit=100_000)]
    assert times[-1] == times[-2] == "2025-04-09T06:04:00Z"
    assert svc.context.reruns == 0 and svc.verify(M).ok
    svc.store.close()
