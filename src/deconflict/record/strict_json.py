"""Reading JSON the way the record needs it: anything two readers could read differently is refused by name."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Refused", "load_json"]


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
