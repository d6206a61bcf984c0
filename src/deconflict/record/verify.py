"""Verification of a chain: recompute every hash and link, check every signature, name the first bad entry.

The record says who may sign: :class:`KeyRing` learns members' parties and the keys in force
entry by entry (the service's key from the first entry, parties' keys from ``key.registered``,
retired by ``key.revoked``). :func:`verify_docs` checks entry documents (from a store or a
bundle), :func:`verify_lines` a bundle's numbered JSON lines with all per-entry work (parsing,
hashing, signatures) spread over worker processes, and :func:`check_checkpoints` holds a verified
chain against the service's signed checkpoints. Pure: no database.
"""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from deconflict.clock import parse_utc
from deconflict.record import signing
from deconflict.record.chain import (
    GENESIS_HASH,
    SERVICE,
    SERVICE_ACTORS,
    ChainReport,
    EntryType,
    canonical,
    entry_hash,
    sha256_hex,
)

__all__ = ["RING_TYPES", "KeyRing", "check_checkpoints", "verify_docs", "verify_lines"]


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
        if kind == EntryType.MECHANISM_DECLARED:
            for m in p.get("members", []):
                self.parties[str(m.get("id"))] = str(m.get("party"))
            sk = p.get("service_key")
            if isinstance(sk, dict) and seq == 1 and SERVICE not in {k["owner"] for k in self.keys.values()}:
                self._add(str(sk.get("key_id")), SERVICE, str(sk.get("public_key")), "service", seq)
        elif kind == EntryType.MEMBER_ADDED:
            self.parties[str(p.get("id"))] = str(p.get("party"))
        elif kind == EntryType.KEY_REGISTERED:
            self._add(str(p.get("key_id")), str(p.get("owner")), str(p.get("public_key")), str(p.get("custody")), seq)
        elif kind == EntryType.KEY_REVOKED:
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


RING_TYPES = frozenset(
    {EntryType.MECHANISM_DECLARED, EntryType.MEMBER_ADDED, EntryType.KEY_REGISTERED, EntryType.KEY_REVOKED}
)
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
        self.pending: list[Future[int | None]] = []
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
    pending: collections.deque[Future[list[_Facts]]] = collections.deque()
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
