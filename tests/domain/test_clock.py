"""The clock's parsing and formatting of instants, whose quick paths (an aware UTC instant passed through, text
parsed once and remembered) give what the plain conversions give, and refuse what they refuse, in the words of
the field each time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from deconflict.clock import ensure_utc, iso, parse_utc
from deconflict.errors import InvalidInput

INSTANTS = [
    datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 7, 12, 0, 0, 500, tzinfo=UTC),
    datetime(2026, 12, 7, 15, 0, tzinfo=timezone(timedelta(hours=3))),
    datetime(2026, 7, 1, 2, 30, 15, tzinfo=ZoneInfo("Asia/Jerusalem")),
    datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo("UTC")),
    datetime(2000, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("when", INSTANTS, ids=str)
def test_an_instant_is_written_and_kept_as_its_utc_self(when: datetime) -> None:
    assert iso(when) == when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    kept = ensure_utc(when, field="start")
    assert kept == when and kept.tzinfo is UTC


def test_the_years_are_held_on_the_quick_path_too() -> None:
    for outside in (datetime(2100, 1, 1, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, tzinfo=UTC)):
        with pytest.raises(InvalidInput, match="lies outside the years 2000 to 2099"):
            ensure_utc(outside, field="end")
    with pytest.raises(InvalidInput, match="start: time has no timezone"):
        ensure_utc(datetime(2026, 12, 7), field="start")  # noqa: DTZ001  # naive on purpose


def test_text_parsed_again_gives_the_same_instant_and_a_refusal_names_each_field() -> None:
    first = parse_utc("2026-12-07T15:00:00+03:00", field="start")
    assert first == datetime(2026, 12, 7, 12, 0, tzinfo=UTC) and first.tzinfo is UTC
    assert parse_utc("2026-12-07T15:00:00+03:00", field="end") == first
    for field in ("start", "end", "start"):
        with pytest.raises(InvalidInput, match=f"^{field}: time has no timezone") as refused:
            parse_utc("2026-12-07T15:00", field=field)
        assert refused.value.field == field
    for odd in ([], {"t": 1}, None, 5, "  "):  # not text: refused in words, not by the memory's hashing
        with pytest.raises(InvalidInput, match="^t1: expected a time such as"):
            parse_utc(odd, field="t1")
