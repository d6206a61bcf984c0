"""What a compliance report holds: per party, lead times of notices, acknowledgements, escalations.

The result types of :func:`deconflict.analysis.report.compliance_report`, shared by the
computation and by the outputs in :mod:`deconflict.analysis.report_output`. Times are
aware UTC datetimes, durations seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deconflict.model import Rules

__all__ = [
    "Acknowledgements",
    "Due",
    "Escalations",
    "LeadTimes",
    "Notice",
    "PartyReport",
    "Report",
]


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
    """How one party kept the rules in the period."""

    party: str
    """The party code."""
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
        """Line checks answered late or not at all."""
        return tuple(d for d in self.line_checks.items if d.outcome in ("late", "missed"))


@dataclass(frozen=True)
class Report:
    """The compliance report of one mechanism over a period, one :class:`PartyReport` per party."""

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
