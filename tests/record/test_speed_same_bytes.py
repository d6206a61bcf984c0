"""The record's fast paths give exactly the bytes of the reference they replace (issue 17).

``chain.canonical`` (one encoder made once), ``chain.entry_hash`` (the head's canonical text written
out directly) and ``KeyPair.sign`` (libsodium's bindings without PyNaCl's objects) are held to the
reference spelled as it was before: ``json.dumps`` with the canonical options, the head as a dict
through the encoder, ``SigningKey.sign(...).signature``; over every entry of the golden record and over
random documents and fields (unicode, control characters, floats at every exponent, huge integers),
failures included (NaN, a lone surrogate: the same error). ``signing.verify`` still refuses every
broken signature, key and encoding.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from deconflict.clock import parse_utc
from deconflict.record import chain, signing

GOLDEN = Path(__file__).parent.parent / "golden" / "demo_record.jsonl"


def reference_canonical(obj: Any) -> bytes:
    """``chain.canonical`` as it was written before the fast path."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def reference_entry_hash(**head: Any) -> str:
    """``chain.entry_hash`` as it was written before: the head as a dict through the canonical encoder."""
    doc = dict(head, at=head["at"].astimezone(UTC).isoformat().replace("+00:00", "Z"))
    return hashlib.sha256(reference_canonical(doc)).hexdigest()


def _outcome(f: Any, *args: Any, **kwargs: Any) -> Any:
    """What ``f`` returns, or the type of what it raises (so that failures are compared too)."""
    try:
        return f(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the exception's type is the outcome compared
        return type(e)


def _golden() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]


def test_the_golden_record_hashes_and_signs_to_the_same_bytes() -> None:
    """Every golden entry: its payload hash, chain hash and signature recomputed by the fast paths, as stored."""
    entries = _golden()
    keys = {}
    for e in entries:
        p = e["payload"]
        for k in (p.get("service_key"), p if e["type"] == chain.EntryType.KEY_REGISTERED else None):
            if isinstance(k, dict) and "public_key" in k:
                keys[k["key_id"]] = k["public_key"]
    prev = chain.GENESIS_HASH
    for e in entries:
        assert chain.canonical(e["payload"]) == reference_canonical(e["payload"])
        assert chain.sha256_hex(chain.canonical(e["payload"])) == e["payload_hash"]
        head = {
            "mechanism": e["mechanism"],
            "seq": e["seq"],
            "at": parse_utc(e["at"], field="at"),
            "actor": e["actor"],
            "type": e["type"],
            "payload_hash": e["payload_hash"],
            "prev_hash": prev,
        }
        assert chain.entry_hash(**head) == reference_entry_hash(**head) == e["hash"]
        assert signing.verify(keys[e["key_id"]], signing.entry_message(e["hash"]), e["signature"])
        prev = e["hash"]
    assert len(entries) > 30 and len(keys) >= 3


def test_draft_gives_the_golden_entries() -> None:
    """``chain.draft`` (what every append uses) rebuilds each golden entry's payload text and hashes."""
    prev = chain.Head(0, chain.GENESIS_HASH)
    for e in _golden():
        row = chain.draft(
            mechanism=e["mechanism"],
            actor=e["actor"],
            type=e["type"],
            payload=e["payload"],
            at=parse_utc(e["at"], field="at"),
            after=prev,
        )
        assert (row["payload"].encode(), row["payload_hash"], row["hash"]) == (
            reference_canonical(e["payload"]),
            e["payload_hash"],
            e["hash"],
        )
        prev = chain.Head(row["seq"], row["hash"])


# Floats at every exponent (Python writes 1e-07 and 1e+16 where other encoders write 1e-7, 1e16),
# integers past 64 bits, every character including control characters, quotes and lone surrogates.
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
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


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_canonical_is_the_reference_on_random_documents(doc: Any) -> None:
    assert _outcome(chain.canonical, doc) == _outcome(reference_canonical, doc)


def _read_reference(doc: Any) -> Any:
    """What ``canonical_read`` must give: the reference's bytes, and ``json.loads`` of them."""
    text = reference_canonical(doc)
    return text, json.loads(text)


def _same(a: Any, b: Any) -> bool:
    """Equal, with each number of the same type (a float read for an integer past 64 bits is not equal)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (isinstance(a, float) and repr(a) == repr(b))


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_canonical_read_reads_what_json_loads_reads_from_the_reference(doc: Any) -> None:
    """The payload as the writer's rules read it is the verifier's: ``json.loads`` of the canonical bytes,
    whichever encoder wrote them and whichever reader read them."""
    found, expected = _outcome(chain.canonical_read, doc), _outcome(_read_reference, doc)
    assert _same(found, expected), (found, expected)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_canonical_read_gives_back_every_float_bit_for_bit(floats: list[float]) -> None:
    text, read = chain.canonical_read({"f": floats})
    assert [repr(x) for x in read["f"]] == [repr(x) for x in json.loads(text)["f"]] == [repr(x) for x in floats]


def test_canonical_read_reads_tuples_and_subclasses_as_json_loads_does() -> None:
    """What the rules see is the payload as read back, not as given: tuples become lists, an IntEnum or a
    StrEnum its plain value."""
    for doc in ({"t": (1, (2.5, "x"))}, {"rung": _Rung.FIRST, "kind": _Kind.TRACKS}, [(_Rung.FIRST,)]):
        text, read = chain.canonical_read(doc)
        expected = json.loads(reference_canonical(doc))
        assert text == reference_canonical(doc) and _same(read, expected), (doc, read)


def test_canonical_read_of_a_long_integer_keeps_it_whole() -> None:
    """orjson would read an integer past 64 bits as a float: such a payload is read by ``json.loads``."""
    text, read = chain.canonical_read({"n": 2**64 + 1, "m": [1.5]})
    assert text == b'{"m":[1.5],"n":18446744073709551617}'
    assert read == {"m": [1.5], "n": 2**64 + 1} and type(read["n"]) is int


class _Rung(IntEnum):
    FIRST = 1


class _Kind(StrEnum):
    TRACKS = "tracks"


@dataclass
class _Point:
    lat: float


def test_canonical_is_the_reference_where_orjson_writes_otherwise_or_refuses() -> None:
    """Where orjson's bytes would differ (small floats, exponents) or it refuses (past 64 bits, a lone
    surrogate, NaN, subclasses, a datetime, a dataclass), the standard encoder's outcome is given."""
    cases: list[Any] = [
        {"x": 1e-07},
        {"x": 1e-05},
        [0.0001, 1e16, 1.5e300, 5e-324],
        {"n": 2**64, "m": -(2**63) - 1},
        {"k\ud800": 1},
        ["\udfff"],
        {"x": float("nan")},
        {"rung": _Rung.FIRST, "kind": _Kind.TRACKS},
        {_Kind.TRACKS: [_Rung.FIRST]},
        {"at": datetime(2025, 4, 9, 8, 0, tzinfo=UTC)},
        [_Point(34.5)],
        {1: "a", "b": 2},
        {"text": "a 1e-5 in words, 0.00001 too", "control": "\x00\x1f\x7f\u2028"},
        (1, [2, {"z": None, "a": True}]),
    ]
    for doc in cases:
        assert _outcome(chain.canonical, doc) == _outcome(reference_canonical, doc), doc


_texts = st.one_of(st.text(max_size=20), st.sampled_from(["tr-il-syria", "operator", "activity.notified"]))


@settings(max_examples=300, deadline=None)
@given(
    mechanism=_texts,
    seq=st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.booleans()),
    ms=st.integers(min_value=0, max_value=10**12),
    actor=_texts,
    type=st.one_of(_texts, st.sampled_from(list(chain.EntryType))),
    payload_hash=_texts,
    prev_hash=_texts,
)
def test_entry_hash_is_the_reference_on_random_fields(
    mechanism: str, seq: int, ms: int, actor: str, type: str, payload_hash: str, prev_hash: str
) -> None:
    head = {
        "mechanism": mechanism,
        "seq": seq,
        "at": datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=ms * 7),
        "actor": actor,
        "type": type,
        "payload_hash": payload_hash,
        "prev_hash": prev_hash,
    }
    assert _outcome(chain.entry_hash, **head) == _outcome(reference_entry_hash, **head)


def test_entry_hash_of_fields_that_are_not_text_takes_the_encoder() -> None:
    """A seq that is not a whole number, or a field that is not text, is hashed as the encoder writes it."""
    at = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    base = dict(mechanism="m", at=at, actor="a", type="t", payload_hash="p", prev_hash="0")
    for odd in ({"seq": True}, {"seq": 1.0}, {"seq": 2, "actor": None}, {"seq": 3, "prev_hash": 7}):
        head: dict[str, Any] = {**base, **odd}
        assert chain.entry_hash(**head) == reference_entry_hash(**head)
    with pytest.raises(ValueError):
        chain.entry_hash(**{**base, "seq": float("nan")})  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_sign_is_pynacl_signing_key(seed: bytes, message: bytes) -> None:
    key, reference = signing.KeyPair.from_seed(seed), SigningKey(seed)
    assert key.public_key == base64.b64encode(bytes(reference.verify_key)).decode()
    assert key.sign(message) == base64.b64encode(reference.sign(message).signature).decode()
    assert signing.verify(key.public_key, message, key.sign(message))


def test_verify_refuses_every_broken_signature_key_and_encoding() -> None:
    key = signing.KeyPair.from_seed(bytes(range(32)))
    message = signing.entry_message("ab" * 32)
    good = key.sign(message)
    raw = base64.b64decode(good)
    other = signing.KeyPair.from_seed(bytes(32))
    flipped = [base64.b64encode(raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]).decode() for i in (0, 31, 32, 63)]
    refused = [
        (key.public_key, message + b"x", good),
        (key.public_key, signing.entry_message("cd" * 32), good),
        (other.public_key, message, good),
        (key.public_key, message, None),
        (key.public_key, message, ""),
        (key.public_key, message, "not base64!"),
        (key.public_key, message, base64.b64encode(raw[:63]).decode()),
        (key.public_key, message, base64.b64encode(raw + b"\0").decode()),
        (key.public_key, message, base64.b64encode(raw[32:] + raw[:32]).decode()),
        ("not a key", message, good),
        (base64.b64encode(b"\1" * 31).decode(), message, good),
        *((key.public_key, message, f) for f in flipped),
    ]
    assert signing.verify(key.public_key, message, good)
    for public_key, m, signature in refused:
        assert not signing.verify(public_key, m, signature), (public_key, m, signature)
