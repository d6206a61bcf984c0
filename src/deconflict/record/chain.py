"""The chain: how a record entry is hashed and linked to the one before it (pure: no database).

Each entry's hash is SHA-256 over the canonical JSON of (mechanism, seq, at, actor,
type, payload_hash, prev_hash): the chain covers a hash of each payload, not the
payload itself, so a copy may carry the hash in place of a payload it may not see
and still verify.

Every entry is signed (``key_id``, ``signature``) over its hash by the key of whoever acted:
a member's entries by its party's key, the service's own entries (``system``, ``operator``)
by the service's key; see :mod:`deconflict.record.signing`. The record itself says which keys
exist: the first entry (``mechanism.declared``) carries the service's public key, and
``key.registered`` / ``key.revoked`` entries add and retire parties' keys. A verifier with
only the entries can therefore check every signature, and names the first entry that fails
(:mod:`deconflict.record.verify`). Storing entries is :mod:`deconflict.store.ledger`'s job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from deconflict.clock import iso
from deconflict.record.strict_json import all_finite, floats_written_alike

__all__ = [
    "EntryType",
    "GENESIS_HASH",
    "SERVICE",
    "SERVICE_ACTORS",
    "ChainReport",
    "Head",
    "Signer",
    "canonical",
    "checkpoint_doc",
    "draft",
    "entry_hash",
    "sha256_hex",
]

SERVICE = "service"
"""Owner of the key that signs the service's own entries and the checkpoints."""
SERVICE_ACTORS = frozenset({"system", "operator"})
"""Actors whose entries the service signs with its own key."""

Signer = Callable[[dict[str, Any]], tuple[str, str]]
"""Given an entry about to be appended (its ``hash`` included), the (key id, signature) to store."""


class EntryType(StrEnum):
    """What a record entry says. The values are the strings stored and hashed in every chain: never change one."""

    MECHANISM_DECLARED = "mechanism.declared"
    KEY_REGISTERED = "key.registered"
    KEY_REVOKED = "key.revoked"
    MEMBER_ADDED = "member.added"
    ACTIVITY_NOTIFIED = "activity.notified"
    ACTIVITY_AMENDED = "activity.amended"
    ACTIVITY_CANCELLED = "activity.cancelled"
    ZONE_DECLARED = "zone.declared"
    ZONE_WITHDRAWN = "zone.withdrawn"
    CONFLICT_DETECTED = "conflict.detected"
    CONFLICT_ACKNOWLEDGED = "conflict.acknowledged"
    CONFLICT_RESOLVED = "conflict.resolved"
    MESSAGE_SENT = "message.sent"
    MESSAGE_ACKNOWLEDGED = "message.acknowledged"
    MESSAGE_ESCALATED = "message.escalated"


GENESIS_HASH = "0" * 64
"""prev_hash of the first entry of every chain."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""The canonical encoder, made once: ``json.dumps`` with these options builds the same encoder on every call
(a cost per entry on the record's hot paths) and returns the same text."""
_json_string = json.encoder.encode_basestring
"""How the canonical encoder writes a string (``ensure_ascii=False``): quoted, with only ``"``, ``\\`` and
control characters escaped."""


_ORJSON_CANONICAL = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""orjson's options for :func:`canonical`: sorted keys; a datetime, a dataclass and a subclass of str, int,
dict or list are not written by orjson (it raises, and the standard encoder takes them)."""


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8 (``json.dumps`` with ``sort_keys``, the tightest
    separators, ``ensure_ascii=False`` and ``allow_nan=False``, encoded).

    Written by orjson (2-3 times faster on the record's payloads) when its bytes are provably the standard
    encoder's: it escapes strings the same way, sorts keys in code point order and writes whole numbers,
    booleans and null alike, but writes some floats differently (``1e-7`` for ``1e-07``, ``0.00001`` for
    ``1e-05``), so any output with a float under 0.0001 or in exponent form is written again by the standard
    encoder (:func:`~deconflict.record.strict_json.floats_written_alike`, as the bundle reader checks it), and
    it writes NaN and Infinity as null (which the standard encoder refuses), so an output with a null is too
    when the input holds such a float (:func:`~deconflict.record.strict_json.all_finite`). orjson refuses
    lone surrogates, keys that are not text and integers past 64 bits: the standard encoder then writes it or
    raises its own error. Only a plain ``Enum`` or a
    ``UUID``, which the standard encoder refuses, may be written by orjson as its value (no entry holds
    either). tests/record/test_speed_same_bytes.py holds the two side by side.

    >>> canonical({"b": 1, "a": [1.5, "ü"]})
    b'{"a":[1.5,"\\xc3\\xbc"],"b":1}'
    """
    text = _by_orjson(obj)
    return text if text is not None else _CANONICAL.encode(obj).encode()


def canonical_read(obj: Any) -> tuple[bytes, Any]:
    """:func:`canonical` of ``obj``, and what ``json.loads`` reads from it (the payload as a verifier reads
    it), read by orjson when orjson wrote it: every number in it then fits in 64 bits (orjson would read a
    longer integer as a float) and is written as the standard encoder writes it, which both readers read to
    the same value; strings, null and booleans alike.

    >>> canonical_read({"b": (1, 2**70), "a": 0.1})
    (b'{"a":0.1,"b":[1,1180591620717411303424]}', {'a': 0.1, 'b': [1, 1180591620717411303424]})
    """
    text = _by_orjson(obj)
    if text is not None:
        return text, orjson.loads(text)
    text = _CANONICAL.encode(obj).encode()
    return text, json.loads(text)


def _by_orjson(obj: Any) -> bytes | None:
    """:func:`canonical`'s bytes written by orjson, or None where orjson would write them otherwise."""
    try:
        text = orjson.dumps(obj, option=_ORJSON_CANONICAL)
    except orjson.JSONEncodeError:
        return None
    # orjson writes NaN and Infinity as null (which the standard encoder refuses)
    if floats_written_alike(text) and (b"null" not in text or all_finite(obj)):
        return text
    return None


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits.

    >>> sha256_hex(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def entry_hash(
    *, mechanism: str, seq: int, at: datetime, actor: str, type: str, payload_hash: str, prev_hash: str
) -> str:
    """The hash that chains an entry to the one before it: the SHA-256 of the canonical JSON of the head.

    The head's canonical text is written out directly (its keys in sorted order, each string as the
    canonical encoder writes it): the same bytes as :func:`canonical` of the head, at a third of the cost.
    Anything but a whole ``seq`` and text fields takes the general encoder.

    >>> from datetime import UTC
    >>> t = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> entry_hash(mechanism="m", seq=1, at=t, actor="a", type="t", payload_hash="p", prev_hash="0")[:16]
    '0eb9e51f2c646811'
    """
    if seq.__class__ is int and _texts(mechanism, actor, type, payload_hash, prev_hash):
        text = (
            f'{{"actor":{_json_string(actor)},"at":{_json_string(iso(at))},"mechanism":{_json_string(mechanism)},'
            f'"payload_hash":{_json_string(payload_hash)},"prev_hash":{_json_string(prev_hash)},"seq":{seq},'
            f'"type":{_json_string(type)}}}'
        )
        return hashlib.sha256(text.encode()).hexdigest()
    return _entry_hash_general(
        mechanism=mechanism, seq=seq, at=at, actor=actor, type=type, payload_hash=payload_hash, prev_hash=prev_hash
    )


def _texts(a: object, b: object, c: object, d: object, e: object) -> bool:
    """Whether all five are text (an untyped caller may pass anything: it then takes the encoder)."""
    return (
        isinstance(a, str) and isinstance(b, str) and isinstance(c, str) and isinstance(d, str) and isinstance(e, str)
    )


def _entry_hash_general(
    *, mechanism: str, seq: int, at: datetime, actor: str, type: Any, payload_hash: str, prev_hash: str
) -> str:
    """:func:`entry_hash` through the canonical encoder (the reference the fast path is tested against)."""
    head = {
        "mechanism": mechanism,
        "seq": seq,
        "at": iso(at),
        "actor": actor,
        "type": type,
        "payload_hash": payload_hash,
        "prev_hash": prev_hash,
    }
    return sha256_hex(canonical(head))


@dataclass(frozen=True)
class Head:
    """The last entry of a chain: its sequence number and hash (seq 0 and GENESIS_HASH when empty)."""

    seq: int
    hash: str


def draft(
    *, mechanism: str, actor: str, type: str, payload: Any, at: datetime, after: Head, body: bytes | None = None
) -> dict[str, Any]:
    """The entry that would follow ``after``, hash included, not yet signed or stored (``body``: the payload's
    canonical JSON, when the caller has made it already)."""
    if body is None:
        body = canonical(payload)
    payload_hash = sha256_hex(body)
    seq = after.seq + 1
    digest = entry_hash(
        mechanism=mechanism, seq=seq, at=at, actor=actor, type=type, payload_hash=payload_hash, prev_hash=after.hash
    )
    return {
        "mechanism_id": mechanism,
        "seq": seq,
        "at": at,
        "actor": actor,
        "type": type,
        "payload": body.decode(),
        "payload_hash": payload_hash,
        "prev_hash": after.hash,
        "hash": digest,
        "key_id": None,
        "signature": None,
    }


@dataclass(frozen=True)
class ChainReport:
    """The outcome of recomputing a chain and checking its signatures."""

    mechanism: str
    entries: int
    ok: bool
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    keys: tuple[dict[str, Any], ...] = ()
    """The keys the record registered (key id, owner, custody, public key, entries signed)."""
    checkpoints: int = 0
    """Signed checkpoints found consistent with the chain."""
    withheld: tuple[int, ...] = ()
    """Entries whose payload this copy withholds (their hashes kept), among those that verified."""
    cosigned: tuple[dict[str, Any], ...] = ()
    """Per party that holds a key in the record: ``party``, ``size`` (the largest checkpoint note it cosigned,
    None: never) and ``at`` (that cosignature's time, ISO UTC), in party order."""
    notes: int = 0
    """Checkpoint notes found signed by the service over the Merkle root of the entries."""
    evidence: str | None = None
    """When a signed note disagrees with the entries: the note's text, printed so anyone can check it."""


def checkpoint_doc(*, mechanism: str, seq: int, hash: str, at: datetime, key_id: str, signature: str) -> dict[str, Any]:
    """A signed checkpoint (the chain's head ``seq``/``hash`` at ``at``) as a JSON-able document."""
    return {"mechanism": mechanism, "seq": seq, "hash": hash, "at": iso(at), "key_id": key_id, "signature": signature}
