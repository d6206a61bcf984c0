"""The compliance report: per party and period, how the mechanism's rules were kept, read from the record alone.

A pure function over record entry documents (as ``ledger.entry_doc`` gives them, or as a
record bundle holds them), so it gives the same figures on the live database and on an
exported copy. Per party it measures:

- **lead time of notices**: for each ``activity.notified`` and ``activity.amended`` by the
  party, the earliest volume start minus ``notified_at`` (seconds); its distribution and how
  many fell below the rules' minimum notice (``lead < min_notice_s``, as detection counts it);
- **time to acknowledge**: conflicts raised with the party among those ``awaiting`` it, and
  hotline messages addressed to it that need an acknowledgement (line checks apart): seconds
  from the conflict or message to the party's acknowledgement. An alert about a conflict is
  that conflict's alarm, not a second item: acknowledging either settles both (one
  ``conflict.acknowledged`` entry naming the alerts it settles, or a response phrase whose
  ``settles`` names them), and it is counted once, as the conflict;
- **missed deadlines**: those acknowledged at or after their deadline (an acknowledgement
  counts only strictly before it, as on the escalation ladder), or not by the end of the
  period; a conflict closed before its deadline without an acknowledgement is not missed, and
  a deadline is charged only to the party it awaited;
- **escalations**: ``message.escalated`` entries for messages addressed to the party, and the
  highest rung reached;
- **missed line checks**: line checks addressed to the party not acknowledged before their deadline.

Period: items (notices, conflicts, messages, escalations) whose entry time ``at`` falls in
``[start, end)``. Whether a deadline was met is judged at ``end``, or, when no end is given,
at the record's last entry; an acknowledgement recorded after that instant is not counted,
and an item whose deadline is still ahead is *pending*, neither met nor missed.
Entries withheld from a copy (no payload) are counted and otherwise skipped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.formats.docs import parse_rules
from deconflict.model import Rules

LINE_CHECK = "line_check"
"""Message type of line checks (counted on their own, not with the other messages)."""


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0–1) by linear interpolation between order statistics (numpy's default); None if empty.

    >>> quantile([10, 20, 30, 40], 0.5), quantile([10, 20, 30, 40], 0.9), quantile([], 0.5)
    (25.0, 37.0, None)
    """
    if not values:
        return None
    xs = sorted(float(v) for v in values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ---------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Notice:
    """One notice (a version of an activity) and its lead time in seconds."""

    activity: str
    version: int
    seq: int
    notified_at: datetime
    start: datetime
    lead_s: float


@dataclass(frozen=True)
class LeadTimes:
    """The distribution of a party's notice lead times, in seconds."""

    count: int
    min_s: float | None
    p10_s: float | None
    median_s: float | None
    p90_s: float | None
    below_minimum: int
    """Notices given with less than the rules' minimum notice."""
    share_below_minimum: float | None
    """``below_minimum / count`` (0–1), None without notices."""
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class Due:
    """One thing a party had to acknowledge: a conflict or a message."""

    kind: str
    """``conflict``, ``message`` or ``line_check``."""
    id: str
    raised_at: datetime
    deadline: datetime
    acknowledged_at: datetime | None
    """When the party acknowledged it, if by the end of the period."""
    closed_at: datetime | None = None
    """When a conflict was resolved, if before any acknowledgement and by the end of the period."""
    outcome: str = ""
    """``in_time``, ``late``, ``missed`` (never by the end of the period), ``closed`` or ``pending``."""

    @property
    def delay_s(self) -> float | None:
        """Seconds from raised to acknowledged."""
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.raised_at).total_seconds()


@dataclass(frozen=True)
class Acknowledgements:
    """How promptly a party acknowledged one kind of item."""

    due: int
    """Items raised in the period that the party had to acknowledge."""
    acknowledged: int
    """Acknowledged by the end of the period (in time or late)."""
    in_time: int
    late: int
    missed: int
    """Not acknowledged at all by the end of the period, deadline passed."""
    pending: int
    """Not acknowledged, deadline still ahead at the end of the period."""
    closed: int
    """Conflicts closed (resolved) before their deadline without an acknowledgement."""
    median_s: float | None
    p90_s: float | None
    items: tuple[Due, ...] = ()


@dataclass(frozen=True)
class Escalations:
    """Escalation steps recorded in the period for messages addressed to a party."""

    count: int
    highest_rung: int | None
    highest_rung_name: str | None
    messages: tuple[str, ...]
    """Ids of the escalated messages, in order of first escalation."""


@dataclass(frozen=True)
class PartyReport:
    party: str
    name: str
    lead_times: LeadTimes
    conflicts: Acknowledgements
    messages: Acknowledgements
    line_checks: Acknowledgements
    escalations: Escalations

    @property
    def missed_deadlines(self) -> tuple[Due, ...]:
        """Conflicts and messages acknowledged late or not at all (line checks are counted apart)."""
        return tuple(d for d in (*self.conflicts.items, *self.messages.items) if d.outcome in ("late", "missed"))

    @property
    def missed_line_checks(self) -> tuple[Due, ...]:
        return tuple(d for d in self.line_checks.items if d.outcome in ("late", "missed"))


@dataclass(frozen=True)
class Report:
    mechanism: str
    start: datetime | None
    end: datetime | None
    judged_at: datetime
    """The instant deadlines are judged at: ``end``, or the record's last entry."""
    rules: Rules
    parties: tuple[PartyReport, ...]
    entries: int
    """Entries read."""
    withheld: int
    """Entries read without a payload (withheld from this copy)."""
    first_at: datetime | None = None
    last_at: datetime | None = None


# ---------------------------------------------------------------------------
# Reading the record


@dataclass
class _Member:
    party: str
    role: str
    name: str


@dataclass
class _Item:
    id: str
    seq: int
    at: datetime
    deadline: datetime
    to: tuple[str, ...]
    type: str = ""
    conflict: str | None = None
    """For an alert about a conflict: that conflict (the alert is counted as the conflict, not apart)."""


@dataclass
class _Record:
    """What the report needs from the record, gathered in one pass."""

    mechanism: str = ""
    rules: Rules | None = None
    members: dict[str, _Member] = field(default_factory=dict)
    notices: list[tuple[str, Notice]] = field(default_factory=list)
    conflicts: dict[str, _Item] = field(default_factory=dict)
    conflict_acks: dict[tuple[str, str], datetime] = field(default_factory=dict)
    resolved: dict[str, datetime] = field(default_factory=dict)
    messages: dict[str, _Item] = field(default_factory=dict)
    closed_messages: dict[str, datetime] = field(default_factory=dict)
    message_acks: dict[tuple[str, str], datetime] = field(default_factory=dict)
    escalations: list[tuple[datetime, str, int, str]] = field(default_factory=list)
    entries: int = 0
    withheld: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None


def _read(entries: Iterable[dict[str, Any]]) -> _Record:
    rec = _Record()
    for doc in entries:
        if not isinstance(doc, dict):
            raise InvalidInput(f"record entry {rec.entries + 1}: expected an object")
        seq = doc.get("seq")
        try:
            mechanism = str(doc["mechanism"])
            if rec.mechanism and mechanism != rec.mechanism:
                raise InvalidInput(
                    f"entry {seq}: belongs to mechanism {mechanism!r}, not {rec.mechanism!r}; "
                    "report on one mechanism at a time"
                )
            rec.mechanism = mechanism
            at = parse_utc(doc["at"], field=f"entry {seq} at")
            rec.entries += 1
            rec.first_at = at if rec.first_at is None else min(rec.first_at, at)
            rec.last_at = at if rec.last_at is None else max(rec.last_at, at)
            if "payload" not in doc or doc["payload"] is None:
                rec.withheld += 1
                continue
            _take(rec, str(doc["type"]), doc["payload"], at, int(doc["seq"]), str(doc.get("actor", "")))
        except InvalidInput:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise InvalidInput(f"entry {seq} ({doc.get('type')}): unreadable: {what}") from None
    return rec


def _take(rec: _Record, type: str, p: dict[str, Any], at: datetime, seq: int, actor: str) -> None:
    if type == "mechanism.declared":
        rec.rules = parse_rules(p["rules"])
        for m in p["members"]:
            rec.members.setdefault(m["id"], _Member(m["party"], m["role"], m["name"]))
    elif type == "member.added":
        rec.members.setdefault(p["id"], _Member(p["party"], p["role"], p["name"]))
    elif type in ("activity.notified", "activity.amended"):
        start = _earliest_start(p)
        notified = parse_utc(p["notified_at"], field="notified_at")
        lead = (start - notified).total_seconds()
        rec.notices.append((p["party"], Notice(p["id"], int(p["version"]), seq, notified, start, lead)))
    elif type == "conflict.detected":
        deadline = parse_utc(p["deadline"], field="deadline")
        rec.conflicts[p["id"]] = _Item(p["id"], seq, at, deadline, tuple(p.get("awaiting", ())), p.get("kind", ""))
    elif type == "conflict.acknowledged":
        rec.conflict_acks.setdefault((p["id"], p["party"]), at)
        for message in p.get("messages", ()):  # the alerts settled with it
            rec.message_acks.setdefault((message, p["party"]), at)
    elif type == "conflict.resolved":
        rec.resolved.setdefault(p["id"], at)
        for message in p.get("messages", ()):  # its alerts close with it
            rec.closed_messages.setdefault(message, at)
    elif type == "message.sent":
        if p.get("needs_ack"):
            if p.get("deadline"):
                deadline = parse_utc(p["deadline"], field="deadline")
            else:
                deadline = at + timedelta(seconds=rec.rules.ack_deadline_s if rec.rules else 0)
            about = p.get("about") or {}
            conflict = about.get("id") if about.get("kind") == "conflict" and p["type"] == "alert" else None
            rec.messages[p["id"]] = _Item(p["id"], seq, at, deadline, tuple(p["to"]), p["type"], conflict)
        settles = p.get("settles") or {}  # a response phrase from an awaited party ("Received and acknowledged: C7")
        for conflict_id in settles.get("conflicts", ()):
            rec.conflict_acks.setdefault((conflict_id, p["from_party"]), at)
        for message in settles.get("messages", ()):
            rec.message_acks.setdefault((message, p["from_party"]), at)
    elif type == "message.acknowledged":
        rec.message_acks.setdefault((p["id"], p["party"]), at)
    elif type == "message.escalated":
        rec.escalations.append((at, p["id"], int(p["rung"]), str(p.get("name", ""))))


def _earliest_start(p: dict[str, Any]) -> datetime:
    """The earliest volume start of an activity version (its ``start``, recomputed from the volumes when present)."""
    starts = [parse_utc(v["start"], field="start") for v in p.get("volumes", ()) if v.get("start")]
    if starts:
        return min(starts)
    return parse_utc(p["start"], field="start")


# ---------------------------------------------------------------------------
# The report


def compliance_report(
    entries: Iterable[dict[str, Any]],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    parties: Sequence[str] | None = None,
    rules: Rules | None = None,
) -> Report:
    """Compute the compliance report of one mechanism's record over ``[start, end)`` (both optional, aware UTC).

    ``parties`` limits the report to those party codes (default: every party of the
    mechanism); ``rules`` overrides the rules recorded in the ``mechanism.declared`` entry
    (needed only when that entry is withheld from the copy).
    """
    if start is not None and end is not None and not start < end:
        raise InvalidInput(f"the period is empty: from {iso(start)} is not before to {iso(end)}", field="from")
    rec = _read(entries)
    if rec.entries == 0:
        raise InvalidInput("the record holds no entries", field="entries")
    the_rules = rules or rec.rules
    if the_rules is None:
        raise InvalidInput(
            "the record has no readable mechanism.declared entry, so its rules are unknown", field="rules"
        )
    assert rec.last_at is not None
    judged = end if end is not None else rec.last_at

    def in_period(at: datetime) -> bool:
        return (start is None or at >= start) and (end is None or at < end)

    def known(at: datetime) -> bool:
        """Whether an entry at this instant is known when deadlines are judged."""
        return at < end if end is not None else at <= judged

    names: dict[str, str] = {}
    for mid, m in rec.members.items():
        if m.role == "party":  # the party's name is that of the member whose id is the party code
            if mid == m.party:
                names[m.party] = m.name
            else:
                names.setdefault(m.party, m.party)
    all_parties = sorted(names)
    wanted = list(parties) if parties else all_parties
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise InvalidInput(
            f"party {', '.join(unknown)} is not a party of mechanism {rec.mechanism!r} "
            f"(parties: {', '.join(all_parties) or 'none'})",
            field="party",
        )

    reports = []
    for party in wanted:
        notices = [n for p, n in rec.notices if p == party and in_period(n.notified_at)]
        lead = _lead_times(notices, the_rules.min_notice_s)
        conflict_items = [
            _judge("conflict", c, rec.conflict_acks.get((c.id, party)), rec.resolved.get(c.id), judged, known)
            for c in rec.conflicts.values()
            if party in c.to and in_period(c.at)
        ]
        message_items, check_items = [], []
        for m in rec.messages.values():
            if party not in m.to or not in_period(m.at) or m.conflict is not None:
                continue  # an alert about a conflict is judged as that conflict
            kind = LINE_CHECK if m.type == LINE_CHECK else "message"
            closed = rec.closed_messages.get(m.id)
            due = _judge(kind, m, rec.message_acks.get((m.id, party)), closed, judged, known)
            (check_items if kind == LINE_CHECK else message_items).append(due)
        steps = [
            (at, mid, rung, name)
            for at, mid, rung, name in rec.escalations
            if in_period(at) and mid in rec.messages and party in rec.messages[mid].to
        ]
        top = max(steps, key=lambda s: s[2]) if steps else None
        reports.append(
            PartyReport(
                party=party,
                name=names[party],
                lead_times=lead,
                conflicts=_acknowledgements(conflict_items),
                messages=_acknowledgements(message_items),
                line_checks=_acknowledgements(check_items),
                escalations=Escalations(
                    count=len(steps),
                    highest_rung=top[2] if top else None,
                    highest_rung_name=top[3] if top else None,
                    messages=tuple(dict.fromkeys(s[1] for s in steps)),
                ),
            )
        )
    return Report(
        mechanism=rec.mechanism,
        start=start,
        end=end,
        judged_at=judged,
        rules=the_rules,
        parties=tuple(reports),
        entries=rec.entries,
        withheld=rec.withheld,
        first_at=rec.first_at,
        last_at=rec.last_at,
    )


def _lead_times(notices: list[Notice], min_notice_s: float) -> LeadTimes:
    values = [n.lead_s for n in notices]
    below = sum(1 for v in values if v < min_notice_s)
    return LeadTimes(
        count=len(values),
        min_s=min(values) if values else None,
        p10_s=quantile(values, 0.1),
        median_s=quantile(values, 0.5),
        p90_s=quantile(values, 0.9),
        below_minimum=below,
        share_below_minimum=below / len(values) if values else None,
        notices=tuple(notices),
    )


def _judge(
    kind: str,
    item: _Item,
    ack: datetime | None,
    resolved: datetime | None,
    judged: datetime,
    known: Callable[[datetime], bool],
) -> Due:
    """Classify one item at the judging instant (an acknowledgement counts strictly before the deadline)."""
    known_ack = ack if ack is not None and known(ack) else None
    closed = resolved if resolved is not None and known(resolved) and known_ack is None else None
    if known_ack is not None:
        outcome = "in_time" if known_ack < item.deadline else "late"
    elif closed is not None and closed < item.deadline:
        outcome = "closed"
    elif judged >= item.deadline:
        outcome = "missed"
    else:
        outcome = "pending"
    return Due(kind, item.id, item.at, item.deadline, known_ack, closed, outcome)


def _acknowledgements(items: list[Due]) -> Acknowledgements:
    delays = [d.delay_s for d in items if d.delay_s is not None]
    count = {o: sum(1 for d in items if d.outcome == o) for o in ("in_time", "late", "missed", "pending", "closed")}
    return Acknowledgements(
        due=len(items),
        acknowledged=len(delays),
        in_time=count["in_time"],
        late=count["late"],
        missed=count["missed"],
        pending=count["pending"],
        closed=count["closed"],
        median_s=quantile(delays, 0.5),
        p90_s=quantile(delays, 0.9),
        items=tuple(items),
    )


# ---------------------------------------------------------------------------
# Output


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def _due_json(d: Due) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "id": d.id,
        "raised_at": iso(d.raised_at),
        "deadline": iso(d.deadline),
        "acknowledged_at": iso(d.acknowledged_at) if d.acknowledged_at else None,
        "closed_at": iso(d.closed_at) if d.closed_at else None,
        "delay_s": _round(d.delay_s),
        "outcome": d.outcome,
    }


def _acks_json(a: Acknowledgements) -> dict[str, Any]:
    return {
        "due": a.due,
        "acknowledged": a.acknowledged,
        "in_time": a.in_time,
        "late": a.late,
        "missed": a.missed,
        "pending": a.pending,
        "closed": a.closed,
        "median_s": _round(a.median_s),
        "p90_s": _round(a.p90_s),
        "items": [_due_json(d) for d in a.items],
    }


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-able document (times ISO 8601 UTC, durations in seconds)."""
    r = report.rules
    parties = []
    for p in report.parties:
        lt = p.lead_times
        missed = p.missed_deadlines
        checks = p.missed_line_checks
        parties.append(
            {
                "party": p.party,
                "name": p.name,
                "lead_time": {
                    "count": lt.count,
                    "min_s": _round(lt.min_s),
                    "p10_s": _round(lt.p10_s),
                    "median_s": _round(lt.median_s),
                    "p90_s": _round(lt.p90_s),
                    "below_minimum": lt.below_minimum,
                    "share_below_minimum": _round(lt.share_below_minimum, 4),
                    "notices": [
                        {
                            "activity": n.activity,
                            "version": n.version,
                            "seq": n.seq,
                            "notified_at": iso(n.notified_at),
                            "start": iso(n.start),
                            "lead_s": _round(n.lead_s),
                            "below_minimum": n.lead_s < r.min_notice_s,
                        }
                        for n in lt.notices
                    ],
                },
                "acknowledgement": {"conflicts": _acks_json(p.conflicts), "messages": _acks_json(p.messages)},
                "missed_deadlines": {"count": len(missed), "ids": [d.id for d in missed]},
                "escalations": {
                    "count": p.escalations.count,
                    "highest_rung": p.escalations.highest_rung,
                    "highest_rung_name": p.escalations.highest_rung_name,
                    "messages": list(p.escalations.messages),
                },
                "line_checks": {**_acks_json(p.line_checks), "missed_ids": [d.id for d in checks]},
                "missed_line_checks": len(checks),
            }
        )
    return {
        "mechanism": report.mechanism,
        "period": {
            "from": iso(report.start) if report.start else None,
            "to": iso(report.end) if report.end else None,
            "judged_at": iso(report.judged_at),
        },
        "record": {
            "entries": report.entries,
            "withheld": report.withheld,
            "first_at": iso(report.first_at) if report.first_at else None,
            "last_at": iso(report.last_at) if report.last_at else None,
        },
        "rules": {
            "min_notice_s": r.min_notice_s,
            "ack_deadline_s": r.ack_deadline_s,
            "line_check_interval_s": r.line_check_interval_s,
            "ladder": [g.name for g in r.ladder],
        },
        "parties": parties,
    }


CSV_COLUMNS = ("mechanism", "period_from", "period_to", "party", "party_name", "metric", "description", "value", "unit")
"""Columns of the CSV: one row per party and metric; durations in minutes, shares in per cent."""


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """The report as rows of ``CSV_COLUMNS``: one per party and metric, value empty when nothing was measured."""
    rows = []
    period_from = iso(report.start) if report.start else (iso(report.first_at) if report.first_at else "")
    period_to = iso(report.end) if report.end else iso(report.judged_at)
    for p in report.parties:
        lt, c, m, chk, esc = p.lead_times, p.conflicts, p.messages, p.line_checks, p.escalations
        share = None if lt.share_below_minimum is None else round(100 * lt.share_below_minimum, 1)
        metrics: list[tuple[str, str, Any, str]] = [
            ("notices", "Notices given (new and amended)", lt.count, "count"),
            ("lead_time_min", "Lead time of notices, shortest", _minutes(lt.min_s), "minutes"),
            ("lead_time_p10", "Lead time of notices, 10th percentile", _minutes(lt.p10_s), "minutes"),
            ("lead_time_median", "Lead time of notices, median", _minutes(lt.median_s), "minutes"),
            ("lead_time_p90", "Lead time of notices, 90th percentile", _minutes(lt.p90_s), "minutes"),
            (
                "notices_below_minimum",
                f"Notices below the minimum notice of {report.rules.min_notice_s / 60:g} minutes",
                lt.below_minimum,
                "count",
            ),
            ("share_below_minimum", "Share of notices below the minimum notice", share, "percent"),
            ("conflicts_to_acknowledge", "Conflicts the party had to acknowledge", c.due, "count"),
            ("conflicts_acknowledged", "Conflicts acknowledged", c.acknowledged, "count"),
            ("conflict_ack_median", "Time to acknowledge a conflict, median", _minutes(c.median_s), "minutes"),
            ("conflict_ack_p90", "Time to acknowledge a conflict, 90th percentile", _minutes(c.p90_s), "minutes"),
            ("messages_to_acknowledge", "Hotline messages the party had to acknowledge", m.due, "count"),
            ("messages_acknowledged", "Hotline messages acknowledged", m.acknowledged, "count"),
            ("message_ack_median", "Time to acknowledge a hotline message, median", _minutes(m.median_s), "minutes"),
            (
                "message_ack_p90",
                "Time to acknowledge a hotline message, 90th percentile",
                _minutes(m.p90_s),
                "minutes",
            ),
            (
                "missed_deadlines",
                "Deadlines missed (acknowledged late or not at all)",
                len(p.missed_deadlines),
                "count",
            ),
            ("missed_deadline_ids", "Which conflicts and messages", " ".join(d.id for d in p.missed_deadlines), "ids"),
            ("escalations", "Escalation steps for messages to the party", esc.count, "count"),
            ("highest_rung", "Highest rung of the ladder reached", esc.highest_rung_name or "", "rung"),
            ("line_checks", "Line checks sent to the party", chk.due, "count"),
            ("missed_line_checks", "Line checks not answered in time", len(p.missed_line_checks), "count"),
        ]
        for metric, description, value, unit in metrics:
            rows.append(
                {
                    "mechanism": report.mechanism,
                    "period_from": period_from,
                    "period_to": period_to,
                    "party": p.party,
                    "party_name": p.name,
                    "metric": metric,
                    "description": description,
                    "value": "" if value is None else value,
                    "unit": unit,
                }
            )
    return rows


def write_csv(report: Report, path: Path | str) -> None:
    """Write the report as CSV (UTF-8 with a byte-order mark, so spreadsheets read the names right)."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(report))


CHART_SIZE_PX = (1200, 800)
"""Width and height of the chart in pixels."""


def write_chart(report: Report, path: Path | str) -> None:
    """Draw the report as a PNG of ``CHART_SIZE_PX``: each party's notice lead times against the minimum
    notice, and bars of missed deadlines, escalations and missed line checks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    dpi = 100
    fig = Figure(figsize=(CHART_SIZE_PX[0] / dpi, CHART_SIZE_PX[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 2), hspace=0.45, left=0.16, right=0.97, top=0.88, bottom=0.09)
    top, bottom = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    period = _period_words(report)
    fig.suptitle(f"Compliance report: {report.mechanism}\n{period}", fontsize=14)

    min_h = report.rules.min_notice_s / 3600
    parties = report.parties
    labels = [f"{p.name} ({p.party})\n{p.lead_times.count} notices" for p in parties]
    all_hours = [n.lead_s / 3600 for p in parties for n in p.lead_times.notices]
    for i, p in enumerate(parties):
        hours = [n.lead_s / 3600 for n in p.lead_times.notices]
        if not hours:
            top.text(min_h, i, "  no notices in this period", va="center", fontsize=10, color="grey")
            continue
        if len(hours) >= 5:
            top.boxplot(
                [hours], positions=[i], orientation="horizontal", widths=0.5, showfliers=False, patch_artist=False
            )
        offsets = [((k * 0.37) % 0.5) - 0.25 for k in range(len(hours))]  # spread points so they do not hide
        short = [h < min_h for h in hours]
        top.scatter(
            [h for h, s in zip(hours, short, strict=True) if not s],
            [i + o for o, s in zip(offsets, short, strict=True) if not s],
            s=30,
            color="#1f6fb4",
            alpha=0.8,
            zorder=3,
            label="notice given in time",
        )
        top.scatter(
            [h for h, s in zip(hours, short, strict=True) if s],
            [i + o for o, s in zip(offsets, short, strict=True) if s],
            s=40,
            color="#c62828",
            marker="D",
            zorder=3,
            label="notice shorter than the minimum",
        )
    for i, p in enumerate(parties):
        if p.lead_times.median_s is not None:
            top.plot([p.lead_times.median_s / 3600] * 2, [i - 0.3, i + 0.3], color="black", lw=2.5, label="median")
    top.axvline(min_h, color="#c62828", linestyle="--", linewidth=1.5, label=f"minimum notice ({_hours(min_h)})")
    top.set_yticks(range(len(parties)), labels)
    top.set_ylim(len(parties) - 0.3, -0.7)  # first party on top
    if all_hours and max(abs(h) for h in all_hours) > 48:
        top.set_xscale("symlog", linthresh=1.0)
        top.xaxis.set_major_formatter(ScalarFormatter())
    else:  # a linear axis from zero, so the distances to the minimum read true
        lo, hi = min([0.0, *all_hours]), max([2 * min_h, *all_hours])
        pad = (hi - lo) * 0.05
        top.set_xlim(lo - pad if lo < 0 else 0.0, hi + pad)
    top.set_xlabel("Notice given, in hours before the activity starts")
    top.set_title("How far ahead each party notified its activities", fontsize=12)
    top.grid(axis="x", alpha=0.3)
    handles, names = top.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    top.legend(unique.values(), unique.keys(), loc="best", fontsize=9)

    series = (
        ("Missed deadlines", [len(p.missed_deadlines) for p in parties], "#c62828"),
        ("Escalations", [p.escalations.count for p in parties], "#ef6c00"),
        ("Missed line checks", [len(p.missed_line_checks) for p in parties], "#6a1b9a"),
    )
    width = 0.25
    for k, (name, values, colour) in enumerate(series):
        xs = [i + (k - 1) * width for i in range(len(parties))]
        bars = bottom.bar(xs, values, width=width * 0.95, color=colour, label=name)
        bottom.bar_label(bars, padding=2, fontsize=10)
    bottom.set_xticks(range(len(parties)), [f"{p.name} ({p.party})" for p in parties])
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    peak = max([v for _, values, _ in series for v in values] or [0])
    bottom.set_ylim(0, max(1, peak) * 1.25)
    bottom.set_ylabel("How many in the period")
    bottom.set_title("Missed deadlines, escalations and missed line checks", fontsize=12)
    bottom.legend(loc="upper right", fontsize=9)
    bottom.grid(axis="y", alpha=0.3)
    fig.savefig(str(path), format="png", dpi=dpi)


def _hours(h: float) -> str:
    return f"{h * 60:g} min" if h < 1 else f"{h:g} h"


def _period_words(report: Report) -> str:
    start = report.start or report.first_at
    end = report.end or report.judged_at
    return f"{_when(start) if start else '?'} to {_when(end)}"


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if not t.second else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def summary_lines(report: Report) -> list[str]:
    """A few lines for a person: the period and rules, then one paragraph per party."""
    r = report.rules
    lines = [
        f"{report.mechanism}: {_period_words(report)} ({report.entries} entries"
        + (f", {report.withheld} withheld" if report.withheld else "")
        + ")",
        f"rules: notice at least {r.min_notice_s / 60:g} min ahead; acknowledge within {r.ack_deadline_s / 60:g} min",
    ]
    for p in report.parties:
        lt, c, m = p.lead_times, p.conflicts, p.messages
        lead = (
            f"{lt.count} notices, lead time median {_duration(lt.median_s)} (shortest {_duration(lt.min_s)}), "
            f"{lt.below_minimum} below the minimum"
            if lt.count
            else "no notices"
        )
        missed = p.missed_deadlines
        esc = p.escalations
        lines += [
            f"{p.party} ({p.name}): {lead}",
            f"  {_acked(c, 'conflicts')}; {_acked(m, 'hotline messages')}",
            f"  missed deadlines: {len(missed)}"
            + (f" ({', '.join(d.id for d in missed)})" if missed else "")
            + f"; escalations: {esc.count}"
            + (f" (highest: {esc.highest_rung_name})" if esc.count else "")
            + f"; line checks missed: {len(p.missed_line_checks)} of {p.line_checks.due}",
        ]
    return lines


def _acked(a: Acknowledgements, what: str) -> str:
    if a.due == 0:
        return f"no {what} to acknowledge"
    return f"{a.acknowledged} of {a.due} {what} acknowledged (median {_duration(a.median_s)})"


def _duration(seconds: float | None) -> str:
    """A duration for a person.

    >>> _duration(None), _duration(42), _duration(150), _duration(7200), _duration(-600)
    ('-', '42 s', '2.5 min', '2.0 h', '-10 min')
    """
    if seconds is None:
        return "-"
    a = abs(seconds)
    if a < 60:
        return f"{seconds:.0f} s"
    if a < 2 * 3600:
        return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"
    return f"{seconds / 3600:.1f} h"
