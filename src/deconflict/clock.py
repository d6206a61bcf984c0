"""Time: an injectable clock and strict parsing of ISO 8601 UTC instants."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from deconflict.errors import InvalidInput

__all__ = ["EARLIEST", "LATEST", "Clock", "FixedClock", "ensure_utc", "iso", "parse_utc", "system_clock"]

Clock = Callable[[], datetime]
"""A function returning the current instant as an aware UTC datetime."""

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""The earliest instant any input may name: nothing this service records or plans lies before it."""
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""The instant every input must lie before: far beyond any plan, well inside what datetimes can hold
(an offset on a date in year 1 or 9999 would otherwise overflow on the way to UTC)."""


def system_clock() -> datetime:
    """The machine's current time, aware, in UTC."""
    return datetime.now(UTC)


class FixedClock:
    """A clock for tests and scripted runs: returns a set instant, moved on by hand.

    >>> c = FixedClock(parse_utc("2025-04-09T08:00:00Z", field="t"))
    >>> c.advance(seconds=90).isoformat()
    '2025-04-09T08:01:30+00:00'
    """

    def __init__(self, now: datetime) -> None:
        self.now = ensure_utc(now, field="now")

    def __call__(self) -> datetime:
        return self.now

    def advance(self, *, seconds: float) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now


def ensure_utc(value: datetime, *, field: str) -> datetime:
    """Reject naive datetimes and instants outside ``EARLIEST``..``LATEST``; convert aware ones to UTC.

    >>> from datetime import timezone
    >>> ensure_utc(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), field="start")
    Traceback (most recent call last):
    ...
    deconflict.errors.InvalidInput: start: 0001-01-01T00:00:00+01:00 lies outside the years 2000 to 2099
    """
    if value.tzinfo is UTC and EARLIEST <= value < LATEST:  # as nearly every instant the service handles is
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field}: time has no timezone; give it in UTC, for example 2025-04-09T08:00:00Z", field=field
        )
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidInput(
            f"{field}: {value.isoformat()} lies outside the years {EARLIEST.year} to {LATEST.year - 1}",
            field=field,
        )
    return utc


_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # the date
    r"(?:[Tt ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"  # the time
    r"(?:[Zz]|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?)?"  # the offset
)
"""An ISO 8601 date and time in the extended form, the offset optional (a time without one is refused next,
by name)."""


def parse_utc(value: object, *, field: str) -> datetime:
    """Parse an ISO 8601 instant with an explicit offset (``Z`` or ``+00:00``) into aware UTC.

    >>> parse_utc("2025-04-09T10:00:00+02:00", field="start").isoformat()
    '2025-04-09T08:00:00+00:00'
    """
    if isinstance(value, str):
        return _parse_text(value, field)
    if isinstance(value, datetime):
        return ensure_utc(value, field=field)
    return _parse(value, field)  # refused there, in words


def _parse(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field}: expected a time such as 2025-04-09T08:00:00Z, got {value!r}", field=field)
    try:
        # Python's parser stopped at a NUL and skipped a stray character before the offset ("08:00:00!Z",
        # "08:00:00\x01Z"), reading the time before it for the whole: the text is held to the form first
        if not _ISO.fullmatch(value.strip()):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{field}: {value!r} is not a time in ISO 8601 form such as 2025-04-09T08:00:00Z", field=field
        ) from None
    return ensure_utc(parsed, field=field)


_parse_text = lru_cache(maxsize=4096)(_parse)
""":func:`parse_utc` of text, remembered: a record's entries name the same few instants again and again (a
notice's window in its conflicts' findings, their alerts and the picture), and a datetime is immutable. A refusal
is not remembered (each is raised anew, in its field's words)."""


def iso(value: datetime) -> str:
    """Format an instant as ISO 8601 UTC with a ``Z`` suffix.

    >>> from datetime import datetime, UTC
    >>> iso(datetime(2025, 4, 9, 8, 0, tzinfo=UTC))
    '2025-04-09T08:00:00Z'
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"  # "+00:00" written as Z
