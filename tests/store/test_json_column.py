"""The JSON columns' text: written by orjson, read back by ``json.loads`` exactly as ``json.dumps``'s was."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, text
from sqlalchemy.pool import StaticPool

from deconflict.store import direct, ledger, open_store
from deconflict.store.json_column import json_text
from deconflict.store.schema import Base, MechanismRow, ZoneRow

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


class _Kind(StrEnum):
    RED_LINE = "red_line"


class _Rung(IntEnum):
    FIRST = 1


@dataclass
class _Point:
    lat: float


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": _Kind.RED_LINE, "rung": _Rung.FIRST},
        {_Kind.RED_LINE: [_Rung.FIRST]},
        {"at": datetime(2025, 4, 9, tzinfo=UTC)},
        [_Point(34.5)],
    ],
)
def test_what_orjson_is_told_to_pass_on_is_written_or_refused_as_json_dumps_does(doc: Any) -> None:
    """Subclasses of str and int read back as json.dumps's text of them does; a datetime and a dataclass are
    refused alike."""
    try:
        expected = json.dumps(doc)
    except TypeError:
        with pytest.raises(TypeError):
            json_text(doc)
        return
    assert json.loads(json_text(doc)) == json.loads(expected)


def test_a_statement_first_run_on_an_engine_that_writes_json_otherwise_does_not_lend_it_its_processors(
    tmp_path: Path,
) -> None:
    """store.direct keeps each statement's compiled bind processors: an engine with the default serializer
    (a test's, a tool's) running a statement first must not make the store write json.dumps's text."""
    at = datetime(2026, 12, 5, tzinfo=UTC)
    stmt = insert(MechanismRow.__table__)
    plain = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(plain)
    with plain.begin() as conn:
        direct.run(conn, stmt, {"id": "p", "name": "p", "doc": {"a": [1, 2]}, "declared_at": at})
        assert conn.execute(text("SELECT doc FROM mechanisms")).scalar() == '{"a": [1, 2]}'
    plain.dispose()
    db = tmp_path / "s.db"
    store = open_store(str(db))
    with store.transaction() as s:
        direct.run(ledger.connection_of(s), stmt, {"id": "m", "name": "m", "doc": {"a": [1, 2]}, "declared_at": at})
    store.close()
    con = sqlite3.connect(db)
    assert con.execute("SELECT doc FROM mechanisms WHERE id = 'm'").fetchone() == ('{"a":[1,2]}',)
    con.close()


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
