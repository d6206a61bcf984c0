"""The compliance report: per party and period, how the mechanism's rules were kept, read from the record alone.

A pure function over record entry documents (as ``deconflict.store.ledger.entry_doc`` gives them, or as a
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
- **escalations**: ``message.escalated`` entries for messages addressed to the party that it had
  not acknowledged when the step fell due (a message to two parties climbs for the one that did
  not answer, not for the one that did), and the highest rung reached;
- **missed line checks**: line checks addressed to the party not acknowledged before their deadline.

Period: items (notices, conflicts, messages, escalations) whose entry time ``at`` falls in
``[start, end)``. Whether a deadline was met is judged at ``end``, or, when no end is given,
at the record's last entry; an acknowledgement recorded after that instant is not counted,
and an item whose deadline is still ahead is *pending*, neither met nor missed.
Entries withheld from a copy (no payload) are counted and otherwise skipped.

The result types are in :mod:`deconflict.analysis.report_types` (and importable from here);
:mod:`deconflict.analysis.report_output` writes a report as JSON, CSV, a PNG chart or a summary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deconflict.analysis.report_types import (
    Acknowledgements,
    Due,
    Escalations,
    LeadTimes,
    Notice,
    PartyReport,
    Report,
)
from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.formats.docs import parse_rules
from deconflict.hotline import MessageType
from deconflict.model import Role, Rules
from deconflict.record.chain import EntryType

__all__ = [
    "Acknowledgements",
    "Due",
    "Escalations",
    "LeadTimes",
    "Notice",
    "PartyReport",
    "Report",
    "compliance_report",
    "quantile",
]


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
    if type == EntryType.MECHANISM_DECLARED:
        rec.rules = parse_rules(p["rules"])
        for m in p["members"]:
            rec.members.setdefault(m["id"], _Member(m["party"], m["role"], m["name"]))
    elif type == EntryType.MEMBER_ADDED:
        rec.members.setdefault(p["id"], _Member(p["party"], p["role"], p["name"]))
    elif type in (EntryType.ACTIVITY_NOTIFIED, EntryType.ACTIVITY_AMENDED):
        start = _earliest_start(p)
        notified = parse_utc(p["notified_at"], field="notified_at")
        lead = (start - notified).total_seconds()
        rec.notices.append((p["party"], Notice(p["id"], int(p["version"]), seq, notified, start, lead)))
    elif type == EntryType.CONFLICT_DETECTED:
        deadline = parse_utc(p["deadline"], field="deadline")
        rec.conflicts[p["id"]] = _Item(p["id"], seq, at, deadline, tuple(p.get("awaiting", ())), p.get("kind", ""))
    elif type == EntryType.CONFLICT_ACKNOWLEDGED:
        rec.conflict_acks.setdefault((p["id"], p["party"]), at)
        for message in p.get("messages", ()):  # the alerts settled with it
            rec.message_acks.setdefault((message, p["party"]), at)
    elif type == EntryType.CONFLICT_RESOLVED:
        rec.resolved.setdefault(p["id"], at)
        for message in p.get("messages", ()):  # its alerts close with it
            rec.closed_messages.setdefault(message, at)
    elif type == EntryType.MESSAGE_SENT:
        if p.get("needs_ack"):
            if p.get("deadline"):
                deadline = parse_utc(p["deadline"], field="deadline")
            else:
                deadline = at + timedelta(seconds=rec.rules.ack_deadline_s if rec.rules else 0)
            about = p.get("about") or {}
            conflict = about.get("id") if about.get("kind") == "conflict" and p["type"] == MessageType.ALERT else None
            rec.messages[p["id"]] = _Item(p["id"], seq, at, deadline, tuple(p["to"]), p["type"], conflict)
        settles = p.get("settles") or {}  # a response phrase from an awaited party ("Received and acknowledged: C7")
        for conflict_id in settles.get("conflicts", ()):
            rec.conflict_acks.setdefault((conflict_id, p["from_party"]), at)
        for message in settles.get("messages", ()):
            rec.message_acks.setdefault((message, p["from_party"]), at)
    elif type == EntryType.MESSAGE_ACKNOWLEDGED:
        rec.message_acks.setdefault((p["id"], p["party"]), at)
    elif type == EntryType.MESSAGE_ESCALATED:
        rec.escalations.append((at, p["id"], int(p["rung"]), str(p.get("name", ""))))


def _answered_before(acknowledged: datetime | None, at: datetime) -> bool:
    """Whether an acknowledgement recorded at ``acknowledged`` came before ``at``."""
    return acknowledged is not None and acknowledged < at


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

    ``parties`` limits the report to those party codes (default: every party of the mechanism; the
    facilitator's code gives its own report, of the messages addressed to it); ``rules`` overrides the rules
    recorded in the ``mechanism.declared`` entry (needed only when that entry is withheld from the copy).

    Raises:
        InvalidInput: the period is empty; the record holds no entries, or an unreadable one, or
            entries of several mechanisms; its rules are unknown; a party is not one of the mechanism.
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
    for member_id, member in rec.members.items():
        if member.role == Role.PARTY:  # the party's name is that of the member whose id is the party code
            if member_id == member.party:
                names[member.party] = member.name
            else:
                names.setdefault(member.party, member.party)
    all_parties = sorted(names)
    # the facilitator answers the hotline too (a query or an incident addressed to it, an escalation's last
    # rung): asked for by its code, it is reported as a party is, its missed deadlines and escalations with it
    for member_id, member in rec.members.items():
        if member.role == Role.FACILITATOR and member_id == member.party:
            names.setdefault(member.party, member.name)
    wanted = list(parties) if parties else all_parties
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise InvalidInput(
            f"party {', '.join(unknown)} is not a party or the facilitator of mechanism {rec.mechanism!r} "
            f"(parties: {', '.join(all_parties) or 'none'}; facilitator: "
            f"{', '.join(sorted(set(names) - set(all_parties))) or 'none'})",
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
        message_items: list[Due] = []
        check_items: list[Due] = []  # line checks are counted on their own, not with the other messages
        for m in rec.messages.values():
            if party not in m.to or not in_period(m.at) or m.conflict is not None:
                continue  # an alert about a conflict is judged as that conflict
            is_check = m.type == MessageType.LINE_CHECK
            kind = MessageType.LINE_CHECK.value if is_check else "message"
            closed = rec.closed_messages.get(m.id)
            due = _judge(kind, m, rec.message_acks.get((m.id, party)), closed, judged, known)
            (check_items if is_check else message_items).append(due)
        steps = [  # charged to a party only if it had not answered when the step fell due
            (at, mid, rung, name)
            for at, mid, rung, name in rec.escalations
            if in_period(at)
            and mid in rec.messages
            and party in rec.messages[mid].to
            and not _answered_before(rec.message_acks.get((mid, party)), at)
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
