"""The JSON columns' text: written by orjson, read back by ``json.loads`` exactly as ``json.dumps``'s was."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.store import open_store
from deconflict.store.json_column import json_text
from deconflict.store.schema import MechanismRow, ZoneRow

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # lone surrogates included
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(min_value=0, max_value=9), inner, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values, NaN equal to NaN and each number of the same type (1 is not 1.0 nor True)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_every_document_reads_back_as_json_dumps_text_does(doc: Any) -> None:
    try:
        expected = json.dumps(doc)
    except (TypeError, ValueError) as e:  # what json.dumps refuses, json_text refuses alike
        with pytest.raises(type(e)):
            json_text(doc)
        return
    assert same(json.loads(json_text(doc)), json.loads(expected))


@pytest.mark.parametrize(
    "doc",
    [
        {"distance_m": float("nan")},
        {"band": [0.0, float("inf")], "valid_to": None},
        [None, -math.inf],
    ],
)
def test_a_nan_or_infinity_is_written_as_json_dumps_writes_it_not_as_null(doc: Any) -> None:
    """orjson writes them as null, which would read back as None."""
    assert json_text(doc) == json.dumps(doc)


def test_a_tuple_is_written_as_the_list_it_reads_back_as() -> None:
    """The text does not depend on whether a document held tuples or the lists read back from the database:
    a row written again holds the same bytes."""
    assert json_text({"c": (1.5, 2), "v": None}) == json_text({"c": [1.5, 2], "v": None}) == '{"c":[1.5,2],"v":null}'


def test_a_stored_document_is_compact_text_that_reads_back_whole(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(str(db))
    at = datetime(2026, 12, 5, tzinfo=UTC)
    doc = {"name": "Palmyra — ü", "coordinates": (38.3169, 34.5574), "valid_to": None, "tiny": 1e-7}
    with store.transaction() as s:
        s.add(MechanismRow(id="m", name="m", doc={}, declared_at=at))
        s.flush()
        s.add(ZoneRow(mechanism_id="m", id="Z1", owner="IL", kind="red_line", declared_at=at, doc=doc))
    with store.read() as s:
        back = s.get(ZoneRow, ("m", "Z1"))
        assert back is not None and back.doc == {**doc, "coordinates": [38.3169, 34.5574]}
    store.close()
    con = sqlite3.connect(db)
    (text,) = con.execute("SELECT doc FROM zones").fetchone()
    con.close()
    assert text == json_text(doc) and ", " not in text  # orjson's compact text, not json.dumps's
