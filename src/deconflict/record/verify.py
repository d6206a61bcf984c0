"""Verification of a chain: recompute every hash and link, check every signature, name the first bad entry.

The record says who may sign: :class:`KeyRing` learns members' parties and the keys in force
entry by entry (the service's key from the first entry, parties' keys from ``key.registered``,
retired by ``key.revoked``). :func:`verify_docs` checks entry documents (from a store or a
bundle), :func:`verify_lines` a bundle's numbered JSON lines with all per-entry work (parsing,
hashing, signatures: :mod:`~deconflict.record.facts`) spread over worker processes
(:mod:`~deconflict.record.parallel`); this module holds the sequential pass over those facts.
:func:`deconflict.record.checkpoints.check_checkpoints` then holds a verified chain against the
service's signed checkpoints. Pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deconflict.clock import iso
from deconflict.record import authority, parallel, rules, signing
from deconflict.record.chain import GENESIS_HASH, SERVICE, SERVICE_ACTORS, ChainReport, EntryType
from deconflict.record.facts import RING_TYPES, Facts, entry_facts, unreadable
from deconflict.record.parallel import Signatures, ahead, entries_end, no_collection, processes, spans

__all__ = ["KeyRing", "Stream", "verify_docs", "verify_lines", "withheld_ranges"]


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
            if str(p.get("key_id")) in self.keys:
                self.keys[str(p.get("key_id"))]["authorised_by"] = p.get("authorised_by")
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
        self.sigs = Signatures(pool)
        self.prev = GENESIS_HASH
        self.count = 0
        self.last_at: datetime | None = None
        self.state = authority.AuthorityState(mechanism=mechanism)
        self.withheld: list[int] = []
        self.failure: tuple[int | None, str] | None = None

    def feed(self, f: Facts) -> bool:
        """Take one entry; False (and ``failure`` set) at the first one that does not verify."""
        expected = self.count + 1
        problem = None
        if f.unreadable:
            problem = f.problem
        elif type(f.seq) is not int:
            problem = f"entry {expected}: its sequence number is written as {f.seq!r}, not as a whole number"
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
        elif f.doc is not None and "payload" not in f.doc and f.doc.get("type") in rules.NEVER_WITHHELD:
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
            failure = (bad_signature, _bad_signature(bad_signature))
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


class Stream:
    """The record checked as it arrives, one entry document at a time (a party's mirror, an export being
    saved): the same checks as a bundle's verification (order, links, hashes, time, signatures against the
    keys the record itself registered, the authority rules), each entry's done before :meth:`feed` returns.

    The first entry that does not verify stops the stream: :meth:`feed` names it then and again for
    anything fed after it, and nothing after it is taken in. :meth:`report` says where it stands.
    """

    def __init__(self, mechanism: str, *, ring: KeyRing | None = None) -> None:
        self.mechanism = mechanism
        self._known: dict[str, str] = {}
        """key id → public key of the keys registered so far: each signature is checked as its entry is fed."""
        self._chain = _Chain(mechanism, ring if ring is not None else KeyRing(), None, self._known, None)
        self._problem: str | None = None

    @property
    def ring(self) -> KeyRing:
        """Members' parties and the keys in force, as the entries fed so far say."""
        return self._chain.ring

    @property
    def count(self) -> int:
        """Entries fed that verify (1..count)."""
        return self._chain.count

    @property
    def head_hash(self) -> str:
        """The hash of the last entry that verified (the genesis hash before the first)."""
        return self._chain.prev

    @property
    def withheld(self) -> tuple[int, ...]:
        """Entries fed without their payload (their hashes chained and signed)."""
        return tuple(self._chain.withheld)

    @property
    def problem(self) -> str | None:
        """Why the stream stopped, or None while every entry fed verifies."""
        return self._problem

    def feed(self, doc: Any) -> str | None:
        """Check the next entry document; None when it verifies (it is then taken in), else the problem in
        words, naming the entry. After a problem every later call returns that problem."""
        if self._problem is not None:
            return self._problem
        chain = self._chain
        if not isinstance(doc, dict):
            self._problem = f"entry {chain.count + 1}: not an entry (a JSON object)"
            chain.failure = (chain.count + 1, self._problem)
            return self._problem
        before = chain.prev
        if not chain.feed(entry_facts(self.mechanism, doc, self._known)):
            failure = chain.failure
            self._problem = failure[1] if failure is not None else f"entry {doc.get('seq')}: does not verify"
        else:
            bad = chain.sigs.finish()  # no worker pool: a signature queued for a key just learned is checked now
            if bad is not None:  # it can only be this entry's: the head stays at the one before
                chain.count, chain.prev = bad - 1, before
                chain.failure = (bad, _bad_signature(bad))
                self._problem = _bad_signature(bad)
            elif doc.get("type") in RING_TYPES or doc.get("seq") == 1:
                self._known.update({k: v["public_key"] for k, v in chain.ring.keys.items()})
        return self._problem

    def report(self) -> ChainReport:
        """The outcome so far, as :func:`verify_docs` gives it: entries that verify, head, keys, withheld
        entries, or the first entry that does not verify and why."""
        return self._chain.report()


def _bad_signature(seq: int) -> str:
    return f"entry {seq}: signature does not verify (the entry, its key or its signature was changed)"


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
    with processes(workers) as pool:
        chain = _Chain(mechanism, ring if ring is not None else KeyRing(), hashes, {}, pool, times)
        for doc in docs:
            if not chain.feed(entry_facts(mechanism, doc, {})):
                break
        return chain.report()


def verify_lines(
    mechanism: str,
    path: Path,
    start: int,
    *,
    known_keys: dict[str, str],
    workers: int = 1,
    ring: KeyRing | None = None,
    hashes: dict[int, str] | None = None,
    times: dict[int, datetime] | None = None,
    span_bytes: int | None = None,
) -> ChainReport:
    """Like :func:`verify_docs` for a bundle's entries: the JSON lines of the file at ``path`` from byte
    ``start`` (line 2 of the file: line 1 is the header), all per-entry work (reading, hashing, and
    signatures whose key is in ``known_keys``) done in ``workers`` processes, each reading its own ranges
    of ``span_bytes`` of the file (default :data:`~deconflict.record.parallel.SPAN_BYTES`). Blank lines at
    the end of the file are not entries.

    ``known_keys`` (key id → public key, e.g. a bundle header's list) only saves time: a signature is
    accepted only from the key the record itself registered for that id, re-checked here if it differs.
    """
    where = str(path)
    with processes(workers) as pool, no_collection():
        chain = _Chain(mechanism, ring if ring is not None else KeyRing(), hashes, known_keys, pool, times)
        ranges = spans(where, start, entries_end(where, start), span_bytes or parallel.SPAN_BYTES)
        number = 2  # the line number of the range's first line
        for span in ahead(pool, workers, where, ranges, mechanism, known_keys):
            if not all(chain.feed(f) for f in span.facts):
                break
            if span.bad is not None:
                index, why = span.bad
                chain.feed(unreadable(number + index, why))
                break
            number += span.lines
        return chain.report()
