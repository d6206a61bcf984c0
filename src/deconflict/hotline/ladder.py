"""The escalation ladder: who is alerted when a message that needs an acknowledgement goes unanswered.

No clock: every function takes ``now`` (an aware UTC datetime) and answers from stored
instants (when a message was sent, when it was acknowledged), so a service restarted at any
moment computes the same deadlines and the same missing escalation steps as one that never
stopped.

Escalation schedule (seconds from ``sent_at``), for a message that needs an
acknowledgement, with rules ``ack_deadline_s`` and ``ladder = (r0, r1, ..., rn)``:

- rung 0 (``r0``, the counterpart's duty officer) is alerted at ``sent_at`` with the
  message itself; it has ``ack_deadline_s`` to acknowledge (the message's deadline;
  ``r0.after_s`` is not used, the rules' acknowledgement deadline governs);
- rung k >= 1 is alerted when rung k-1's time runs out:
  ``alerted_at(k) = sent_at + ack_deadline_s + r1.after_s + ... + r(k-1).after_s``,
  and has ``rk.after_s`` to acknowledge: ``deadline(k) = alerted_at(k) + rk.after_s``;
- after the last rung's deadline the ladder is *exhausted*: nobody is left to alert.

Deadlines are exclusive: an acknowledgement counts for a rung only if it arrives
strictly before that rung's deadline; at the deadline instant the next rung is due.
An acknowledgement stops the climb. An acknowledgement later than ``now`` is ignored
(not yet known), so a replay at any instant sees what was known then.

With the Syria rules (acknowledge within 10 min; duty officer 10, operations chief 15,
national security adviser 30, facilitator 60 min) the operations chief is alerted at
+10 min, the national security adviser at +25, the facilitator at +55, and the ladder
is exhausted at +115 min.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta  # noqa: F401 (UTC: used by the doctests)

from deconflict.clock import ensure_utc
from deconflict.errors import InvalidInput
from deconflict.model import Rung

__all__ = ["Escalation", "EscalationStep", "RungWindow", "due_steps", "escalation_state", "ladder_schedule"]


@dataclass(frozen=True)
class RungWindow:
    """When one rung is alerted and until when (exclusive) it has to acknowledge."""

    rung: int
    name: str
    alerted_at: datetime
    deadline: datetime


@dataclass(frozen=True)
class EscalationStep:
    """A missed deadline: rung ``rung`` (1 or more) is to be alerted at ``due_at``."""

    rung: int
    name: str
    due_at: datetime


@dataclass(frozen=True)
class Escalation:
    """Where a message that needs an acknowledgement stands on the ladder at one instant."""

    rung: int
    """Index of the highest rung alerted so far (0: the message's own addressee)."""
    rung_name: str
    alerted_at: datetime
    """When the current rung was alerted."""
    deadline: datetime
    """When the current rung's time to acknowledge runs out (exclusive)."""
    acknowledged: bool
    exhausted: bool
    """True once the last rung's deadline passed unacknowledged: nobody is left to alert."""
    steps: tuple[EscalationStep, ...]
    """Every escalation step due by now, in order (rungs 1 to ``rung``)."""
    next_change_at: datetime | None
    """The next instant this state changes without an acknowledgement (a time to wake up), or None."""
    exhausted_at: datetime
    """When the ladder is exhausted if nobody acknowledges."""


def ladder_schedule(sent_at: datetime, ack_deadline_s: float, ladder: Sequence[Rung]) -> tuple[RungWindow, ...]:
    """Every rung's alert time and deadline for a message sent at ``sent_at`` (see the module docstring).

    >>> from deconflict.model import Rung
    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> s = ladder_schedule(t0, 600, (Rung("duty officer", 600), Rung("operations chief", 900)))
    >>> [(w.name, w.alerted_at.strftime("%H:%M"), w.deadline.strftime("%H:%M")) for w in s]
    [('duty officer', '08:00', '08:10'), ('operations chief', '08:10', '08:25')]
    """
    start = ensure_utc(sent_at, field="sent_at")
    if not ladder:
        raise InvalidInput("escalation ladder is empty: list at least one rung", field="ladder")
    if not (math.isfinite(ack_deadline_s) and ack_deadline_s > 0):
        raise InvalidInput(f"acknowledgement deadline must be positive seconds, got {ack_deadline_s}", field="ladder")
    windows = []
    alerted = start
    for k, rung in enumerate(ladder):
        window_s = ack_deadline_s if k == 0 else rung.after_s
        if not (math.isfinite(window_s) and window_s > 0):
            raise InvalidInput(
                f"ladder rung {k} ({rung.name}): time to answer must be positive seconds", field="ladder"
            )
        deadline = alerted + timedelta(seconds=window_s)
        windows.append(RungWindow(rung=k, name=rung.name, alerted_at=alerted, deadline=deadline))
        alerted = deadline
    return tuple(windows)


def escalation_state(
    sent_at: datetime,
    ack_deadline_s: float,
    ladder: Sequence[Rung],
    acknowledged_at: datetime | None,
    now: datetime,
) -> Escalation:
    """Where a message stands on the ladder at ``now``; an acknowledgement (known by ``now``) stops the climb.

    >>> from deconflict.model import Rung
    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> ladder = (Rung("duty officer", 600), Rung("operations chief", 900))
    >>> e = escalation_state(t0, 600, ladder, None, t0 + timedelta(minutes=12))
    >>> e.rung_name, e.deadline.strftime("%H:%M"), e.exhausted
    ('operations chief', '08:25', False)
    """
    windows = ladder_schedule(sent_at, ack_deadline_s, ladder)
    start = windows[0].alerted_at
    at = ensure_utc(now, field="now")
    if at < start:
        raise InvalidInput("now is before the message was sent", field="now")
    ack = None if acknowledged_at is None else ensure_utc(acknowledged_at, field="acknowledged_at")
    if ack is not None and ack < start:
        raise InvalidInput("acknowledgement is before the message was sent", field="acknowledged_at")
    if ack is not None and ack > at:
        ack = None  # not known yet at this instant
    horizon = at if ack is None else ack
    current = max(w.rung for w in windows if w.alerted_at <= horizon)
    win = windows[current]
    exhausted = ack is None and at >= windows[-1].deadline
    return Escalation(
        rung=current,
        rung_name=win.name,
        alerted_at=win.alerted_at,
        deadline=win.deadline,
        acknowledged=ack is not None,
        exhausted=exhausted,
        steps=tuple(EscalationStep(rung=w.rung, name=w.name, due_at=w.alerted_at) for w in windows[1 : current + 1]),
        next_change_at=None if ack is not None or exhausted else win.deadline,
        exhausted_at=windows[-1].deadline,
    )


def due_steps(
    sent_at: datetime,
    ack_deadline_s: float,
    ladder: Sequence[Rung],
    acknowledged_at: datetime | None,
    now: datetime,
    recorded: int,
) -> list[EscalationStep]:
    """The escalation steps due by ``now`` that are not yet recorded, oldest first.

    ``recorded`` is how many steps of this message are already stored (steps are always
    recorded in order, rung 1 first). Calling again with the new count returns nothing,
    so a caller woken late, twice, or after a restart records each step exactly once.

    >>> from deconflict.model import Rung
    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> ladder = (Rung("duty officer", 600), Rung("operations chief", 900), Rung("facilitator", 3600))
    >>> [s.name for s in due_steps(t0, 600, ladder, None, t0 + timedelta(hours=1), recorded=1)]
    ['facilitator']
    """
    count: object = recorded  # checked as given: callers may pass anything
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInput(f"recorded steps must be a count of 0 or more, got {recorded!r}", field="recorded")
    return list(escalation_state(sent_at, ack_deadline_s, ladder, acknowledged_at, now).steps[recorded:])
