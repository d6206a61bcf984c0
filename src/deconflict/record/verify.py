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
from datetime import datetime
from typing import Any, NamedTuple

from deconflict.clock import iso, parse_utc
from deconflict.record import authority, signing
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

__all__ = ["RING_TYPES", "KeyRing", "check_checkpoints", "load_json", "verify_docs", "verify_lines", "withheld_ranges"]


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
            members = p.get("members")
            for m in members if isinstance(members, list) else ():
                if isinstance(m, dict):
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
    """What the sequential checks need: the whole entry for entries the key ring learns from, else its
    seq, actor, type and the payload fields the authority rules read (no ``payload``: withheld)."""
    unreadable: bool = False
    """The line could not be read at all (``problem`` says which)."""
    at: datetime | None = None


BRIEF_FIELDS = (
    "id",
    "party",
    "owner",
    "from_party",
    "awaiting",
    "resolution",
    "template",
    "to",
    "settles",
    "key_id",
    "public_key",
    "role",
)
"""The payload fields the authority rules read (only these cross to the sequential pass)."""


def _facts(mechanism: str, doc: dict[str, Any], known_keys: dict[str, str]) -> _Facts:
    seq = doc.get("seq")
    digest, problem, at = "", None, None
    withheld = "payload" not in doc
    try:
        payload_changed = not withheld and sha256_hex(canonical(doc["payload"])) != doc.get("payload_hash")
    except (ValueError, TypeError):  # a number that is not finite: JSON has none, so no hash covers it
        payload_changed = False
        problem = f"entry {seq}: its payload holds a number that is not finite (1e999, NaN or Infinity)"
    if problem is None and not payload_changed:
        try:
            if type(seq) is not int:
                raise ValueError(f"seq {seq!r} is not a whole number")
            if doc.get("mechanism", mechanism) != mechanism:
                raise ValueError(f"it says mechanism {doc.get('mechanism')!r}, not {mechanism!r}")
            at = parse_utc(doc.get("at"), field="at")
            digest = entry_hash(
                mechanism=mechanism,
                seq=seq,
                at=at,
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
    if doc.get("type") in RING_TYPES or seq == 1:
        view = doc
    else:
        view = {"seq": seq, "actor": doc.get("actor"), "type": doc.get("type")}
        if not withheld:
            p = doc["payload"]
            view["payload"] = {k: p[k] for k in BRIEF_FIELDS if k in p} if isinstance(p, dict) else p
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
        view,
        at=at,
    )


class _Refused(ValueError):
    """A line that JSON readers could read differently (a repeated key, NaN): refused by name."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused(f"it names {twice!r} twice in one object (readers could see either value)")
    return obj


def _constant(name: str) -> Any:
    raise _Refused(f"it holds {name}, which is not a JSON number")


def load_json(data: bytes | str) -> Any:
    """Parse JSON as the record needs it: a repeated key in an object, or NaN/Infinity, is refused
    (:class:`ValueError` naming it); numbers too large for a float (1e999) parse as infinity and are
    refused where they are hashed."""
    return json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)


def _line_facts(mechanism: str, lines: list[tuple[int, bytes]], known_keys: dict[str, str]) -> list[_Facts]:
    """Facts of numbered JSON lines (line 1 is a bundle's header); stops at the first unreadable line."""
    out = []
    for number, line in lines:
        problem = None
        try:
            doc = load_json(line)
        except _Refused as e:
            problem = f"entry {number - 1} (line {number}): refused: {e}"
        except ValueError:  # not JSON, or not UTF-8
            problem = f"entry {number - 1} (line {number}): unreadable, the file was changed"
        else:
            if not isinstance(doc, dict):
                problem = f"entry {number - 1} (line {number}): not an entry (a JSON object), the file was changed"
        if problem is not None:
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
    """The sequential part of verification: order, links, time, who signed and whether they had the
    right to say it; fed one entry's facts at a time."""

    def __init__(
        self,
        mechanism: str,
        ring: KeyRing,
        hashes: dict[int, str] | None,
        known_keys: dict[str, str],
        pool: ProcessPoolExecutor | None,
        times: dict[int, datetime] | None = None,
    ) -> None:
        self.mechanism, self.ring, self.hashes, self.known_keys = mechanism, ring, hashes, known_keys
        self.times = times
        self.sigs = _Signatures(pool)
        self.prev = GENESIS_HASH
        self.count = 0
        self.last_at: datetime | None = None
        self.state = authority.AuthorityState(mechanism=mechanism)
        self.withheld: list[int] = []
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
        elif self.last_at is not None and f.at is not None and f.at < self.last_at:
            problem = (
                f"entry {f.seq}: dated {iso(f.at)}, before entry {f.seq - 1} ({iso(self.last_at)}); "
                "entry times never go backwards"
            )
        elif f.doc is not None and "payload" not in f.doc and f.doc.get("type") in authority.NEVER_WITHHELD:
            problem = f"entry {f.seq}: {authority.check(f.doc, self.state)}"
        else:
            signed = {"seq": f.seq, "actor": f.actor, "key_id": f.key_id, "signature": f.signature}
            public_key, problem = self.ring.signer(f.doc if f.seq == 1 and f.doc is not None else signed)
            if public_key is not None:
                if f.signature_ok is not None and self.known_keys.get(str(f.key_id)) == public_key:
                    if not f.signature_ok:
                        self.sigs.note(f.seq)
                else:
                    self.sigs.add(f.seq, public_key, f.digest, str(f.signature))
            if problem is None and f.doc is not None:
                wrong = authority.check(f.doc, self.state)
                if wrong is not None:
                    problem = f"entry {f.seq}: {wrong}"
        if problem is not None:
            self.failure = (f.seq if isinstance(f.seq, int) else expected, problem)
            return False
        if f.doc is not None:
            authority.apply(f.doc, self.state)
            if "payload" not in f.doc:
                self.withheld.append(f.seq)
            elif f.doc.get("type") in RING_TYPES or f.seq == 1:
                self.ring.learn(f.doc)
        if self.hashes is not None and f.seq in self.hashes:
            self.hashes[f.seq] = f.digest
            if self.times is not None and f.at is not None:
                self.times[f.seq] = f.at
        self.prev = f.digest
        self.last_at = f.at
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
        withheld = tuple(s for s in self.withheld if s <= count)
        if failure is not None:
            return ChainReport(
                self.mechanism,
                count,
                False,
                count,
                self.prev,
                failure[0],
                failure[1],
                self.ring.summary(),
                withheld=withheld,
            )
        return ChainReport(self.mechanism, count, True, count, self.prev, keys=self.ring.summary(), withheld=withheld)


def withheld_ranges(seqs: Iterable[int]) -> str:
    """Sequence numbers as short ranges: ``12, 15–17``."""
    out: list[str] = []
    run: list[int] = []
    for s in sorted(seqs):
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
        run = [s]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
    return ", ".join(out)


def verify_docs(
    mechanism: str,
    docs: Iterable[dict[str, Any]],
    *,
    workers: int = 1,
    ring: KeyRing | None = None,
    hashes: dict[int, str] | None = None,
    times: dict[int, datetime] | None = None,
) -> ChainReport:
    """Recompute a chain from entry documents and check every signature; names the first bad entry.

    A document may omit ``payload`` (withheld from this copy): its ``payload_hash`` is then taken
    as given. ``workers`` > 1 checks signatures in that many processes. ``ring`` receives what the
    record says about keys and members, ``hashes`` the chain's hash at each sequence number it
    holds as a key, and ``times`` the entry's time there (all for checking checkpoints afterwards).
    Every entry is also held to the authority rules (:mod:`deconflict.record.authority`) and to time
    (never backwards); withheld entries are listed in the report.
    """
    with _pool(workers) as pool:
        chain = _Chain(mechanism, ring if ring is not None else KeyRing(), hashes, {}, pool, times)
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
    times: dict[int, datetime] | None = None,
) -> ChainReport:
    """Like :func:`verify_docs` for numbered JSON lines (a bundle's entries), all per-entry work (parsing,
    hashing, and signatures whose key is in ``known_keys``) done in ``workers`` processes.

    ``known_keys`` (key id → public key, e.g. a bundle header's list) only saves time: a signature is
    accepted only from the key the record itself registered for that id, re-checked here if it differs.
    """
    with _pool(workers) as pool:
        chain = _Chain(mechanism, ring if ring is not None else KeyRing(), hashes, known_keys, pool, times)
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
    mechanism: str,
    checkpoints: Iterable[dict[str, Any]],
    hashes: dict[int, str],
    report: ChainReport,
    ring: KeyRing,
    times: dict[int, datetime] | None = None,
) -> ChainReport:
    """Hold a verified chain against signed checkpoints: each must be the service's signature of a head
    the chain really had. ``hashes`` maps the checkpoints' sequence numbers to the chain's hashes there,
    and ``times`` to the entries' times. A checkpoint beyond the chain's end means its tail was cut; a
    different hash means it was rewritten; a checkpoint dated before the last entry it covers, or before
    an earlier checkpoint, was not made when it says.
    """
    if not report.ok:
        return report
    good = 0
    last: tuple[int, datetime] | None = None
    for cp in sorted(checkpoints, key=_checkpoint_seq):
        seq, at = _checkpoint_seq(cp), str(cp.get("at"))
        key = ring.keys.get(str(cp.get("key_id")))
        message = signing.checkpoint_message(mechanism=mechanism, seq=seq, hash=str(cp.get("hash")), at=at)
        problem, first = None, min(seq, report.head_seq + 1)
        try:
            when: datetime | None = parse_utc(at, field="at")
        except Exception:  # noqa: BLE001 - an unreadable time is named below
            when = None
        if (
            key is None
            or key["owner"] != SERVICE
            or not signing.verify(key["public_key"], message, cp.get("signature"))
        ):
            problem = (
                f"the checkpoint of entry {seq} made at {at} is not signed by the service's key; it cannot be used"
            )
        elif when is None:
            problem = f"the checkpoint of entry {seq} has no readable time ({at!r})"
        elif seq > report.head_seq:
            problem = (
                f"the record ends at entry {report.head_seq}, but the service signed a checkpoint of entry {seq} "
                f"at {at}: entries after {report.head_seq} were cut"
            )
        elif hashes.get(seq) != cp.get("hash"):
            problem = f"entry {seq} differs from the checkpoint the service signed at {at}: the record was rewritten"
        elif times is not None and seq in times and when < times[seq]:
            problem = (
                f"the checkpoint of entry {seq} is dated {at}, before that entry ({iso(times[seq])}): a checkpoint "
                "covers only entries made at or before its time"
            )
        elif last is not None and when < last[1]:
            problem = (
                f"the checkpoint of entry {seq} is dated {at}, before the checkpoint of entry {last[0]} "
                f"({iso(last[1])}): checkpoint times never go backwards"
            )
            first = seq
        if problem is not None:
            return ChainReport(
                mechanism,
                report.entries,
                False,
                report.head_seq,
                report.head_hash,
                first,
                problem,
                report.keys,
                good,
                withheld=report.withheld,
            )
        assert when is not None
        last = (seq, when)
        good += 1
    return ChainReport(
        mechanism,
        report.entries,
        True,
        report.head_seq,
        report.head_hash,
        keys=report.keys,
        checkpoints=good,
        withheld=report.withheld,
    )


def _checkpoint_seq(cp: dict[str, Any]) -> int:
    seq = cp.get("seq")
    return seq if type(seq) is int else 0
