"""How the JSON columns are written: one serializer for every engine on the schema, so that a statement
compiled once (:mod:`deconflict.store.direct` keeps its bind processors) writes the same text whichever
engine compiled it."""

from __future__ import annotations

import json
from typing import Any

import orjson

from deconflict.record.strict_json import all_finite

__all__ = ["json_text"]

_JSON_TEXT_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def json_text(value: Any) -> str:
    """The text a JSON column stores for ``value``: what ``json.loads`` reads back as ``value``, as the text
    of ``json.dumps`` (SQLAlchemy's default) is, written by orjson (several times faster on the documents
    every entry stores). Whatever orjson would write differently, or not at all, is written by ``json.dumps``
    as before: NaN and Infinity (orjson writes null), integers past 64 bits, keys that are not text, lone
    surrogates, and the datetimes, dataclasses and subclasses of str, int, dict and list that orjson is told
    to pass on. Floats are written in their shortest form (``1e-7``), which reads back as the same float.
    Only a plain ``Enum`` or a ``UUID``, which ``json.dumps`` refuses, is written by orjson as its value (no
    document holds either, as none of the record's payloads does: :func:`deconflict.record.chain.canonical`).

    >>> json_text({"a": (1, 0.5, "ü"), "b": None}), json_text({"x": [float("nan")]}), json_text({1: 2**70})
    ('{"a":[1,0.5,"ü"],"b":null}', '{"x": [NaN]}', '{"1": 1180591620717411303424}')
    """
    try:
        text = orjson.dumps(value, option=_JSON_TEXT_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value)
    if b"null" in text and not all_finite(value):  # a NaN or an Infinity, which orjson writes as null
        return json.dumps(value)
    return text.decode()
