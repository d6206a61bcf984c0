"""The bundle reader's orjson fast path reads every line as the strict reader does, or leaves it to it (issue 17).

:func:`~deconflict.record.strict_json.load_entry_line` must never give a document the strict reader
(:func:`~deconflict.record.strict_json.load_json`) would refuse or read differently, nor a payload text other
than :func:`~deconflict.record.chain.canonical`'s: on every line here, hand-made where orjson and json differ
(repeated keys, NaN, 1e999, integers past 64 bits, floats json writes in exponent form, white space, escapes)
and random, either it declines (None) or both readings are equal, type for type, and its payload text is
the canonical one. Lines as bundles hold them take the fast path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.bench_record import bundle_lines, verdict_of_lines

from deconflict.record import chain
from deconflict.record.strict_json import load_entry_line, load_json


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not 1.0 nor True), keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # noqa: PLR0124 - NaN is never equal to itself


def _agrees(line: bytes) -> bool:
    """Whether the fast path took ``line``; asserts it read it as the strict reader would when it did."""
    fast = load_entry_line(line)
    if fast is None:
        return False
    doc, text = fast
    strict = load_json(line)  # raises when the fast path took a line the strict reader refuses
    assert _same(doc, strict), line
    if "payload" in strict:
        assert text == chain.canonical(strict["payload"]), line
    else:
        assert text is None
    return True


ENTRY = (
    '{"actor":"TR","at":"2025-04-09T06:00:00.004000Z","hash":"dca0","mechanism":"bench",'
    '"payload":{"id":"TR-1","n":7,"r":20000.0,"c":[37.6298,34.5226],"t":"","ok":true,"no":null,"v":[{"a":1}]},'
    '"payload_hash":"c9c6","prev_hash":"2270","seq":4,"type":"activity.notified","key_id":"k","signature":"s"}'
)


def test_lines_as_bundles_hold_them_take_the_fast_path() -> None:
    doc = load_json(ENTRY)
    assert _agrees(ENTRY.encode())
    assert _agrees((json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n").encode())  # as export writes
    odd = {**doc, "payload": {"title": "Ğüç 😀 ～", "ünï": [0.0001, -0.0, 1e15, 2**64 - 1, -(2**63)]}}
    assert _agrees(json.dumps(odd, ensure_ascii=False).encode())
    withheld = dict(doc)
    del withheld["payload"]
    assert _agrees(json.dumps(withheld).encode())


DECLINED = [
    '{"a":1,"a":2}',  # a repeated key in the payload
    '{"a":{"b":1,"b":1}}',  # ... deeper down
    '{"a":{"b":"x","b":"x"}}',
    '{"a" :1, "a": 2}',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":-Infinity}',
    '{"a":1e999}',
    '{"a":123456789012345678901234567890}',  # read by orjson as a float
    '{"a":18446744073709551616}',
    '{"a":-9223372036854775809}',
    '{"a":1e-05}',  # json writes 1e-05, orjson 0.00001
    '{"a":0.00001}',
    '{"a":1e16}',
    '{"a":1.5e+300}',
    '{"a":"x\\u0041"}',  # an escape
    '{"a":"\\ud800"}',  # a lone surrogate
    '{"a":"x\\"y"}',
    '{"a":"\\u0022","a":1}',  # an escaped quote to make up for a repeated key's
    '{"a":"\\u0022\\u0022","b":"1","b":"1"}',
    "[" * 300 + "]" * 300,  # deeper than orjson writes
]
TAKEN = ['{"a" :1}', '{"a": 1 , "b" : [ 1 , 2 ] }', '{"a":" leading space"}', '{"a":":colon"}', '{"": ""}']


@pytest.mark.parametrize("value", DECLINED + TAKEN)
def test_the_fast_path_declines_where_orjson_and_json_may_differ(value: str) -> None:
    line = ENTRY.replace('{"id":"TR-1"', '{"w":' + value + ',"id":"TR-1"', 1).encode()
    assert _agrees(line) == (value in TAKEN)


@pytest.mark.parametrize(
    "line",
    [
        b'{"seq":1,"seq":2,"payload":{}}',  # a repeated key at the top
        b'{"payload":{"a":1},"payload":{"a":1}}',
        b'{"seq":1,"other":{"a":1,"a":2},"payload":{"b":1}}',  # keys in a field other than the payload
        b'{"seq":1,"other":{"a":1},"payload":{"b":1}}',
        b'{"seq":123456789012345678901234567890,"payload":{}}',
        b'{"seq":1e999,"payload":{}}',
        b'{"seq":4.0,"payload":{}}',
        b'{"seq":[1],"payload":{}}',
        b'{"seq":NaN}',
        b'["not", "an", "entry"]',
        b"",
        b"\n",
        b"   \n",
        b'\xef\xbb\xbf{"seq":1}',
        b'{"seq":1,"actor":"\xff"}',  # not UTF-8
        b'{"seq":1,"actor":"\xed\xa0\x80"}',  # a surrogate written in UTF-8
        b'{"seq":1}\x0c',
        b'{"seq":1} {}',
        b'{"seq":1,}',
        b'{"seq":01}',
    ],
)
def test_the_fast_path_declines_lines_the_strict_reader_refuses_or_reads_otherwise(line: bytes) -> None:
    assert load_entry_line(line) is None


# Random documents written the ways a bundle may hold them: floats at every exponent, integers past 64 bits,
# every character (quotes, control characters, non-ASCII), repeated keys spliced in, white space anywhere.
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(lambda m, e: m * 10.0**e, st.floats(-10, 10), st.integers(-30, 30)),
)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), _floats, st.text(max_size=12)
)
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=25,
)
_top = st.dictionaries(
    st.sampled_from(["seq", "actor", "at", "hash", "key_id", "signature", "type", "other"]), _scalars, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(
    top=_top,
    payload=st.one_of(st.none(), _docs),
    compact=st.booleans(),
    ascii_only=st.booleans(),
    splice=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.sampled_from(['"a":1,', '"seq":2,', " ", ":"]))),
)
def test_random_lines_read_as_the_strict_reader_reads_them(
    top: dict[str, Any], payload: Any, compact: bool, ascii_only: bool, splice: tuple[int, str] | None
) -> None:
    doc = dict(top)
    if payload is not None:
        doc["payload"] = payload
    text = json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":") if compact else None)
    if splice is not None:  # a repeated key, a space or a colon put in after some opening brace
        at, what = splice
        braces = [i for i, c in enumerate(text) if c == "{"]
        i = braces[at % len(braces)] + 1
        text = text[:i] + what + text[i:]
    line = text.encode("utf-8", "surrogatepass")
    try:
        load_json(line)
    except ValueError:
        assert load_entry_line(line) is None
        return
    _agrees(line)


_plain = st.text(
    alphabet=st.characters(min_codepoint=0x21, blacklist_categories=("Cs",), blacklist_characters='"\\:.eE')
)


@settings(max_examples=150, deadline=None)
@given(payload=st.dictionaries(_plain, st.one_of(st.floats(1e-4, 1e15), st.integers(-(2**63), 2**64 - 1), _plain)))
def test_plain_payloads_take_the_fast_path(payload: dict[str, Any]) -> None:
    line = json.dumps({"seq": 5, "payload": payload}, ensure_ascii=False, separators=(",", ":")).encode()
    assert _agrees(line)


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The lines of a 60-entry bundle of bench/ledger.py's record (a legitimate one)."""
    return bundle_lines(tmp_path_factory.mktemp("fast") / "record.jsonl", 60)


def _verdict(lines: list[bytes], tmp_path: Path, workers: int) -> tuple[Any, ...]:
    ok, entries, _, head_hash, first_bad, problem = verdict_of_lines(lines, tmp_path, workers)
    return (ok, entries, head_hash, first_bad, problem)


def test_a_bundle_read_fast_and_strictly_line_by_line_gives_one_verdict(record: list[bytes], tmp_path: Path) -> None:
    assert all(load_entry_line(line) is not None for line in record[1:])  # the bench's lines take the fast path
    ok = _verdict(record, tmp_path, 1)
    assert ok[0] and ok[1] == 60
    # the same entries written with an escape ("t\u0079pe" for "type"): read strictly, the same verdict
    escaped = [record[0]] + [
        json.dumps(json.loads(line)).replace('"type"', '"t\\u0079pe"').encode() + b"\n" for line in record[1:]
    ]
    assert all(load_entry_line(line) is None for line in escaped[1:])
    assert _verdict(escaped, tmp_path, 1) == _verdict(escaped, tmp_path, 2) == ok
    # every other line strict, the others fast
    mixed = [escaped[i] if i % 2 else record[i] for i in range(len(record))]
    assert _verdict(mixed, tmp_path, 2) == ok
    # a repeated key spliced into entry 30's payload: refused by name, as the strict reader always did
    twice = list(record)
    twice[30] = twice[30].replace(b'"payload":{', b'"payload":{"id":"x",', 1)
    assert load_entry_line(twice[30]) is None
    refused = _verdict(twice, tmp_path, 1)
    assert refused[3] == 30 and "names 'id' twice in one object" in refused[4]
    assert _verdict(twice, tmp_path, 2) == refused


_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)
_DOCUMENT = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_DOCUMENT)
def test_all_finite_says_whether_the_standard_encoder_would_refuse_a_float(doc: Any) -> None:
    """What decides whether orjson's text of a payload with a null may stand for the standard encoder's
    (:func:`chain.canonical`, the JSON columns): a NaN or an infinity anywhere, however deep, is found; a
    document without one is never refused."""
    from deconflict.record.strict_json import all_finite

    try:
        json.dumps(doc, allow_nan=False)
        finite = True
    except ValueError:
        finite = False
    assert all_finite(doc) is finite
