"""The duty loop: what stored times make due (escalation steps up the ladder, line checks, a line
reported down), each party's line, and what waits on a party now. Driven by stored instants, not
sleeping tasks, so that after a restart the first tick records exactly what fell due meanwhile.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from deconflict import hotline as phrases
from deconflict.clock import iso
from deconflict.model import ConflictStatus, Member, Role, Rung
from deconflict.record.chain import EntryType
from deconflict.service import mechanisms, queries, record, ticker, tracks
from deconflict.service.context import SYSTEM, Context, retrying
from deconflict.service.picture import Picture, answering
from deconflict.service.posting import post_standard
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ConflictRow, MessageRow

__all__ = [
    "escalation_start",
    "line_status",
    "record_due",
    "release",
    "tick",
    "tick_mechanism",
    "waiting",
    "write_due_snapshots",
]

log = logging.getLogger("deconflict.duty")


def tick(ctx: Context, *, snapshots: bool = True) -> int:
    """Record what stored times make due now in every mechanism: escalation steps, line checks, lines
    down, the tactical picture moving on, and a checkpoint when one is due; then, unless ``snapshots`` is
    False, write the next replay snapshot due (:func:`write_due_snapshots`). Returns entries written.

    Only the process holding the duty lease ticks (:mod:`deconflict.service.ticker`); in the others a
    tick takes the lease if it has run out, and otherwise does nothing."""
    ctx.duty_held = ticker.hold(ctx.store, ctx.holder or _holder(ctx), ctx.clock())
    if not ctx.duty_held:
        return 0
    written = sum(_tick_one(ctx, mechanism_id) for mechanism_id in mechanisms.mechanism_ids(ctx))
    if snapshots:
        write_due_snapshots(ctx)
    return written


def release(ctx: Context) -> None:
    """Give up the duty lease this process held at its last tick (a clean stop), so that another takes over at
    its next tick; nothing when it held none (another process ticks, or the database takes no writes)."""
    if ctx.holder and ctx.duty_held:
        ticker.release(ctx.store, ctx.holder, ctx.clock())
    ctx.duty_held = False


def write_due_snapshots(ctx: Context) -> None:
    """Write the next replay snapshot due in every mechanism whose last one's time is paid back
    (:data:`SNAPSHOT_SHARE`), when this process held the duty lease at its last tick. A server runs this in a
    thread of its own, beside the tick rather than in it: a whole snapshot costs time in proportion to the
    record's state (15.9 s at 800k rows), and the tick must not wait that long to record an escalation or
    a predicted loss of separation. Two processes that both write one meet on its primary key."""
    if not ctx.duty_held:
        return
    for mechanism_id in mechanisms.mechanism_ids(ctx):
        _snapshot(ctx, mechanism_id)


SNAPSHOT_SHARE = 0.05
"""The most of one core replay snapshots take: after one that took t seconds the next waits t / SNAPSHOT_SHARE.
A snapshot costs about a second at 100,000 rows, and under a burst of writes one falls due every few
seconds: notices and the hotline come first, and the snapshots catch up when the load falls."""


def _snapshot(ctx: Context, mechanism_id: str) -> None:
    """Write the next replay snapshot due, if one is and the last one's time is paid back (outside the
    mechanism's lock: appends go on meanwhile). A snapshot only makes replay faster: a failure is logged
    and tried again at a later tick."""
    if time.monotonic() < ctx.snapshot_after.get(mechanism_id, 0.0):
        return
    try:
        written = record.write_snapshots(ctx, mechanism_id)
    except Exception:  # noqa: BLE001 - never stops the duty loop; replay falls back to older snapshots
        log.exception("%s: replay snapshot not written", mechanism_id)
        ctx.snapshot_after[mechanism_id] = time.monotonic() + 60.0
        return
    spent = sum(w.seconds for w in written)
    ctx.snapshot_after[mechanism_id] = time.monotonic() + spent / SNAPSHOT_SHARE


@retrying
def _tick_one(ctx: Context, mechanism_id: str) -> int:
    """One mechanism's tick, run again on a fresh picture when another process appended meanwhile."""
    with ctx.exclusive(mechanism_id) as picture:
        written = tick_mechanism(ctx, picture, ctx.clock())
        written += tracks.tactical_tick(ctx, picture, ctx.clock())
        if _checkpoint_due(picture.checkpointed_at, ctx.clock(), ctx.checkpoint_interval_s):
            record.checkpoint(ctx, mechanism_id)
    return written


def _holder(ctx: Context) -> str:
    ctx.holder = ticker.holder_name()
    return ctx.holder


def _checkpoint_due(last: datetime | None, now: datetime, interval_s: float) -> bool:
    """Whether a checkpoint is due: none signed yet by this process, the interval has passed on the
    service's clock, or that clock stepped back since the last one (the checkpoint is then clamped)."""
    if last is None:
        return True
    elapsed = (now - last).total_seconds()
    return elapsed >= interval_s or elapsed < 0


def tick_mechanism(ctx: Context, picture: Picture, now: datetime) -> int:
    """Record the escalation steps, lines down and line checks due at ``now``; returns entries written."""
    with RecordWriter(ctx, picture.mechanism.id, picture=picture) as w:
        return record_due(w, picture, now, heard=ctx.heard)


def record_due(w: RecordWriter, picture: Picture, now: datetime, *, heard: queries.HeardKept | None = None) -> int:
    """Append, in ``w``'s transaction, what stored times make due at ``now``: each unanswered message's
    escalation steps (and who they alert), a line reported down, a line check. Returns entries written.

    One function for the live tick and for ``ledger verify``'s recomputation of a record
    (:mod:`deconflict.service.recheck`), which runs it on the state the record had at a tick's time.
    """
    rules = picture.mechanism.rules
    mid = picture.mechanism.id
    s = w.session
    written = 0
    # only the messages whose first step can be due: the ladder starts at the send time or the inherited
    # deadline's start (escalation_start), and its first step comes an acknowledgement deadline later; the
    # others (every alert still in its first window) are not read at all
    first_step_by = now - timedelta(seconds=rules.ack_deadline_s)
    open_rows = queries.by_seq(
        s.scalars(
            select(MessageRow).where(
                *queries.unanswered(mid),
                MessageRow.steps < len(rules.ladder) - 1,
                or_(MessageRow.sent_at <= first_step_by, MessageRow.deadline <= now),
            )
        )
    )
    checks = {party: queries.last_line_check(s, mid, party) for party in sorted(picture.mechanism.parties())}
    downs = {party: bool(row and queries.line_down_posted(s, mid, row.id)) for party, row in checks.items()}
    heard_at = {party: queries.heard_since(s, picture, party, row, heard) for party, row in checks.items()}
    facilitators = sorted({m.party for m in picture.mechanism.members if m.role is Role.FACILITATOR})
    for row in open_rows:
        # the ladder runs from the deadline the message carries (an alert re-raised by an amendment
        # keeps the deadline of the one it replaces), which is sent_at + ack_deadline_s otherwise
        for step in phrases.due_steps(
            escalation_start(row, rules.ack_deadline_s), rules.ack_deadline_s, rules.ladder, None, now, row.steps
        ):
            payload = {"id": row.id, "rung": step.rung, "name": step.name, "due_at": iso(step.due_at)}
            w.append(SYSTEM, EntryType.MESSAGE_ESCALATED, payload, now)
            to = sorted(told_of_a_step(row, now) | (set(facilitators) if step.rung == len(rules.ladder) - 1 else set()))
            params = {"ref": row.id, "t1": step.due_at, "rung": step.name}
            post_standard(w, picture, "escalated_to", params, to, (queries.ABOUT_MESSAGE, row.id), now)
            written += 2
    for party, last in checks.items():
        if last is not None and not downs[party]:
            state = phrases.line_state(
                last.sent_at, last.acknowledged_at, rules.ack_deadline_s, now, heard_at=heard_at[party]
            )
            if state is phrases.LineState.DOWN:
                others = sorted(answering(picture) - {party})
                params = {"party": party, "t1": last.sent_at}
                post_standard(w, picture, "line_down", params, others, (queries.ABOUT_MESSAGE, last.id), now)
                written += 1
        if phrases.line_check_due(last.sent_at if last else None, rules.line_check_interval_s, now):
            params = {"party": party, "t1": now}
            post_standard(w, picture, phrases.MessageType.LINE_CHECK.value, params, [party], ("party", party), now)
            written += 1
    return written


AWAITED_ONLY_SINCE = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
"""From this instant a message's escalation is told to the parties it still awaits, not to those that answered
in time (a query to the facilitator and Türkiye, answered by Türkiye at once, told Türkiye at its deadline that
nobody had answered). A step before it was told to every addressee, as the service wrote it then, which
``ledger verify`` recomputes so."""


def told_of_a_step(row: MessageRow, now: datetime) -> set[str]:
    """Whom the notice of a message's escalation step goes to (beside the facilitator at the last rung): the
    addressees that have not acknowledged it (every addressee before :data:`AWAITED_ONLY_SINCE`)."""
    if now < AWAITED_ONLY_SINCE:
        return set(row.recipients)
    return set(row.recipients) - set(row.acknowledged or {})


def escalation_start(row: MessageRow, ack_deadline_s: float) -> datetime:
    """When a message's ladder starts: when it was sent, or earlier when it carries an inherited deadline."""
    if row.deadline is None:
        return row.sent_at
    return min(row.sent_at, row.deadline - timedelta(seconds=ack_deadline_s))


def line_status(ctx: Context, mechanism_id: str) -> dict[str, str]:
    """Each party's line: up; pending (a check awaits its answer, in time); late (unanswered past its
    deadline, but the party has acted since it was sent); down (unanswered, and nothing heard since)."""
    picture = ctx.pictures.get(mechanism_id)
    now = ctx.clock()
    out = {}
    with ctx.store.read() as s:
        for party in sorted(picture.mechanism.parties()):
            last = queries.last_line_check(s, mechanism_id, party)
            if last is None:
                out[party] = phrases.LineState.UP.value
            else:
                ack_s = picture.mechanism.rules.ack_deadline_s
                heard = queries.heard_since(s, picture, party, last, ctx.heard)
                out[party] = phrases.line_state(last.sent_at, last.acknowledged_at, ack_s, now, heard_at=heard).value
    return out


def next_step(row: MessageRow, ack_deadline_s: float, ladder: tuple[Rung, ...]) -> tuple[datetime, str] | None:
    """When the ladder next climbs for a message nobody answers, and the rung it alerts then: the deadline of
    the rung it has reached (its ``steps`` recorded); None once it has reached the last rung."""
    if row.steps >= len(ladder) - 1:
        return None
    windows = phrases.ladder_schedule(escalation_start(row, ack_deadline_s), ack_deadline_s, ladder)
    climb = windows[row.steps + 1]
    return climb.alerted_at, climb.name


def overdue_steps(ctx: Context, mechanism_id: str, before: datetime) -> int:
    """What of the duty loop's work fell due before ``before`` and is not in a record (what ``ledger verify``
    names as missing before the next entry, past its grace): unanswered messages with an escalation step due,
    and parties whose next line check was due (after the last one the record holds: the first comes when a
    server first runs)."""
    picture = ctx.pictures.get(mechanism_id)
    rules = picture.mechanism.rules
    with ctx.store.read() as s:
        rows = s.scalars(
            select(MessageRow).where(*queries.unanswered(mechanism_id), MessageRow.steps < len(rules.ladder) - 1)
        )
        steps = sum(
            1
            for row in rows
            if (step := next_step(row, rules.ack_deadline_s, rules.ladder)) is not None and step[0] < before
        )
        checks = [queries.last_line_check(s, mechanism_id, party) for party in sorted(picture.mechanism.parties())]
    interval = timedelta(seconds=rules.line_check_interval_s)
    return steps + sum(1 for last in checks if last is not None and last.sent_at + interval < before)


def waiting(ctx: Context, mechanism_id: str, *, reader: Member) -> dict[str, Any]:
    """What waits on the reader's party now, soonest deadline first: the conflicts it must acknowledge
    (each with its alerts) and the other messages it must answer; each says whether it is overdue, how far
    up the ladder it has climbed and when it climbs next if nobody answers (``next_step_at``, the rung it
    alerts then ``next_rung_name``; both None at the last rung, or for a conflict none of whose alerts
    waits on the party). What a page alarms for at sign-in, and what a shift hands over."""
    picture = ctx.pictures.get(mechanism_id)
    now = ctx.clock()
    party = reader.party
    ladder = picture.mechanism.rules.ladder
    ack_s = picture.mechanism.rules.ack_deadline_s

    def climbs(row: MessageRow | None) -> dict[str, str | None]:
        step = next_step(row, ack_s, ladder) if row is not None else None
        return {"next_step_at": iso(step[0]) if step else None, "next_rung_name": step[1] if step else None}

    items: list[dict[str, Any]] = []
    with ctx.store.read() as s:
        open_messages = queries.waiting_on(s, mechanism_id, party)
        alerts_of: dict[str, list[Any]] = {}  # conflict id → its alerts waiting on the party, in order
        for m in open_messages:
            if m.about_kind == queries.ABOUT_CONFLICT and m.about_id is not None:
                alerts_of.setdefault(m.about_id, []).append(m)
        conflicts = s.scalars(
            select(ConflictRow).where(
                ConflictRow.mechanism_id == mechanism_id, ConflictRow.status != ConflictStatus.RESOLVED.value
            )
        )
        listed: set[str] = set()
        for c in conflicts:
            if not queries.awaits(c, party):
                continue
            alerts = alerts_of.get(c.id, [])
            lead = max(alerts, key=lambda m: m.steps, default=None)  # the alert furthest up the ladder
            steps = lead.steps if lead is not None else 0
            items.append(
                {
                    "kind": "conflict",
                    "id": c.id,
                    "type": c.kind,
                    "deadline": iso(c.deadline),
                    "overdue": now >= c.deadline,
                    "alerts": [m.id for m in alerts],
                    "rung": steps,
                    "rung_name": ladder[steps].name if steps < len(ladder) else None,
                    **climbs(lead),
                    "summary": queries.message_doc(alerts[0], reader)["text"] if alerts else None,
                }
            )
            listed.add(c.id)
        for m in open_messages:
            if m.about_kind == queries.ABOUT_CONFLICT and m.about_id in listed:
                continue
            deadline = m.deadline or m.sent_at + timedelta(seconds=picture.mechanism.rules.ack_deadline_s)
            items.append(
                {
                    "kind": "message",
                    "id": m.id,
                    "type": m.type,
                    "deadline": iso(deadline),
                    "overdue": now >= deadline,
                    "alerts": [],
                    "rung": m.steps,
                    "rung_name": ladder[m.steps].name if m.steps < len(ladder) else None,
                    **climbs(m),
                    "summary": queries.message_doc(m, reader)["text"],
                }
            )
    items.sort(key=lambda i: (i["deadline"], i["id"]))
    return {"now": iso(now), "party": party, "items": items}
