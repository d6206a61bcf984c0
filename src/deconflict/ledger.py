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

import collections
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

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


RING_TYPES = frozenset({"mechanism.declared", "member.added", "key.registered", "key.revoked"})
"""Entry types whose payload tells the key ring who may sign (kept whole for the sequential pass)."""


class _Facts(NamedTuple):
    """What one entry says about itself, worked out without any other entry (so in any process)."""

    seq: Any
    actor: str
    key_id: str | None
    signature: str | None
    prev_hash: Any
    digest: str
    payload_changed: bool
    problem: str | None
    """An unreadable field, or a hash that does not match the entry's contents."""
    signature_ok: bool | None
    """Checked against the key given in advance for its key id; None when none was given."""
    doc: dict[str, Any] | None
    """The whole entry, for entries the key ring learns from."""
    unreadable: bool = False
    """The line could not be read at all (``problem`` says which)."""


def _facts(mechanism: str, doc: dict[str, Any], known_keys: dict[str, str]) -> _Facts:
    seq = doc.get("seq")
    digest, problem = "", None
    payload_changed = "payload" in doc and sha256_hex(canonical(doc["payload"])) != doc.get("payload_hash")
    if not payload_changed:
        try:
            digest = entry_hash(
                mechanism=mechanism,
                seq=seq,  # type: ignore[arg-type]
                at=parse_utc(doc.get("at"), field="at"),
                actor=str(doc.get("actor")),
                type=str(doc.get("type")),
                payload_hash=str(doc.get("payload_hash")),
                prev_hash=str(doc.get("prev_hash")),
            )
        except Exception as e:  # noqa: BLE001 - any unreadable field makes the entry bad
            problem = f"entry {seq}: unreadable ({e})"
        else:
            if digest != doc.get("hash"):
                problem = f"entry {seq}: hash does not match its contents (time, actor, type or hashes changed)"
    key_id, signature = doc.get("key_id"), doc.get("signature")
    signature_ok = None
    if problem is None and not payload_changed and key_id in known_keys:
        signature_ok = signing.verify(known_keys[key_id], signing.entry_message(digest), signature)
    return _Facts(
        seq,
        str(doc.get("actor")),
        key_id,
        signature,
        doc.get("prev_hash"),
        digest,
        payload_changed,
        problem,
        signature_ok,
        doc if doc.get("type") in RING_TYPES or seq == 1 else None,
    )


def _line_facts(mechanism: str, lines: list[tuple[int, bytes]], known_keys: dict[str, str]) -> list[_Facts]:
    """Facts of numbered JSON lines (line 1 is a bundle's header); stops at the first unreadable line."""
    out = []
    for number, line in lines:
        try:
            doc = json.loads(line)
        except ValueError:  # not JSON, or not UTF-8
            problem = f"entry {number - 1} (line {number}): unreadable, the file was changed"
            out.append(_Facts(number - 1, "", None, None, None, "", False, problem, None, None, unreadable=True))
            break
        out.append(_facts(mechanism, doc, known_keys))
    return out


SIGNATURE_BATCH = 4096
"""Signatures checked together (in a worker process when there are several)."""
LINE_BATCH = 2000
"""Bundle lines worked out together in a worker process."""


def _first_bad_signature(batch: list[tuple[int, str, str, str]]) -> int | None:
    """The first sequence number in ``batch`` whose signature does not verify, or None."""
    for seq, public_key, digest, signature in batch:
        if not signing.verify(public_key, signing.entry_message(digest), signature):
            return seq
    return None


class _Signatures:
    """Signature checks queued in batches, run inline or in worker processes; remembers the first failure."""

    def __init__(self, pool: ProcessPoolExecutor | None) -> None:
        self.pool = pool
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
            self.note(_first_bad_signature(self.batch))
        else:
            self.pending.append(self.pool.submit(_first_bad_signature, self.batch))
            if len(self.pending) > 8:  # bound memory: wait for the oldest
                self.note(self.pending.pop(0).result())
        self.batch = []

    def note(self, bad: int | None) -> None:
        if bad is not None and (self.first_bad is None or bad < self.first_bad):
            self.first_bad = bad

    def finish(self) -> int | None:
        self._flush()
        for future in self.pending:
            self.note(future.result())
        return self.first_bad


class _Chain:
    """The sequential part of verification: order, links, who signed; fed one entry's facts at a time."""

    def __init__(
        self,
        mechanism: str,
        ring: KeyRing,
        hashes: dict[int, str] | None,
        known_keys: dict[str, str],
        pool: ProcessPoolExecutor | None,
    ) -> None:
        self.mechanism, self.ring, self.hashes, self.known_keys = mechanism, ring, hashes, known_keys
        self.sigs = _Signatures(pool)
        self.prev = GENESIS_HASH
        self.count = 0
        self.failure: tuple[int | None, str] | None = None

    def feed(self, f: _Facts) -> bool:
        """Take one entry; False (and ``failure`` set) at the first one that does not verify."""
        expected = self.count + 1
        problem = None
        if f.unreadable:
            problem = f.problem
        elif f.seq != expected:
            problem = f"entry {f.seq}: expected sequence number {expected} (an entry is missing or out of order)"
        elif f.payload_changed:
            problem = f"entry {f.seq}: payload does not match its hash (the payload was changed)"
        elif f.prev_hash != self.prev:
            problem = f"entry {f.seq}: does not chain to entry {f.seq - 1} (prev_hash differs)"
        elif f.problem is not None:
            problem = f.problem
        else:
            doc = f.doc or {"seq": f.seq, "actor": f.actor, "key_id": f.key_id, "signature": f.signature}
            public_key, problem = self.ring.signer(doc)
            if public_key is not None:
                if f.signature_ok is not None and self.known_keys.get(str(f.key_id)) == public_key:
                    if not f.signature_ok:
                        self.sigs.note(f.seq)
                else:
                    self.sigs.add(f.seq, public_key, f.digest, str(f.signature))
        if problem is not None:
            self.failure = (f.seq, problem)
            return False
        if f.doc is not None:
            self.ring.learn(f.doc)
        if self.hashes is not None and f.seq in self.hashes:
            self.hashes[f.seq] = f.digest
        self.prev = f.digest
        self.count += 1
        return True

    def report(self) -> ChainReport:
        bad_signature = self.sigs.finish()
        failure, count = self.failure, self.count
        if bad_signature is not None and (failure is None or bad_signature <= (failure[0] or 0)):
            failure = (
                bad_signature,
                f"entry {bad_signature}: signature does not verify (the entry, its key or its signature was changed)",
            )
            count = bad_signature - 1
        if failure is not None:
            return ChainReport(
                self.mechanism, count, False, count, self.prev, failure[0], failure[1], self.ring.summary()
            )
        return ChainReport(self.mechanism, count, True, count, self.prev, keys=self.ring.summary())


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
    with _pool(workers) as pool:
        chain = _Chain(mechanism, ring if ring is not None else KeyRing(), hashes, {}, pool)
        for doc in docs:
            if not chain.feed(_facts(mechanism, doc, {})):
                break
        return chain.report()


def verify_lines(
    mechanism: str,
    lines: Iterable[tuple[int, bytes]],
    *,
    known_keys: dict[str, str],
    workers: int = 1,
    ring: KeyRing | None = None,
    hashes: dict[int, str] | None = None,
) -> ChainReport:
    """Like :func:`verify_docs` for numbered JSON lines (a bundle's entries), all per-entry work (parsing,
    hashing, and signatures whose key is in ``known_keys``) done in ``workers`` processes.

    ``known_keys`` (key id → public key, e.g. a bundle header's list) only saves time: a signature is
    accepted only from the key the record itself registered for that id, re-checked here if it differs.
    """
    with _pool(workers) as pool:
        chain = _Chain(mechanism, ring if ring is not None else KeyRing(), hashes, known_keys, pool)
        batches = _batched(iter(lines), LINE_BATCH)
        if pool is None:
            results: Iterator[list[_Facts]] = (_line_facts(mechanism, b, known_keys) for b in batches)
        else:
            results = _ahead(pool, workers, batches, mechanism, known_keys)
        for batch in results:
            if not all(chain.feed(f) for f in batch):
                break
        return chain.report()


def _batched(lines: Iterator[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    while batch := list(itertools.islice(lines, size)):
        yield batch


def _ahead(
    pool: ProcessPoolExecutor,
    workers: int,
    batches: Iterator[list[tuple[int, bytes]]],
    mechanism: str,
    known_keys: dict[str, str],
) -> Iterator[list[_Facts]]:
    """Results of batches in order, with a few batches worked on ahead of the one being read."""
    pending: collections.deque[Any] = collections.deque()
    for batch in batches:
        pending.append(pool.submit(_line_facts, mechanism, batch, known_keys))
        if len(pending) >= 4 * workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(workers)
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


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
