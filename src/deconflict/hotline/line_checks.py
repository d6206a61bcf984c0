"""Line checks: is each party's end of the hotline manned? When the next check is due, and the line's state.

No clock: every function takes ``now`` (an aware UTC datetime) and answers from stored
instants (when a check was sent, answered, or the party last acted on the record).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta  # noqa: F401 (UTC: used by the doctests)
from enum import StrEnum

from deconflict.clock import ensure_utc
from deconflict.errors import InvalidInput

__all__ = ["LineState", "line_check_due", "line_state", "line_transition", "next_line_check_at"]


class LineState(StrEnum):
    """The state of a party's line, judged from its latest line check."""

    UP = "up"
    """The last line check was answered (or none was sent yet)."""
    PENDING = "pending"
    """A line check is out and its deadline has not passed."""
    LATE = "late"
    """A line check went unanswered past its deadline, but the party has acted on the record since it was
    sent: its people are there, the check is late, and it climbs the ladder like any late answer."""
    DOWN = "down"
    """A line check went unanswered past its deadline and nothing was heard from the party since it was sent."""


def next_line_check_at(last_check_at: datetime | None, interval_s: float, now: datetime) -> datetime:
    """When the next line check is due: ``interval_s`` after the last one, or ``now`` if there was none."""
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise InvalidInput(f"line check interval must be positive seconds, got {interval_s}", field="interval_s")
    at = ensure_utc(now, field="now")
    if last_check_at is None:
        return at
    return ensure_utc(last_check_at, field="last_check_at") + timedelta(seconds=interval_s)


def line_check_due(last_check_at: datetime | None, interval_s: float, now: datetime) -> bool:
    """Whether a party is due a line check at ``now`` (one check, however many intervals were missed).

    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> line_check_due(t0, 3600, t0 + timedelta(minutes=59)), line_check_due(t0, 3600, t0 + timedelta(hours=1))
    (False, True)
    """
    return ensure_utc(now, field="now") >= next_line_check_at(last_check_at, interval_s, now)


def line_state(
    sent_at: datetime,
    answered_at: datetime | None,
    deadline_s: float,
    now: datetime,
    *,
    heard_at: datetime | None = None,
) -> LineState:
    """The state of one line check at ``now``: up once answered; pending until its deadline; then
    late if the party was heard from since the check was sent (``heard_at``: its latest entry on the
    record), down if not.

    An answer (or a sign of life) later than ``now`` is not yet known. A late answer brings the line up.

    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> [line_state(t0, None, 600, t0 + timedelta(minutes=m)).value for m in (9, 10)]
    ['pending', 'down']
    >>> line_state(t0, None, 600, t0 + timedelta(minutes=12), heard_at=t0 + timedelta(minutes=3)).value
    'late'
    """
    sent = ensure_utc(sent_at, field="sent_at")
    at = ensure_utc(now, field="now")
    if not (math.isfinite(deadline_s) and deadline_s > 0):
        raise InvalidInput(f"line check deadline must be positive seconds, got {deadline_s}", field="deadline_s")
    if at < sent:
        raise InvalidInput("now is before the line check was sent", field="now")
    if answered_at is not None:
        answered = ensure_utc(answered_at, field="answered_at")
        if answered < sent:
            raise InvalidInput("line check answered before it was sent", field="answered_at")
        if answered <= at:
            return LineState.UP
    if at < sent + timedelta(seconds=deadline_s):
        return LineState.PENDING
    heard = ensure_utc(heard_at, field="heard_at") if heard_at is not None else None
    return LineState.LATE if heard is not None and sent <= heard <= at else LineState.DOWN


def line_transition(previous: LineState, check: LineState) -> tuple[LineState, str | None]:
    """A party's line status after its latest check, and the template to post when it changed.

    A line that is down stays down while a new check awaits an answer; it comes back
    ("line_restored") only with an answer. Going down posts "line_down".

    >>> line_transition(LineState.PENDING, LineState.DOWN)
    (<LineState.DOWN: 'down'>, 'line_down')
    >>> line_transition(LineState.DOWN, LineState.PENDING)
    (<LineState.DOWN: 'down'>, None)
    """
    if check is LineState.DOWN:
        return LineState.DOWN, None if previous is LineState.DOWN else "line_down"
    if check is LineState.UP:
        return LineState.UP, "line_restored" if previous is LineState.DOWN else None
    return (LineState.DOWN, None) if previous is LineState.DOWN else (check, None)
