"""The record: entries appended to a per-mechanism hash chain, and its verification.

Each entry's hash is SHA-256 over the canonical JSON of (mechanism, seq, at, actor,
type, payload_hash, prev_hash): the chain covers a hash of each payload, not the
payload itself, so a copy may carry the hash in place of a payload it may not see
and still verify. ``key_id`` and ``signature`` sign the entry hash (a later issue).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from deconflict.clock import iso, parse_utc
from deconflict.store.schema import LedgerEntry

GENESIS_HASH = "0" * 64
"""prev_hash of the first entry of every chain."""


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8.

    >>> canonical({"b": 1, "a": [1.5, "ü"]})
    b'{"a":[1.5,"\\xc3\\xbc"],"b":1}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(
    *, mechanism: str, seq: int, at: datetime, actor: str, type: str, payload_hash: str, prev_hash: str
) -> str:
    """The hash that chains an entry to the one before it."""
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


def read_head(session: Session, mechanism: str) -> Head:
    """The chain's head as stored (one indexed lookup)."""
    t = LedgerEntry.__table__
    stmt = select(t.c.seq, t.c.hash).where(t.c.mechanism_id == mechanism).order_by(t.c.seq.desc()).limit(1)
    row = session.execute(stmt).first()
    return Head(0, GENESIS_HASH) if row is None else Head(int(row[0]), str(row[1]))


def append(
    session: Session, *, mechanism: str, actor: str, type: str, payload: Any, at: datetime, after: Head | None = None
) -> Head:
    """Append one entry to a mechanism's chain inside the caller's transaction; returns the new head.

    ``after`` is the chain's current head when the caller keeps it (the single writer does);
    otherwise it is read from the database.
    """
    last = after if after is not None else read_head(session, mechanism)
    seq = last.seq + 1
    body = canonical(payload)
    payload_hash = sha256_hex(body)
    digest = entry_hash(
        mechanism=mechanism, seq=seq, at=at, actor=actor, type=type, payload_hash=payload_hash, prev_hash=last.hash
    )
    session.execute(
        insert(LedgerEntry.__table__),
        [
            {
                "mechanism_id": mechanism,
                "seq": seq,
                "at": at,
                "actor": actor,
                "type": type,
                "payload": body.decode(),
                "payload_hash": payload_hash,
                "prev_hash": last.hash,
                "hash": digest,
                "key_id": None,
                "signature": None,
            }
        ],
    )
    return Head(seq, digest)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of recomputing a chain."""

    mechanism: str
    entries: int
    ok: bool
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def entry_doc(row: LedgerEntry) -> dict[str, Any]:
    """An entry as a JSON-able document (for export and the API)."""
    return {
        "mechanism": row.mechanism_id,
        "seq": row.seq,
        "at": iso(row.at),
        "actor": row.actor,
        "type": row.type,
        "payload": json.loads(row.payload),
        "payload_hash": row.payload_hash,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "key_id": row.key_id,
        "signature": row.signature,
    }


def _check_entry(mechanism: str, doc: dict[str, Any], expected_seq: int, prev: str) -> tuple[str, str | None]:
    """(the entry's recomputed hash, the problem or None) for one entry document."""
    seq = doc.get("seq")
    if seq != expected_seq:
        return "", f"entry {seq}: expected sequence number {expected_seq} (an entry is missing or out of order)"
    if "payload" in doc and sha256_hex(canonical(doc["payload"])) != doc.get("payload_hash"):
        return "", f"entry {seq}: payload does not match its hash (the payload was changed)"
    if doc.get("prev_hash") != prev:
        return "", f"entry {seq}: does not chain to entry {seq - 1} (prev_hash differs)"
    try:
        computed = entry_hash(
            mechanism=mechanism,
            seq=seq,
            at=parse_utc(doc.get("at"), field="at"),
            actor=str(doc.get("actor")),
            type=str(doc.get("type")),
            payload_hash=str(doc.get("payload_hash")),
            prev_hash=prev,
        )
    except Exception as e:  # noqa: BLE001 - any unreadable field makes the entry bad
        return "", f"entry {seq}: unreadable ({e})"
    if computed != doc.get("hash"):
        return "", f"entry {seq}: hash does not match its contents (time, actor, type or hashes changed)"
    return computed, None


def verify_docs(mechanism: str, docs: Iterable[dict[str, Any]]) -> ChainReport:
    """Recompute a chain from entry documents; names the first entry that does not verify.

    A document may omit ``payload`` (withheld from this copy): its ``payload_hash`` is then taken as given.
    """
    prev = GENESIS_HASH
    count = 0
    for doc in docs:
        computed, problem = _check_entry(mechanism, doc, count + 1, prev)
        if problem is not None:
            return ChainReport(mechanism, count, False, count, prev, doc.get("seq"), problem)
        prev = computed
        count += 1
    return ChainReport(mechanism, count, True, count, prev)


def verify_store(session: Session, mechanism: str) -> ChainReport:
    """Recompute a mechanism's chain as stored, in order of sequence number."""
    rows = session.scalars(
        select(LedgerEntry).where(LedgerEntry.mechanism_id == mechanism).order_by(LedgerEntry.seq)
    ).yield_per(2000)

    def docs() -> Iterable[dict[str, Any]]:
        for row in rows:
            yield {
                "seq": row.seq,
                "at": row.at,
                "actor": row.actor,
                "type": row.type,
                "payload": _loads(row.payload),
                "payload_hash": row.payload_hash,
                "prev_hash": row.prev_hash,
                "hash": row.hash,
            }

    return verify_docs(mechanism, docs())


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"__unreadable__": text}
