"""The rules' window limits (max_window_days, horizon_days) and the bounds of every time, at their edges."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from support.builders import T0, T4, syria

from deconflict.clock import EARLIEST, LATEST, parse_utc
from deconflict.errors import InvalidInput
from deconflict.formats.docs import check_windows, parse_rules, rules_to_doc
from deconflict.geo import parse_footprint
from deconflict.model import HORIZON_S, MAX_WINDOW_S, Volume

CIRCLE = parse_footprint({"type": "Point", "coordinates": list(T4)}, 5000)


def _vol(start: datetime, end: datetime) -> Volume:
    return Volume("v1", CIRCLE, 1000, 2000, start, end, party="TR", activity="TR-0001")


@pytest.mark.parametrize(
    ("start", "length", "refused"),
    [
        (T0, timedelta(seconds=MAX_WINDOW_S), None),
        (T0, timedelta(seconds=MAX_WINDOW_S + 1), "end"),
        (T0 + timedelta(seconds=HORIZON_S), timedelta(hours=1), None),
        (T0 + timedelta(seconds=HORIZON_S + 1), timedelta(hours=1), "start"),
        (T0 - timedelta(days=20), timedelta(days=30), None),  # under way: started before now
    ],
)
def test_windows_are_held_to_the_rules_at_their_edges(start: datetime, length: timedelta, refused: str | None) -> None:
    rules = syria().rules
    if refused is None:
        check_windows((_vol(start, start + length),), now=T0, rules=rules)
    else:
        with pytest.raises(InvalidInput) as e:
            check_windows((_vol(start, start + length),), now=T0, rules=rules)
        assert e.value.field == refused and "volume 1 (id 'v1')" in e.value.message


def test_the_window_rules_are_read_written_and_bounded() -> None:
    rules = syria().rules
    doc = rules_to_doc(rules)
    assert doc["max_window_days"] == 31 and doc["horizon_days"] == 180
    assert parse_rules({**doc, "max_window_days": 7}).max_window_s == 7 * 86400
    assert parse_rules(rules_to_doc(dataclasses.replace(rules, horizon_s=86400))).horizon_s == 86400
    for name, value in (
        ("max_window_days", 0),
        ("max_window_days", 400),
        ("horizon_days", True),
        ("horizon_days", "9"),
    ):
        with pytest.raises(InvalidInput) as e:
            parse_rules({**doc, name: value})
        assert name in e.value.message


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"],
)
def test_times_outside_2000_to_2099_are_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_utc(text, field="at")
    assert e.value.field == "at" and "2000 to 2099" in e.value.message


def test_the_edges_of_the_time_range_are_accepted() -> None:
    assert parse_utc("2000-01-01T00:00:00Z", field="t") == EARLIEST
    assert parse_utc("2099-12-31T23:59:59.999999Z", field="t") < LATEST
    east = datetime(2000, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))
    assert parse_utc(east, field="t") == datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07T07:05:00Z\x00garbage",
        "2026-12-07T07:05:00\x00Z",
        "\x002026-12-07T07:05:00Z",
        "2026-12-07T07:05:00\x01Z",
        "2026-12-07T07:05:00!Z",
        "2026-12-07T07:05:00 Z",
        "2026-12-07T07:05!Z",
        "2026-12-07T07:05:00x+02:00",
    ],
)
def test_a_time_with_a_stray_character_in_it_is_refused_not_read_around_it(text: str) -> None:
    """Python's ISO parser stops at a NUL and skips one stray character before the offset:
    ``?at=2026-12-07T07:05:00Z%00garbage`` replayed 07:05 as if that had been all of it (found by a curious party;
    a reviewer found 124 characters skipped so); JSON bodies already refused control characters by name."""
    with pytest.raises(InvalidInput, match="^at: .* is not a time in ISO 8601 form"):
        parse_utc(text, field="at")


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("Duty\x1b[2J officer", "holds a control character (U+001B)"),
        ("Duty officer \u202eresU", "holds a bidirectional control (U+202E)"),
        ("Duty\x00officer", "holds a control character (U+0000)"),
        ("Duty\x85officer", "holds a control character (U+0085)"),
    ],
)
def test_a_name_written_into_the_record_is_refused_with_what_could_make_it_read_otherwise(
    written: str, words: str
) -> None:
    """The domain's text fields (a member's name, a zone's, a revocation's reason) refuse what the API's body
    guard refuses, whatever the way in: a command on the database, a mechanism's file (an operator's member
    name with an escape sequence and an override was recorded, and sent raw on every party's stream)."""
    from deconflict.formats.docs import parse_member

    with pytest.raises(InvalidInput, match=re.escape(words)) as got:
        parse_member({"id": "TR-9", "name": written, "role": "party", "party": "TR"})
    assert got.value.field == "member 'TR-9' name"


def test_text_is_kept_in_nfc_and_measured_so() -> None:
    """One word, one spelling in the record: a decomposed accent is composed, and the length is the composed
    text's (150 accented letters are 150 characters, not the 300 code points they were sent as)."""
    from deconflict.formats.docs import parse_member, text

    assert text("Cafe\u0301", "name") == "Caf\u00e9"
    assert text("e\u0301" * 150, "name", max_len=200) == "\u00e9" * 150
    assert parse_member({"id": "TR-9", "name": "Kafe\u0301 nöbetçisi", "role": "party"}).name == "Kaf\u00e9 nöbetçisi"
    with pytest.raises(InvalidInput, match="longer than 200"):
        text("x" * 201, "name")
