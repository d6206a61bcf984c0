"""The figures ``/metrics`` reads from the database at each scrape (:class:`StoreCollector`): a few
``COUNT`` queries per mechanism on indexed columns, so every process on one database reports the same
figures and no use case needs to count anything. Counts only: the labels are mechanism ids, party codes,
conflict kinds, activity states, message types and rung names, all known to every member; never an
activity's or a conflict's id, a place or a time."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import DBAPIError

from deconflict import logs
from deconflict.api.errors import is_outage
from deconflict.hotline import LineState
from deconflict.model import ConflictStatus
from deconflict.service import Service
from deconflict.store import unreachable

if TYPE_CHECKING:
    from deconflict.api.ops import Watch

__all__ = ["HELD", "StoreCollector", "lease_state", "store_figures"]

log = logging.getLogger("deconflict.api.metrics")


class StoreCollector(Collector):
    """The figures the database holds, read at each scrape: per mechanism, notices received, activities
    by state, conflicts raised (by kind) and open, messages awaiting an answer past their deadline by
    rung, each party's line state, the record's head and the newest checkpoint's sequence number and
    age; and the age of the duty loop's last pass. A database that cannot be read gives
    ``deconflict_store_up 0`` and none of its figures (the scrape itself still answers)."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def describe(self) -> Iterable[Metric]:
        return []  # figures are read at scrape time; none at registration

    def collect(self) -> Iterator[Metric]:
        watch = self.watch
        loop = GaugeMetricFamily(
            "deconflict_duty_loop_age_seconds", "Seconds since this process's duty loop last completed a pass."
        )
        age = watch.tick_age_s()
        if age is not None:
            loop.add_metric([], age)
        yield loop
        reruns = CounterMetricFamily(
            "deconflict_writes_rerun",
            "Writes this process ran again because another process had appended to the record under them.",
        )
        reruns.add_metric([], watch.service.context.reruns)
        yield reruns
        dropped = CounterMetricFamily(
            "deconflict_log_lines_dropped",
            "Log lines this process dropped because the reader of its log (stderr) was behind: requests never "
            "wait for it.",
        )
        dropped.add_metric([], logs.dropped_lines())
        yield dropped
        up = GaugeMetricFamily("deconflict_store_up", "Whether the database answered this scrape (1) or not (0).")
        try:
            families = watch.figures_once(lambda: list(store_figures(watch.service)))
        except Exception as e:  # noqa: BLE001 - a scrape never fails on the database: it says so
            if isinstance(e, DBAPIError) and is_outage(e):  # one line, as every other part says an outage
                log.warning("metrics: the database could not be read (%s)", unreachable(e))
            else:  # a defect: in full
                log.warning("metrics: the database could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def store_figures(service: Service) -> Iterator[Metric]:
    """The database's figures as metric families (see :class:`StoreCollector`)."""
    from deconflict.store.schema import ActivityRow, CheckpointRow, ConflictRow, MessageRow

    m = ["mechanism"]
    notices = CounterMetricFamily("deconflict_notices", "Notices of activity received (each activity once).", labels=m)
    activities = GaugeMetricFamily("deconflict_activities", "Activities by state.", labels=[*m, "state"])
    raised = CounterMetricFamily("deconflict_conflicts_raised", "Conflicts raised, by kind.", labels=[*m, "kind"])
    open_ = GaugeMetricFamily("deconflict_conflicts_open", "Conflicts not yet resolved, by kind.", labels=[*m, "kind"])
    overdue = GaugeMetricFamily(
        "deconflict_messages_overdue",
        "Hotline messages (alerts, queries, incidents, line checks) still awaiting an acknowledgement past "
        "their deadline, by type and by the rung of the escalation ladder they have reached.",
        labels=[*m, "type", "rung"],
    )
    lines = GaugeMetricFamily(
        "deconflict_line_state", "Each party's line: 1 for its current state.", labels=[*m, "party", "state"]
    )
    head = GaugeMetricFamily("deconflict_record_head_seq", "The record's last entry's sequence number.", labels=m)
    cp_seq = GaugeMetricFamily("deconflict_checkpoint_seq", "The newest signed checkpoint's sequence number.", labels=m)
    cp_age = GaugeMetricFamily(
        "deconflict_checkpoint_age_seconds", "Seconds since the newest signed checkpoint (service clock).", labels=m
    )
    now = service.clock()
    for mid in service.mechanism_ids():
        mechanism = service.mechanism(mid)
        rules = mechanism.rules
        with service.store.read() as s:
            by_state = dict(
                s.execute(
                    select(ActivityRow.state, func.count())
                    .where(ActivityRow.mechanism_id == mid)
                    .group_by(ActivityRow.state)
                ).all()
            )
            conflicts = s.execute(
                select(ConflictRow.kind, ConflictRow.status, func.count())
                .where(ConflictRow.mechanism_id == mid)
                .group_by(ConflictRow.kind, ConflictRow.status)
            ).all()
            # overdue: past the deadline it carries, or, without one, sent more than ack_deadline_s ago
            sent_before = now - timedelta(seconds=rules.ack_deadline_s)
            waiting = s.execute(
                select(MessageRow.type, MessageRow.steps, func.count())
                .where(
                    MessageRow.mechanism_id == mid,
                    MessageRow.needs_ack.is_(True),
                    MessageRow.acknowledged_at.is_(None),
                    MessageRow.closed_at.is_(None),
                    or_(
                        and_(MessageRow.deadline.is_not(None), MessageRow.deadline <= now),
                        and_(MessageRow.deadline.is_(None), MessageRow.sent_at <= sent_before),
                    ),
                )
                .group_by(MessageRow.type, MessageRow.steps)
            ).all()
            checkpoint = s.execute(
                select(CheckpointRow.seq, CheckpointRow.at)
                .where(CheckpointRow.mechanism_id == mid)
                .order_by(CheckpointRow.seq.desc())
                .limit(1)
            ).first()
        notices.add_metric([mid], sum(by_state.values()))
        for state, count in sorted(by_state.items()):
            activities.add_metric([mid, state], count)
        kinds: dict[str, list[int]] = {}
        for kind, status, count in conflicts:
            totals = kinds.setdefault(kind, [0, 0])
            totals[0] += count
            totals[1] += count if status != ConflictStatus.RESOLVED.value else 0
        for kind, (total, still_open) in sorted(kinds.items()):
            raised.add_metric([mid, kind], total)
            open_.add_metric([mid, kind], still_open)
        late: dict[tuple[str, str], int] = {("alert", rung.name): 0 for rung in rules.ladder}
        for type_, steps, count in waiting:
            rung = rules.ladder[min(steps, len(rules.ladder) - 1)].name
            late[(type_, rung)] = late.get((type_, rung), 0) + count
        for (type_, rung), count in sorted(late.items()):
            overdue.add_metric([mid, type_, rung], count)
        for party, state in sorted(service.line_status(mid).items()):
            for each in LineState:
                lines.add_metric([mid, party, each.value], 1 if each.value == state else 0)
        head.add_metric([mid], service.head(mid).seq)
        if checkpoint is not None:
            cp_seq.add_metric([mid], checkpoint[0])
            cp_age.add_metric([mid], max(0.0, (now - checkpoint[1]).total_seconds()))
    held = GaugeMetricFamily(
        "deconflict_duty_lease_held",
        "1 while this process holds the duty lease (runs the deadlines, escalation, line checks and "
        "checkpoints); over every process on one database the sum is 1.",
    )
    held.add_metric([], 1 if lease_state(service) == HELD else 0)
    yield from (notices, activities, raised, open_, overdue, lines, head, cp_seq, cp_age, held)


HELD = "held by this process"


def lease_state(service: Service) -> str:
    """Who runs the duty loop now, in words: ``held by this process``, ``held by another process`` or
    ``free`` (nobody's lease is current: the next process to tick takes it). No host or process name: the
    answer goes to callers without a token."""
    from deconflict.service import ticker

    found = ticker.lease(service.store)
    if found is None or found[1] <= service.clock():
        return "free"
    return HELD if found[0] == service.context.holder else "held by another process"
