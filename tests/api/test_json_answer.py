"""``json_answer`` against Starlette's ``JSONResponse``: the same bytes (or the same refusal) for every document,
the ones orjson writes otherwise included."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.api.views import json_answer

EDGES: list[Any] = [
    {"tracks": [{"track": "IL/F16-1", "lat": 34.52, "lon": 37.63, "alt_m": 4572.0, "vs_mps": 0.0}]},
    {"small": 1e-05, "tiny": 5e-324, "big": 1e16, "huge": 1.7976931348623157e308, "neg": -0.0},
    {"vs_mps": 0.0001, "under": 0.00009999, "round": 34.123456},
    {"n": 2**63, "m": -(2**63) - 1, "k": 2**64, "ok": 2**63 - 1},
    {"text": 'quote " backslash \\ controls \x00\x01\x1f\x7f tab \t line\n\u2028\u2029', "rtl": "שלום", "emoji": "🛩"},
    {"none": None, "t": True, "f": False, "empty": {}, "list": []},
    {"nested": [[[{"a": [1, 2.5, "x"]}]]]},
    {"the word null in a string": "null"},
    {"a null": None, "and a NaN": [1.5, {"deep": math.nan}]},
    {"a null": None, "and infinities": (math.inf, -math.inf)},
    {"activity": {"title": None, "volumes": [{"radius_m": None, "floor_m": 0.0}]}, "raised": [], "seq": 7},
    {"lone surrogate": "\ud800"},
    [1, "two", 3.0],
    "just text",
    42,
]


def _same(doc: Any) -> None:
    try:
        want: bytes | None = bytes(JSONResponse(doc).body)
    except (TypeError, ValueError):
        want = None
    try:
        got: bytes | None = bytes(json_answer(doc).body)
    except (TypeError, ValueError):
        got = None
    assert got == want, (doc, got, want)


@pytest.mark.parametrize("doc", EDGES, ids=range(len(EDGES)))
def test_the_same_bytes_as_jsonresponse_on_the_edges(doc: Any) -> None:
    _same(doc)


def test_nan_and_infinity_are_refused_as_jsonresponse_refuses_them() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            json_answer({"x": bad})


def test_a_non_text_key_is_written_as_jsonresponse_writes_it() -> None:
    _same({1: "one", 2.5: "two and a half", None: "none", False: "no"})


def test_the_media_type_and_status_are_jsonresponse_s() -> None:
    fast, ref = json_answer({"a": 1}, status_code=201), JSONResponse({"a": 1}, status_code=201)
    assert (fast.status_code, fast.headers["content-type"]) == (ref.status_code, ref.headers["content-type"])


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_same_bytes_as_jsonresponse_on_any_document(doc: Any) -> None:
    _same(doc)


def test_a_value_json_has_no_word_for_is_written_as_fastapi_writes_a_route_s_answer() -> None:
    """A view that one day holds a Decimal or a set, beside a null (the standard encoder's path) or not, answers
    what FastAPI would have answered for the route returning it, not a 500."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from fastapi.encoders import jsonable_encoder

    when = datetime(2025, 4, 9, 8, 30, tzinfo=UTC)  # orjson writes it; with a null beside, JSONResponse refuses it
    for doc in ({"d": Decimal("1.5"), "none": None}, {"d": Decimal("2"), "s": {"x"}}, {"t": when, "none": None}):
        assert bytes(json_answer(doc).body) == bytes(JSONResponse(jsonable_encoder(doc)).body)
