"""The record: entries appended to a per-mechanism hash chain, and its verification.

Each entry's hash is SHA-256 over the canonical JSON of (mechanism, seq, at, actor,
type, payload_hash, prev_hash): the chain covers a hash of each payload, not the
payload itself, so a copy may carry the hash in place of a payload it may not see
and still verify.

Every entry is signed (``key_id``, ``signature``) over its hash by the key of whoever acted:
a member's entries by its party's key, the service's own entries (``system``, ``operator``)
by the service's key; see :mod:`deconflict.signing`. The record itself says which keys
exist: the first entry (``mechanism.declared``) carries the service's public key, and
``key.registered`` / ``key.revoked`` entries add and retire parties' keys. A verifier with
only the entries can therefore check every signature, and names the first entry that fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from deconflict import signing
from deconflict.clock import iso, parse_utc
from deconflict.store.schema import LedgerEntry

SERVICE = "service"
"""Owner of the key that signs the service's own entries and the checkpoints."""
SERVICE_ACTORS = frozenset({"system", "operator"})
"""Actors whose entries the service signs with its own key."""

Signer = Callable[[dict[str, Any]], tuple[str, str]]
"""Given an entry about to be appended (its ``hash`` included), the (key id, signature) to store."""

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


def read_head(session: Session | Connection, mechanism: str) -> Head:
    """The chain's head as stored (one indexed lookup)."""
    t = LedgerEntry.__table__
    stmt = select(t.c.seq, t.c.hash).where(t.c.mechanism_id == mechanism).order_by(t.c.seq.desc()).limit(1)
    row = session.execute(stmt).first()
    return Head(0, GENESIS_HASH) if row is None else Head(int(row[0]), str(row[1]))


def draft(*, mechanism: str, actor: str, type: str, payload: Any, at: datetime, after: Head) -> dict[str, Any]:
    """The entry that would follow ``after``, hash included, not yet signed or stored."""
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


def append(
    session: Session | Connection,
    *,
    mechanism: str,
    actor: str,
    type: str,
    payload: Any,
    at: datetime,
    sign: Signer,
    after: Head | None = None,
) -> Head:
    """Append one signed entry to a mechanism's chain inside the caller's transaction; returns the new head.

    ``after`` is the chain's current head when the caller keeps it (the single writer does);
    otherwise it is read from the database. ``sign`` signs (or checks a signature made
    elsewhere for) the drafted entry, and may refuse by raising.
    """
    last = after if after is not None else read_head(session, mechanism)
    row = draft(mechanism=mechanism, actor=actor, type=type, payload=payload, at=at, after=last)
    row["key_id"], row["signature"] = sign(row)
    session.execute(insert(LedgerEntry.__table__), [row])
    return Head(row["seq"], row["hash"])


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


@dataclass
class KeyRing:
    """Who may sign what, learned from the record entry by entry: members' parties and the keys in force."""

    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    """key id → {owner, public_key, custody, registered_seq, revoked_seq, signed}."""
    parties: dict[str, str] = field(default_factory=dict)
    """member id → party."""

    def owner_of(self, actor: str) -> str | None:
        """Whose key must sign an entry by ``actor``: 'service', a party code, or None (unknown actor)."""
        return SERVICE if actor in SERVICE_ACTORS else self.parties.get(actor)

    def signer(self, doc: dict[str, Any]) -> tuple[str | None, str | None]:
        """(public key to check the entry's signature with, or None; the problem, or None)."""
        seq, key_id, actor = doc.get("seq"), doc.get("key_id"), str(doc.get("actor"))
        if seq == 1:
            self.learn(doc)  # the first entry carries the service's key, which signs it
        if not key_id or not doc.get("signature"):
            return None, f"entry {seq}: is not signed"
        key = self.keys.get(str(key_id))
        if key is None:
            return None, f"entry {seq}: signed with key {key_id}, which this record never registered"
        if key["revoked_seq"] is not None and key["revoked_seq"] < seq:
            return None, f"entry {seq}: signed with key {key_id}, revoked at entry {key['revoked_seq']}"
        owner = self.owner_of(actor)
        if owner is None:
            return None, f"entry {seq}: its actor {actor!r} is not a member of the mechanism at that point"
        if key["owner"] != owner:
            return None, (
                f"entry {seq}: signed with the key of {key['owner']}, but its actor {actor} acts for {owner} "
                "(a signature from the wrong member)"
            )
        key["signed"] += 1
        return key["public_key"], None

    def learn(self, doc: dict[str, Any]) -> None:
        """Take in what an entry says about members and keys (after it verified)."""
        kind, p, seq = doc.get("type"), doc.get("payload"), int(doc.get("seq") or 0)
        if not isinstance(p, dict):
            return
        if kind == "mechanism.declared":
            for m in p.get("members", []):
                self.parties[str(m.get("id"))] = str(m.get("party"))
            sk = p.get("service_key")
            if isinstance(sk, dict) and seq == 1 and SERVICE not in {k["owner"] for k in self.keys.values()}:
                self._add(str(sk.get("key_id")), SERVICE, str(sk.get("public_key")), "service", seq)
        elif kind == "member.added":
            self.parties[str(p.get("id"))] = str(p.get("party"))
        elif kind == "key.registered":
            self._add(str(p.get("key_id")), str(p.get("owner")), str(p.get("public_key")), str(p.get("custody")), seq)
        elif kind == "key.revoked":
            key = self.keys.get(str(p.get("key_id")))
            if key is not None and key["revoked_seq"] is None:
                key["revoked_seq"] = seq

    def _add(self, key_id: str, owner: str, public_key: str, custody: str, seq: int) -> None:
        try:
            computed = signing.key_id(public_key)
        except Exception:  # noqa: BLE001 - an unreadable key is simply not registered
            return
        if computed == key_id and key_id not in self.keys:
            self.keys[key_id] = {
                "key_id": key_id,
                "owner": owner,
                "public_key": public_key,
                "custody": custody,
                "registered_seq": seq,
                "revoked_seq": None,
                "signed": 0,
            }

    def summary(self) -> tuple[dict[str, Any], ...]:
        return tuple(dict(k) for k in self.keys.values())


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


SIGNATURE_BATCH = 4096
"""Signatures checked together (in a worker process when there are several)."""


def _first_bad_signature(batch: list[tuple[int, str, str, str]]) -> int | None:
    """The first sequence number in ``batch`` whose signature does not verify, or None."""
    for seq, public_key, digest, signature in batch:
        if not signing.verify(public_key, signing.entry_message(digest), signature):
            return seq
    return None


class _Signatures:
    """Signature checks queued in batches, run inline or in worker processes; remembers the first failure."""

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(workers) if workers > 1 else None
        self.batch: list[tuple[int, str, str, str]] = []
        self.pending: list[Any] = []
        self.first_bad: int | None = None

    def add(self, seq: int, public_key: str, digest: str, signature: str) -> None:
        self.batch.append((seq, public_key, digest, signature))
        if len(self.batch) >= SIGNATURE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.batch:
            return
        if self.pool is None:
            self._note(_first_bad_signature(self.batch))
        else:
            self.pending.append(self.pool.submit(_first_bad_signature, self.batch))
            if len(self.pending) > 8:  # bound memory: wait for the oldest
                self._note(self.pending.pop(0).result())
        self.batch = []

    def _note(self, bad: int | None) -> None:
        if bad is not None and (self.first_bad is None or bad < self.first_bad):
            self.first_bad = bad

    def finish(self) -> int | None:
        self._flush()
        for future in self.pending:
            self._note(future.result())
        if self.pool is not None:
            self.pool.shutdown()
        return self.first_bad


def verify_docs(
    mechanism: str,
    docs: Iterable[dict[str, Any]],
    *,
    workers: int = 1,
    ring: KeyRing | None = None,
    hashes: dict[int, str] | None = None,
) -> ChainReport:
    """Recompute a chain from entry documents and check every signature; names the first bad entry.

    A document may omit ``payload`` (withheld from this copy): its ``payload_hash`` is then taken
    as given. ``workers`` > 1 checks signatures in that many processes. ``ring`` receives what the
    record says about keys and members, and ``hashes`` the chain's hash at each sequence number it
    holds as a key (both for checking checkpoints afterwards).
    """
    ring = ring if ring is not None else KeyRing()
    sigs = _Signatures(workers)
    prev = GENESIS_HASH
    count = 0
    failure: tuple[int | None, str] | None = None
    for doc in docs:
        computed, problem = _check_entry(mechanism, doc, count + 1, prev)
        if problem is None:
            public_key, problem = ring.signer(doc)
            if public_key is not None:
                sigs.add(int(doc["seq"]), public_key, computed, str(doc["signature"]))
        if problem is not None:
            failure = (doc.get("seq"), problem)
            break
        ring.learn(doc)
        if hashes is not None and doc["seq"] in hashes:
            hashes[doc["seq"]] = computed
        prev = computed
        count += 1
    bad_signature = sigs.finish()
    if bad_signature is not None and (failure is None or bad_signature <= (failure[0] or 0)):
        failure = (
            bad_signature,
            f"entry {bad_signature}: signature does not verify (the entry, its key or its signature was changed)",
        )
        count = bad_signature - 1
    if failure is not None:
        return ChainReport(mechanism, count, False, count, prev, failure[0], failure[1], ring.summary())
    return ChainReport(mechanism, count, True, count, prev, keys=ring.summary())


def store_docs(session: Session, mechanism: str) -> Iterator[dict[str, Any]]:
    """A mechanism's entries as stored, in order of sequence number, as entry documents."""
    rows = session.scalars(
        select(LedgerEntry).where(LedgerEntry.mechanism_id == mechanism).order_by(LedgerEntry.seq)
    ).yield_per(2000)
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
            "key_id": row.key_id,
            "signature": row.signature,
        }


def verify_store(session: Session, mechanism: str, *, workers: int = 1) -> ChainReport:
    """Recompute a mechanism's chain as stored and check its signatures."""
    return verify_docs(mechanism, store_docs(session, mechanism), workers=workers)


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoint_doc(*, mechanism: str, seq: int, hash: str, at: datetime, key_id: str, signature: str) -> dict[str, Any]:
    return {"mechanism": mechanism, "seq": seq, "hash": hash, "at": iso(at), "key_id": key_id, "signature": signature}


def check_checkpoints(
    mechanism: str, checkpoints: Iterable[dict[str, Any]], hashes: dict[int, str], report: ChainReport, ring: KeyRing
) -> ChainReport:
    """Hold a verified chain against signed checkpoints: each must be the service's signature of a head
    the chain really had. ``hashes`` maps the checkpoints' sequence numbers to the chain's hashes there.
    A checkpoint beyond the chain's end means its tail was cut; a different hash means it was rewritten.
    """
    if not report.ok:
        return report
    good = 0
    for cp in sorted(checkpoints, key=lambda c: int(c.get("seq") or 0)):
        seq, at = int(cp.get("seq") or 0), str(cp.get("at"))
        key = ring.keys.get(str(cp.get("key_id")))
        message = signing.checkpoint_message(mechanism=mechanism, seq=seq, hash=str(cp.get("hash")), at=at)
        problem = None
        if (
            key is None
            or key["owner"] != SERVICE
            or not signing.verify(key["public_key"], message, cp.get("signature"))
        ):
            problem = (
                f"the checkpoint of entry {seq} made at {at} is not signed by the service's key; it cannot be used"
            )
        elif seq > report.head_seq:
            problem = (
                f"the record ends at entry {report.head_seq}, but the service signed a checkpoint of entry {seq} "
                f"at {at}: entries after {report.head_seq} were cut"
            )
        elif hashes.get(seq) != cp.get("hash"):
            problem = f"entry {seq} differs from the checkpoint the service signed at {at}: the record was rewritten"
        if problem is not None:
            first = min(seq, report.head_seq + 1)
            return ChainReport(
                mechanism, report.entries, False, report.head_seq, report.head_hash, first, problem, report.keys, good
            )
        good += 1
    return ChainReport(
        mechanism, report.entries, True, report.head_seq, report.head_hash, keys=report.keys, checkpoints=good
    )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"__unreadable__": text}
