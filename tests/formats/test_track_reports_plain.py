"""Position reports: the plain path (:func:`~deconflict.formats.docs._plain_report`) turns a report exactly
as the field-by-field check (:func:`~deconflict.formats.docs._report`) does, and only a report that check
passes; a batch reads the same whichever path each report takes, errors included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.timing import best_cpu

from deconflict.errors import InvalidInput
from deconflict.formats.docs import TRACK_FIELDS, _plain_report, _report, parse_track_reports

NOW = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)

EDGES = {name: (low, high) for name, (_, low, high) in TRACK_FIELDS.items()}


def numbers(name: str) -> st.SearchStrategy[Any]:
    low, high = EDGES[name]
    return st.one_of(
        st.sampled_from([low, high, low - 1e-9, high + 1e-9, int(low), int(high), 0, True, False, None, "1"]),
        st.floats(min_value=low - 10, max_value=high + 10),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**400), max_value=10**400),
    )


TIMES = st.one_of(
    st.sampled_from(
        [
            "2025-04-09T05:59:50Z",
            "2025-04-09T05:59:50+00:00",
            "2025-04-09T08:59:50+03:00",
            "2025-04-09T05:59:50",
            " 2025-04-09T05:59:50Z",
            "2025-04-09T05:59:50Z ",
            "2025-04-09T06:00:05Z",
            "2025-04-09T06:00:05.000001Z",
            "2025-04-09T05:59:00Z",
            "2025-04-09T05:58:59.999999Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1999-12-31T23:59:59Z",
            "yesterday",
            "",
        ]
    ),
    st.timedeltas(min_value=timedelta(seconds=-90), max_value=timedelta(seconds=10)).map(
        lambda d: (NOW + d).isoformat().replace("+00:00", "Z")
    ),
    st.integers(),
)
IDS = st.one_of(
    st.sampled_from(["UAV-1", "TR:1.2_a", " UAV-1", "UAV-1 ", "", "x" * 64, "x" * 65, "\u0422R-1", "a b", None, 7]),
    st.text(min_size=0, max_size=8),
)


@st.composite
def reports(draw: st.DrawFn) -> Any:
    r: dict[str, Any] = {"id": draw(IDS), "at": draw(TIMES)}
    for name in TRACK_FIELDS:
        if draw(st.integers(0, 20)) == 0:
            continue  # missing
        r[name] = draw(numbers(name))
    if draw(st.integers(0, 20)) == 0:
        r["extra"] = 1
    return draw(st.one_of(st.just(r), st.sampled_from([[], "report", None]))) if draw(st.integers(0, 30)) == 0 else r


def outcome(f: Any) -> Any:
    try:
        return ("ok", f())
    except InvalidInput as e:
        return ("refused", str(e))


@settings(max_examples=1500, deadline=None)
@given(reports(), st.sampled_from([60.0, 1.5, 3600.0]))
def test_the_plain_path_turns_a_report_exactly_as_the_full_check(r: Any, stale_s: float) -> None:
    plain = _plain_report(r, NOW, stale_s, 5.0, {})
    full = outcome(lambda: _report(0, r, NOW, stale_s, 5.0, set()))
    if plain is not None:
        assert full == ("ok", plain)
        assert [type(v) for v in plain.values()] == [type(v) for v in full[1].values()]


@settings(max_examples=200, deadline=None)
@given(st.lists(reports(), min_size=1, max_size=6))
def test_a_batch_reads_alike_whichever_path_each_report_takes(batch: list[Any]) -> None:
    def slow() -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for n, r in enumerate(batch):
            state = _report(n, r, NOW, 60.0, 5.0, seen)
            seen.add(state["id"])
            out.append(state)
        return out

    assert outcome(lambda: parse_track_reports(batch, now=NOW, stale_s=60.0)) == outcome(slow)


def test_a_repeated_track_is_refused_by_name_on_the_plain_path_too() -> None:
    r = {"id": "UAV-1", "at": "2025-04-09T05:59:50Z", "lat": 34.5, "lon": 37.6, "alt_ft": 10000}
    r |= {"gs_kt": 100, "trk_deg": 90, "vs_fpm": 0}
    with pytest.raises(InvalidInput, match=r"report 1 \(id 'UAV-1'\): the same track appears twice in one batch"):
        parse_track_reports([r, dict(r)], now=NOW, stale_s=60)


def test_a_number_beyond_a_float_is_refused_by_name() -> None:
    r = {"id": "UAV-1", "at": "2025-04-09T05:59:50Z", "lat": 10**400, "lon": 37.6, "alt_ft": 10000}
    r |= {"gs_kt": 100, "trk_deg": 90, "vs_fpm": 0}
    with pytest.raises(
        InvalidInput,
        match=r"report 0 \(id 'UAV-1'\) lat: latitude, degrees must be between -90 and 90, got a number of 401 digits",
    ):
        parse_track_reports([r], now=NOW, stale_s=60)


def test_a_batch_of_plain_reports_costs_less() -> None:
    batch = [
        {
            "id": f"TR-{i:05d}",
            "at": (NOW - timedelta(seconds=i % 7, microseconds=i)).isoformat().replace("+00:00", "Z"),
            "lat": 35.0 + i * 1e-4,
            "lon": 38.0,
            "alt_ft": 33000,
            "gs_kt": 420.5,
            "trk_deg": 90,
            "vs_fpm": 0,
        }
        for i in range(2000)
    ]

    def slow() -> None:
        seen: set[str] = set()
        for n, r in enumerate(batch):
            seen.add(_report(n, r, NOW, 60.0, 5.0, seen)["id"])

    def fast() -> None:
        parse_track_reports(batch, now=NOW, stale_s=60.0)

    fast_s, slow_s = best_cpu(fast, slow)  # normally about 0.5
    assert fast_s < 0.85 * slow_s, (fast_s, slow_s)
