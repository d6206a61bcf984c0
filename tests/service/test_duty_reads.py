"""What the duty loop reads every second stays small however long the channel grows.

The loop asks, for each party, for the latest line check sent to it and whether its line was announced
down after that check; the hotline's ``lines`` asks the same. Before migration 0014 both read every
message of the mechanism (the only index began with the mechanism alone) and sorted the line checks:
a tick took 155 ms at 100,000 messages and 436 ms at 300,000, holding the record's lock all that time.
These tests read SQLite's plan of every statement on the messages that a tick and ``lines`` run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from support.builders import T0, T4, M, vol

from deconflict.clock import FixedClock
from deconflict.service import Service


def statements_run(svc: Service, wanted: Callable[[str], bool], *calls: Any) -> list[tuple[str, Any]]:
    """The statements ``calls`` ran that ``wanted`` picks (with their parameters)."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if wanted(statement):
            seen.append((statement, parameters))

    event.listen(svc.store.engine, "before_cursor_execute", capture)
    try:
        for call in calls:
            call()
    finally:
        event.remove(svc.store.engine, "before_cursor_execute", capture)
    return seen


def messages_read_by(svc: Service, *calls: Any) -> list[tuple[str, Any]]:
    """The statements on the messages table (with their parameters) that ``calls`` ran."""
    return statements_run(
        svc, lambda statement: "FROM messages" in statement and statement.lstrip().upper().startswith("SELECT"), *calls
    )


def whole_channel_reads(svc: Service, statements: list[tuple[str, Any]]) -> list[str]:
    """The plan steps that read the messages table whole, or every message of the mechanism."""
    bad = []
    with svc.store.engine.connect() as conn:
        for statement, parameters in statements:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
                step = str(row[3])
                if " messages" in step and ("SCAN messages" in step or step.endswith("(mechanism_id=?)")):
                    bad.append(f"{step}  <-  {' '.join(statement.split())[:160]}")
    return bad


def test_a_tick_and_the_lines_read_the_line_checks_by_subject_not_the_whole_channel(
    svc: Service, clock: FixedClock
) -> None:
    svc.tick()  # the first line checks go out
    for n in range(20):  # a channel with other traffic in it (from IL only: TR stays silent)
        svc.send_message(mechanism_id=M, actor="IL", template="holding", params={"ref": f"C{n}"}, to=["TR"])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, T0 + timedelta(hours=3))])
    clock.advance(seconds=11 * 60)  # past the checks' deadline: TR silent (down), IL heard from (late)
    svc.tick()
    assert svc.line_status(M) == {"IL": "late", "TR": "down"}
    clock.advance(seconds=61)

    statements = messages_read_by(svc, svc.tick, lambda: svc.line_status(M))

    asked = " ".join(s for s, _ in statements)
    assert "messages.about_id" in asked  # the line-check questions were among them
    assert whole_channel_reads(svc, statements) == []


def test_a_page_of_the_channel_is_read_in_the_records_order_not_sorted_whole(svc: Service) -> None:
    """``messages`` (``GET .../messages``) reads the channel from a sequence number on, a page at a time,
    until it has the messages the reader may see: through the index in the record's order (migration 0015).
    Without it each read sorted the whole channel: 4.9 s of CPU for one page at 100,000 messages."""
    for n in range(5):
        svc.send_message(mechanism_id=M, actor="TR", text=f"to the facilitator {n}", to=["AZ"])
    il = svc.member(M, "IL")
    statements = messages_read_by(svc, lambda: svc.messages(M, reader=il, after_seq=2, limit=1))
    statements += messages_read_by(svc, lambda: svc.messages(M, reader=il, limit=1, newest=True))  # from its end
    assert len(statements) >= 2
    sorted_whole = []
    with svc.store.engine.connect() as conn:
        for statement, parameters in statements:
            steps = [str(row[3]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            if any("TEMP B-TREE" in step for step in steps) or not any("ix_messages_seq" in s for s in steps):
                sorted_whole.append(f"{steps}  <-  {' '.join(statement.split())[:160]}")
    assert sorted_whole == []


def test_what_waits_on_a_party_is_read_through_the_open_messages_not_the_channel(svc: Service) -> None:
    """``waiting`` (``GET .../waiting``, what a duty officer taking over the shift sees first) and the channel's
    messages that wait on the reader read the few open messages through ``ix_messages_open``. Asked for those
    after a sequence number in SQL, SQLite walked every message of the mechanism through ``ix_messages_seq``
    instead: 52 ms a read at 250,000 messages, for the 2 that were open."""
    svc.tick()  # line checks: open messages
    for n in range(20):
        svc.send_message(mechanism_id=M, actor="IL", template="holding", params={"ref": f"C{n}"}, to=["TR"])
    tr = svc.member(M, "TR")
    statements = messages_read_by(
        svc,
        lambda: svc.waiting(M, reader=tr),
        lambda: svc.messages(M, reader=tr, awaiting=True),
        lambda: svc.messages(M, reader=tr, awaiting=True, after_seq=3, newest=True),
    )
    assert len(statements) >= 3
    walked = []
    with svc.store.engine.connect() as conn:
        for statement, parameters in statements:
            steps = [str(row[3]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            if not any("ix_messages_open" in step for step in steps):
                walked.append(f"{steps}  <-  {' '.join(statement.split())[:160]}")
    assert walked == []
    assert [m["type"] for m in svc.messages(M, reader=tr, awaiting=True)] == ["line_check"]
    assert svc.messages(M, reader=tr, awaiting=True, after_seq=10_000) == []


def ledger_reads_for_signs_of_life(svc: Service, *calls: Any) -> list[dict[str, Any]]:
    """The parameters of each search of the record for a party's sign of life since its line check."""
    found = statements_run(svc, lambda statement: "FROM ledger" in statement and "ledger.actor IN" in statement, *calls)
    return [dict(zip(["mechanism", "after", "upto"], parameters[:3], strict=True)) for _, parameters in found]


def head_seq(svc: Service) -> int:
    with svc.store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT max(seq) FROM ledger").scalar_one())


def test_a_silent_partys_sign_of_life_is_looked_for_only_in_the_entries_since_the_last_tick(
    svc: Service, clock: FixedClock
) -> None:
    svc.tick()  # the first line checks go out
    checked = head_seq(svc)
    for n in range(30):  # IL talks, TR stays silent
        svc.send_message(mechanism_id=M, actor="IL", template="holding", params={"ref": f"C{n}"}, to=["TR"])
    clock.advance(seconds=11 * 60)  # past the checks' deadline: TR down, IL late
    first = ledger_reads_for_signs_of_life(svc, svc.tick)
    assert svc.line_status(M) == {"IL": "late", "TR": "down"}
    assert sorted(r["after"] for r in first) == [checked - 1, checked]  # each party's check (IL's, then TR's)
    read_to = head_seq(svc)
    for n in range(5):  # more of IL's traffic; TR silent still
        svc.send_message(mechanism_id=M, actor="IL", template="holding", params={"ref": f"D{n}"}, to=["TR"])
    clock.advance(seconds=61)

    again = ledger_reads_for_signs_of_life(svc, svc.tick, lambda: svc.line_status(M))

    # IL was heard from already: not looked for again; TR only in what came since the last look
    assert again and all(r["after"] >= read_to - 1 for r in again), (again, read_to)
    assert svc.line_status(M) == {"IL": "late", "TR": "down"}
    svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "C1"}, to=["IL"])
    clock.advance(seconds=61)
    svc.tick()
    assert svc.line_status(M)["TR"] == "late"  # a sign of life after its check, found in the new entries only


def _tr_silent_since_its_check(svc: Service, clock: FixedClock) -> tuple[int, Any]:
    """Both parties' lines checked, IL speaks, TR stays silent past its deadline: the head at the checks, and
    what the tick kept of TR (``queries.Heard``)."""
    svc.tick()
    checked = head_seq(svc)
    svc.send_message(mechanism_id=M, actor="IL", template="holding", params={"ref": "C1"}, to=["TR"])
    clock.advance(seconds=11 * 60)
    svc.tick()
    return checked, svc.context.heard[(M, "TR")]


def test_what_was_read_is_read_again_when_the_record_no_longer_holds_that_entry(
    svc: Service, clock: FixedClock
) -> None:
    from dataclasses import replace

    from deconflict.record.chain import Head

    checked, kept = _tr_silent_since_its_check(svc, clock)
    assert kept.at is None and kept.upto.seq > checked
    # as if the record had been restored from a backup and written over since: that entry is another now
    svc.context.heard[(M, "TR")] = replace(kept, upto=Head(kept.upto.seq, "0" * 64))
    clock.advance(seconds=61)

    again = ledger_reads_for_signs_of_life(svc, svc.tick)

    assert checked in [r["after"] for r in again]  # TR's check looked at again from the check on
    assert svc.line_status(M) == {"IL": "late", "TR": "down"}


def test_what_was_read_for_other_members_is_read_again(svc: Service, clock: FixedClock) -> None:
    from dataclasses import replace

    checked, kept = _tr_silent_since_its_check(svc, clock)
    # as if the last look had been made with a picture that did not know all of TR's members yet
    svc.context.heard[(M, "TR")] = replace(kept, members=kept.members[:-1])
    clock.advance(seconds=61)

    again = ledger_reads_for_signs_of_life(svc, svc.tick)

    assert checked in [r["after"] for r in again]
    assert svc.context.heard[(M, "TR")].members == kept.members
