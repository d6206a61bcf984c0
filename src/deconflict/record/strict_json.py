"""Reading JSON the way the record needs it: anything two readers could read differently is refused by name."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

__all__ = ["Refused", "all_finite", "floats_written_alike", "load_entry_line", "load_json"]


class Refused(ValueError):
    """A line that JSON readers could read differently (a repeated key, NaN): refused by name."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise Refused(f"it names {twice!r} twice in one object (readers could see either value)")
    return obj


def _constant(name: str) -> Any:
    raise Refused(f"it holds {name}, which is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)
"""One decoder for every line (``json.loads`` with hooks would build one per call: a cost per entry)."""


def load_json(data: bytes | str) -> Any:
    """Parse JSON as the record needs it: a repeated key in an object, or NaN/Infinity, is refused
    (:class:`ValueError` naming it); numbers too large for a float (1e999) parse as infinity and are
    refused where they are hashed. Bytes must be UTF-8 (:class:`UnicodeDecodeError` otherwise).

    >>> load_json(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> load_json('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    deconflict.record.strict_json.Refused: it names 'a' twice in one object (readers could see either value)
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise Refused("it nests arrays or objects too deeply to read (no entry of the record does)") from None


_EXPONENT = re.compile(rb"e[-+]")
_SORTED = orjson.OPT_SORT_KEYS


_NOT_FLOATS = frozenset({str, int, bool, type(None)})
"""The scalars a document holds most (ids, counts, flags, null), passed over without a call."""


def all_finite(value: Any) -> bool:
    """Whether no float in ``value`` (a document of dicts, lists, tuples and scalars) is NaN or infinite: what
    orjson writes as null, and so what a text orjson wrote with a ``null`` in it may have lost.

    Asked of every entry whose canonical text holds a null (most of the hotline's messages) and of the JSON
    columns written beside it: it calls itself only for the containers and floats a document holds, not for
    each of its strings and numbers (5 times faster on a message's payload than a call per value).

    >>> all_finite({"a": [1, 2.5, None, "x"], "b": (True, {"c": 0.0})}), all_finite({"a": [{"b": float("nan")}]})
    (True, False)
    """
    kind = type(value)
    if kind is dict:
        values: Any = value.values()
    elif kind is list or kind is tuple:
        values = value
    elif kind is float:
        return math.isfinite(value)
    else:
        return True
    for v in values:
        kind = type(v)
        if kind in _NOT_FLOATS:
            continue
        if kind is float:
            if not math.isfinite(v):
                return False
        elif not all_finite(v):
            return False
    return True


def floats_written_alike(text: bytes) -> bool:
    """Whether ``text``, written by orjson, holds no float the standard encoder writes otherwise: none in
    exponent form (``1e-7`` for ``1e-07``) nor under 0.0001 (``0.00001`` for ``1e-05``). Read on the text: a
    string holding ``e-`` or ``0.0000`` counts as such a float too (the caller then takes the standard path)."""
    return b"0.0000" not in text and _EXPONENT.search(text) is None


def load_entry_line(line: bytes) -> tuple[dict[str, Any], bytes | None] | None:
    """A bundle's entry line read with orjson, when that reading is provably :func:`load_json`'s, with the
    payload's canonical JSON (:func:`deconflict.record.chain.canonical`'s bytes; None: no payload); None
    when it may not be: the caller then reads the line with :func:`load_json` (which names what it refuses).

    orjson reads three times faster and writes ten times faster, but keeps the last of a repeated key,
    reads an integer past 64 bits as a float, and writes some floats differently (``0.00001`` for
    ``1e-05``), so its reading is taken only for a line that (1) holds no backslash (no escape: every
    ``"`` delimits a string, and orjson writes every string back as it was), (2) holds as many ``"`` as
    the document read (a repeated key drops at least one string), (3) whose fields other than the
    payload are text, whole numbers, booleans or null, and (4) whose payload orjson writes with no float
    in exponent form nor under 0.0001 (there the two writers differ, and an integer past 64 bits read as
    a float shows as one). orjson refuses NaN, Infinity, 1e999, bad UTF-8, deep nesting and all json
    refuses: the strict reading is taken then too. tests/record/test_strict_json_fast.py holds the two
    readings side by side.
    """
    if b"\\" in line:
        return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if doc.__class__ is not dict:
        return None
    strings = len(doc)
    text = None
    quotes = 0
    for name, value in doc.items():
        if name == "payload":
            try:
                text = orjson.dumps(value, option=_SORTED)
            except orjson.JSONEncodeError:
                return None
            if not floats_written_alike(text):
                return None
            quotes = text.count(b'"')
        elif value.__class__ is str:
            strings += 1
        elif not (value is None or value.__class__ is int or value.__class__ is bool):
            return None
    if line.count(b'"') != 2 * strings + quotes:
        return None
    return doc, text
