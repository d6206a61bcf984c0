"""Ledger benchmark: signed entries appended per second (durable), entries verified per second, and a
1,000,000-entry bundle verified end to end.

    scripts/uv run python bench/ledger.py [--bundle-entries 1000000] [--appends 5000] [--verifies 100000]
        [--only ed25519,appends,verify,bundle] [--baseline SRC]

The synthetic record is one the verifier accepts under the authority rules (docs/record.md), so every
figure is for a legitimate record:

* the founding block: ``mechanism.declared`` by ``operator`` at entry 1 (members TR and IL, the
  service's key), then one ``key.registered`` per party by ``operator`` with ``authorised_by:
  "founding"`` and ``possession`` (the new key's signature of ``registration_message``, as
  ``deconflict.service.keys`` spells it);
* then rounds of three: TR's member notifies a TR activity, IL's member notifies an IL activity (each
  signed with its own party's key), and the service (``system``) records the conflict between them
  (``conflict.detected``, awaiting IL), signed with the service key. Every entry carries about the same
  payload size (a notice with one circular volume, or a conflict), one signature each;
* entry times step forward 1 ms per entry (never backwards); the bundle carries the service's checkpoint
  of its head, dated at its export, at or after the last entry.

Figures:

* appends: ``ledger.append`` of a signed entry (canonical JSON, SHA-256 twice, Ed25519 signature,
  insert) into a real SQLite file in WAL mode on a plain connection, one commit per entry
  (synchronous=FULL, as the service runs: durable across power loss), then the same with
  synchronous=NORMAL (durable across a process crash only: the service's setting before 2026-12-03), then
  100 entries per commit. The service adds its projection, authority check and detection on top of this.
  Then the target's figure, the service's way: 8 writers appending through one lock, each answered only once
  its entry is on the disk, with the store the service opens (group commit: NORMAL, and one sync of the log
  for every commit made meanwhile, waited for after the lock; ``deconflict.store.durable``) against FULL (a
  sync inside each commit, under the lock) in the same run, taking turns: each entry a transaction of its own,
  as a notice that arrives alone is written. Then the same 8 writers as a busy hotline's messages are
  written: requests on one event loop handed to the service's batch thread (``deconflict.api.fast.Batches``),
  the entries waiting appended in one transaction, one commit and one sync for them all, each answered once
  on the disk. The target (``targets_met.append_5000_per_s``) is judged on that figure, the other beside it.
* verifies: ``verify.verify_docs`` over entries in memory (chain, payload hash, key ownership,
  signature, authority rules, time), with 1 process and with 2.
* bundle: a 1M-entry bundle written to a temporary file, then ``bundle.verify`` on it, timed from
  opening the file to the verdict.
* ed25519: signatures made and checked per second on one core (best of several, CPU time) by each
  implementation at hand: libsodium through PyNaCl's objects and through its bindings (what
  ``record.signing`` uses), and OpenSSL through ``cryptography`` when it is installed (it is not a
  dependency: measured slower here, see the README). The signature check is the verifier's floor.
* previous: the same run's baseline, the previous spelling of each hot step (``json.dumps`` per call,
  the head hashed as a dict, ``SigningKey.sign``, an executemany of one row per append), with ratios.
* ``--baseline SRC`` (e.g. ``git worktree add /tmp/base HEAD`` and ``/tmp/base/src``): the bundle verified
  again, in the same run, by that checkout's code (a process of its own with SRC first on its path), with
  the ratio of CPU an entry.

The machine is shared: beside each wall-clock rate the JSON gives CPU time per entry (this process and
its worker processes, ``getrusage``), and ``*_capacity_2_cores``: the rate two free cores would give
with that CPU (total CPU over two cores, or the sequential process's own CPU when that is longer).

Targets on 2 cores (issue 5): 5,000 appends/s, 20,000 verifications/s, 1M bundle under 60 s.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from sqlalchemy import Table, event, insert

from deconflict.clock import iso
from deconflict.record import bundle, chain, signing, verify
from deconflict.record.chain import EntryType
from deconflict.service import keys as service_keys
from deconflict.store import ledger, open_store
from deconflict.store.schema import LedgerEntry, MechanismRow

M = "bench"
T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=1)
"""Time between two entries: times only move forward."""
SEEDS = {"service": bytes(range(32)), "TR": bytes(range(1, 33)), "IL": bytes(range(2, 34))}
PARTIES = ("TR", "IL")
SIGNERS = ("system", "operator", *PARTIES)
"""Actors of the synthetic record: the service, its operator, and one member per party (id = party code)."""
FOUNDING = 1 + len(PARTIES)
"""Entries in the founding block: the declaration and one key per party."""


def _signer(actor: str) -> signing.KeyPair:
    """The key an actor signs with: the service's for system and operator, else its party's own."""
    return signing.KeyPair(SEEDS["service" if actor in chain.SERVICE_ACTORS else actor])


KEYS = {a: _signer(a) for a in SIGNERS}


def at(seq: int) -> datetime:
    return T0 + seq * STEP


def notice(party: str, number: str, notified_at: str, lon: float = 37.6298) -> dict[str, Any]:
    """A party's activity as the service records it (one circular volume), ``{party}-{number}``."""
    return {
        "id": f"{party}-{number}",
        "party": party,
        "kind": "uav_patrol",
        "state": "notified",
        "version": 1,
        "title": "",
        "notified_at": notified_at,
        "first_notified_at": notified_at,
        "start": "2025-04-09T09:00:00Z",
        "end": "2025-04-09T11:00:00Z",
        "volumes": [
            {
                "id": "v1",
                "geometry": {"type": "Point", "coordinates": [lon, 34.5226]},
                "radius_m": 20000.0,
                "floor_m": 1000.0,
                "ceiling_m": 4000.0,
                "start": "2025-04-09T09:00:00Z",
                "end": "2025-04-09T11:00:00Z",
            }
        ],
    }


def conflict(number: str, deadline: str) -> dict[str, Any]:
    """The service's ``conflict.detected`` between IL's and TR's activities of one round, awaiting IL."""
    return {
        "id": f"C-{number}",
        "kind": "separation",
        "activity": f"IL-{number}",
        "activity_kind": "uav_patrol",
        "activity_version": 1,
        "party": "IL",
        "other_activity": f"TR-{number}",
        "other_party": "TR",
        "other_version": 1,
        "parties": ["IL", "TR"],
        "awaiting": ["IL"],
        "deadline": deadline,
        "distance_m": 0.0,
        "separation_m": 9260.0,
        "floor_m": 1000.0,
        "ceiling_m": 4000.0,
        "start": "2025-04-09T09:00:00Z",
        "end": "2025-04-09T11:00:00Z",
        "volume_pairs": [["v1", "v1"]],
    }


def founding() -> list[tuple[str, str, dict[str, Any]]]:
    """The founding block: entry 1 declares the mechanism, then the operator registers each party's key."""
    service = KEYS["system"]
    first = {
        "id": M,
        "name": "bench",
        "members": [{"id": p, "party": p, "role": "party", "name": p, "language": "en"} for p in PARTIES],
        "service_key": {"key_id": service.key_id, "public_key": service.public_key},
    }
    out = [("operator", EntryType.MECHANISM_DECLARED.value, first)]
    for party in PARTIES:
        key = KEYS[party]
        message = service_keys.registration_message(mechanism=M, party=party, public_key=key.public_key)
        payload = {
            "key_id": key.key_id,
            "owner": party,
            "public_key": key.public_key,
            "custody": signing.PARTY_CUSTODY,
            "authorised_by": service_keys.FOUNDING,
            "possession": key.sign(message),
        }
        out.append(("operator", EntryType.KEY_REGISTERED.value, payload))
    return out


def role(seq: int) -> tuple[str, str, int]:
    """(actor, entry type, round) of an entry after the founding block: TR notifies, IL notifies, the
    service detects their conflict."""
    k = seq - FOUNDING - 1
    return (
        ("TR", EntryType.ACTIVITY_NOTIFIED.value),
        ("IL", EntryType.ACTIVITY_NOTIFIED.value),
        ("system", EntryType.CONFLICT_DETECTED.value),
    )[k % 3] + (k // 3 + 1,)


def entry(seq: int, head: list[tuple[str, str, dict[str, Any]]]) -> tuple[str, str, dict[str, Any]]:
    """(actor, entry type, payload) of entry ``seq`` (``head`` is :func:`founding`)."""
    if seq <= len(head):
        return head[seq - 1]
    actor, kind, n = role(seq)
    number = f"{n:07d}"
    if actor == "system":
        return actor, kind, conflict(number, iso(at(seq) + timedelta(minutes=10)))
    return actor, kind, notice(actor, number, iso(at(seq)), 37.6298 + n % 97 * 1e-3)


# --- appends -------------------------------------------------------------------------------------


def cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its worker processes that have ended."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def capacity(n: int, main_s: float, workers_s: float) -> int:
    """Entries a second two free cores would give for this CPU: the total over two cores, or the sequential
    process's own CPU when that is longer."""
    return round(n / max((main_s + workers_s) / 2, main_s))


def previous_canonical(obj: Any) -> bytes:
    """``chain.canonical`` as it was before issue 17 (the baseline of the same run)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def previous_draft(
    *, mechanism: str, actor: str, type: str, payload: Any, at: datetime, after: chain.Head
) -> dict[str, Any]:
    """``chain.draft`` as it was before issue 17: the payload and the head through ``json.dumps`` each."""
    body = previous_canonical(payload)
    payload_hash = hashlib.sha256(body).hexdigest()
    head = {
        "mechanism": mechanism,
        "seq": after.seq + 1,
        "at": iso(at),
        "actor": actor,
        "type": type,
        "payload_hash": payload_hash,
        "prev_hash": after.hash,
    }
    digest = hashlib.sha256(previous_canonical(head)).hexdigest()
    return {
        "mechanism_id": mechanism,
        "seq": after.seq + 1,
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


_NACL = {actor: SigningKey(KEYS[actor].seed) for actor in SIGNERS}


def previous_append(conn: Any, *, actor: str, kind: str, payload: Any, when: datetime, head: chain.Head) -> chain.Head:
    """``ledger.append`` with the bench's signer as they were before issue 17: the previous draft, PyNaCl's
    ``SigningKey.sign``, a fresh INSERT executed with a list of one row."""
    row = previous_draft(mechanism=M, actor=actor, type=kind, payload=payload, at=when, after=head)
    message = signing.entry_message(row["hash"])
    row["key_id"], row["signature"] = KEYS[actor].key_id, signing.b64(_NACL[actor].sign(message).signature)
    conn.execute(insert(cast(Table, LedgerEntry.__table__)), [row])
    return chain.Head(row["seq"], row["hash"])


def append_signed(conn: Any, i: int, head: chain.Head, entry: tuple[str, str, dict[str, Any]]) -> chain.Head:
    """``ledger.append`` of the bench's entry ``i`` (0-based) after ``head``, signed with its actor's key."""
    actor, kind, payload = entry
    key = KEYS[actor]
    return ledger.append(
        conn,
        mechanism=M,
        actor=actor,
        type=kind,
        payload=payload,
        at=at(i + 1),
        after=head,
        sign=lambda row: (key.key_id, key.sign_entry(row["hash"])),
    )


def bench_appends(n: int, *, synchronous: str, per_commit: int, previous: bool = False) -> tuple[float, float]:
    """(entries appended a second, CPU microseconds an entry) into a fresh SQLite file; ``previous``: with the
    previous spelling of the append (the same run's baseline)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "ledger.db"))
        with store.transaction() as s:
            s.add(MechanismRow(id=M, name=M, doc={}, declared_at=T0))
        head = chain.Head(0, chain.GENESIS_HASH)
        store.engine.dispose()  # connections made from here on take the pragma below
        event.listen(store.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA synchronous={synchronous}"))
        first = founding()
        entries = [entry(seq, first) for seq in range(1, n + 1)]
        c = time.process_time()
        t = time.perf_counter()
        i = 0
        with store.engine.connect() as conn:  # the record's own cost: no ORM session, no projection
            while i < n:
                with conn.begin():
                    for _ in range(min(per_commit, n - i)):
                        if previous:
                            actor, kind, payload = entries[i]
                            head = previous_append(
                                conn, actor=actor, kind=kind, payload=payload, when=at(i + 1), head=head
                            )
                            i += 1
                            continue
                        head = append_signed(conn, i, head, entries[i])
                        i += 1
        elapsed, used = time.perf_counter() - t, time.process_time() - c
        with sqlite3.connect(Path(tmp) / "ledger.db") as con:
            assert con.execute("select count(*) from ledger").fetchone()[0] == n
            last = con.execute("select hash from ledger order by seq desc limit 1").fetchone()[0]
        assert last == head.hash
        store.close()
    return n / elapsed, used / n * 1e6


@contextmanager
def writers_store(n: int, *, group: bool) -> Iterator[tuple[Any, list[tuple[str, str, dict[str, Any]]]]]:
    """A fresh SQLite file opened as the service opens it (``group``: group commit) with the bench's mechanism,
    and the bench's first ``n`` entries to append; once the block is done, the store is closed and the file
    checked to hold the ``n`` entries."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        store = open_store(str(path), group_commit=group)
        with store.transaction() as s:
            s.add(MechanismRow(id=M, name=M, doc={}, declared_at=T0))
        first = founding()
        try:
            yield store, [entry(seq, first) for seq in range(1, n + 1)]
        finally:
            store.close()
        with sqlite3.connect(path) as con:
            assert con.execute("select count(*) from ledger").fetchone()[0] == n


def last_hash(store: Any) -> str:
    """The hash of the newest entry the store holds."""
    with store.engine.connect() as conn:
        return str(conn.exec_driver_sql("select hash from ledger order by seq desc limit 1").scalar_one())


def bench_writers(n: int, *, group: bool, writers: int = 8) -> tuple[float, float, int]:
    """(entries a second each answered only once on the disk, CPU microseconds an entry, syncs made): ``writers``
    threads append through one lock, as the service's requests do, each waiting after the lock for its entry
    to be on the disk before it appends again. ``group``: the store the service opens (``group_commit``: NORMAL
    and one sync of the log for every commit made meanwhile, waited for outside the lock); else FULL, the log
    synced inside each commit, under the lock."""
    with writers_store(n, group=group) as (store, entries):
        durable = store.durable
        lock = threading.Lock()
        state = {"i": 0, "head": chain.Head(0, chain.GENESIS_HASH)}
        syncs = durable.syncs

        def writer() -> None:
            with store.engine.connect() as conn:
                while True:
                    with lock:
                        i = state["i"]
                        if i >= n:
                            return
                        ticket = 0
                        try:
                            with conn.begin():
                                state["head"] = append_signed(conn, i, cast(chain.Head, state["head"]), entries[i])
                                # as Store.transaction: announced once the work is done, before the commit
                                ticket = durable.begin_commit()
                        finally:
                            if ticket:
                                durable.end_commit(ticket)
                        state["i"] = i + 1
                    durable.wait(ticket)  # answered once on the disk

        c = time.process_time()
        t = time.perf_counter()
        threads = [threading.Thread(target=writer) for _ in range(writers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed, used = time.perf_counter() - t, time.process_time() - c
        syncs = durable.syncs - syncs
        assert last_hash(store) == cast(chain.Head, state["head"]).hash
    return n / elapsed, used / n * 1e6, syncs


def bench_batched(n: int, *, writers: int = 8) -> tuple[float, float, int, float]:
    """(entries a second each answered only once on the disk, CPU microseconds an entry, syncs made, entries a
    batch): ``writers`` requests on one event loop, each sending its next entry once the last is answered,
    handed to the service's own batch thread (:class:`deconflict.api.fast.Batches`, as a busy hotline's
    messages are): the entries waiting are appended in one transaction (their rows inserted together, as
    :class:`deconflict.service.writer.RecordWriter` gathers them), one commit, one sync of the log for them
    all (the store the service opens, group commit), and only then answered, each on its event loop."""
    from deconflict.api.fast import Batches  # the service's; imported here: the rest of the bench needs no API
    from deconflict.store import direct

    with writers_store(n, group=True) as (store, entries):
        durable = store.durable
        lock = threading.Lock()
        state: dict[str, Any] = {"i": 0, "head": chain.Head(0, chain.GENESIS_HASH), "conn": None, "batches": 0}
        syncs = durable.syncs

        def write(_service: Any, _mechanism: str, items: list[Any]) -> Iterator[list[tuple[int, Any]]]:
            if state["conn"] is None:
                state["conn"] = store.engine.connect()  # the batch thread's own, as a write thread keeps one
            conn = state["conn"]
            answers: list[tuple[int, Any]] = []
            with lock:
                ticket = 0
                try:
                    with conn.begin(), direct.gathered(conn) as gathered:
                        for k in range(len(items)):
                            i = state["i"]
                            if i >= n:
                                answers.append((k, None))
                                continue
                            state["head"] = append_signed(conn, i, cast(chain.Head, state["head"]), entries[i])
                            state["i"] = i + 1
                            answers.append((k, i))
                        if gathered is not None:
                            gathered.flush()
                        ticket = durable.begin_commit()
                finally:
                    if ticket:
                        durable.end_commit(ticket)
            state["batches"] += 1
            durable.wait(ticket)  # answered once on the disk
            yield answers

        batches = Batches(name="bench-batches")

        async def requests() -> None:
            async def one() -> None:
                while await batches.run(write, None, M, None) is not None:
                    pass

            await asyncio.gather(*(one() for _ in range(writers)))

        c = time.process_time()
        t = time.perf_counter()
        asyncio.run(requests())
        elapsed, used = time.perf_counter() - t, time.process_time() - c
        batches.stop()
        if state["conn"] is not None:
            state["conn"].close()
        syncs = durable.syncs - syncs
        assert last_hash(store) == cast(chain.Head, state["head"]).hash
    return n / elapsed, used / n * 1e6, syncs, n / max(1, state["batches"])


def best_of(reps: int, f: Any) -> float:
    """The least CPU seconds ``f()`` took in ``reps`` runs."""
    best = float("inf")
    for _ in range(reps):
        c = time.process_time()
        f()
        best = min(best, time.process_time() - c)
    return best


def previous_verify(public_key: str, message: bytes, signature: str | None) -> bool:
    """``signing.verify`` as it was before issue 17's verification work: a ``VerifyKey`` object per key."""
    if not signature:
        return False
    key = _PREVIOUS_KEYS.get(public_key)
    try:
        if key is None:
            key = _PREVIOUS_KEYS[public_key] = VerifyKey(base64.b64decode(public_key, validate=True))
        key.verify(message, base64.b64decode(signature, validate=True))
    except (BadSignatureError, binascii.Error, ValueError, TypeError):
        return False
    return True


_PREVIOUS_KEYS: dict[str, VerifyKey] = {}


@contextmanager
def previous_verifier() -> Iterator[None]:
    """Verification of documents as it was before issue 17's verification work, for the same run's baseline:
    signatures through PyNaCl's ``VerifyKey`` objects. Worker processes are forked after this is in place, so
    they run it too. (A bundle's baseline is an earlier checkout's code run whole: ``--baseline SRC``.)"""
    saved = signing.verify
    signing.verify = previous_verify
    try:
        yield
    finally:
        signing.verify = saved


def signature_floor(docs: list[dict[str, Any]]) -> float:
    """CPU µs one core spends an entry on its signature alone (``signing.verify``, best of three): the
    verifier's floor, measured beside it in the same run."""
    public = {KEYS[a].key_id: KEYS[a].public_key for a in SIGNERS}
    rows = [(public[d["key_id"]], signing.entry_message(d["hash"]), d["signature"]) for d in docs]
    used = best_of(3, lambda: [signing.verify(*row) for row in rows])
    return used / len(rows) * 1e6


def bench_ed25519(n: int = 2000, reps: int = 5) -> dict[str, Any]:
    """Signatures made and checked a second on one core (best of ``reps``, CPU time) per implementation."""
    key = KEYS["TR"]
    messages = [signing.entry_message(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n)]
    nacl_key = SigningKey(key.seed)
    nacl_vk = VerifyKey(bytes(nacl_key.verify_key))
    sigs = [nacl_key.sign(m).signature for m in messages]
    texts = [signing.b64(s) for s in sigs]
    out: dict[str, Any] = {
        "pynacl_objects_sign_per_s": round(n / best_of(reps, lambda: [nacl_key.sign(m) for m in messages])),
        "pynacl_objects_verify_per_s": round(
            n / best_of(reps, lambda: [nacl_vk.verify(m, s) for m, s in zip(messages, sigs, strict=True)])
        ),
        "record_signing_sign_per_s": round(n / best_of(reps, lambda: [key.sign(m) for m in messages])),
        "record_signing_verify_per_s": round(
            n
            / best_of(
                reps, lambda: [signing.verify(key.public_key, m, s) for m, s in zip(messages, texts, strict=True)]
            )
        ),
    }
    assert all(key.sign(m) == t for m, t in zip(messages, texts, strict=True))
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        out["openssl_cryptography"] = "not installed (not a dependency)"
        return out
    private = Ed25519PrivateKey.from_private_bytes(key.seed)
    public = private.public_key()
    assert [private.sign(m) for m in messages[:10]] == sigs[:10]
    out["openssl_cryptography_sign_per_s"] = round(n / best_of(reps, lambda: [private.sign(m) for m in messages]))
    out["openssl_cryptography_verify_per_s"] = round(
        n / best_of(reps, lambda: [public.verify(s, m) for m, s in zip(messages, sigs, strict=True)])
    )
    return out


def bench_steps(docs: list[dict[str, Any]], reps: int = 9) -> dict[str, Any]:
    """Microseconds of CPU an entry for each hashing step, previous spelling against now (same bytes)."""
    docs = docs[FOUNDING : FOUNDING + 3000]
    heads = [
        dict(
            mechanism=M,
            seq=d["seq"],
            at=at(d["seq"]),
            actor=d["actor"],
            type=d["type"],
            payload_hash=d["payload_hash"],
            prev_hash=d["prev_hash"],
        )
        for d in docs
    ]
    assert all(chain.canonical(d["payload"]) == previous_canonical(d["payload"]) for d in docs)
    assert all(chain.entry_hash(**h) == d["hash"] for h, d in zip(heads, docs, strict=True))

    def old_head(h: dict[str, Any]) -> str:
        return hashlib.sha256(previous_canonical(dict(h, at=iso(h["at"])))).hexdigest()

    pairs = {
        "canonical_payload": (
            lambda: [previous_canonical(d["payload"]) for d in docs],
            lambda: [chain.canonical(d["payload"]) for d in docs],
        ),
        "entry_hash": (lambda: [old_head(h) for h in heads], lambda: [chain.entry_hash(**h) for h in heads]),
    }
    out: dict[str, Any] = {}
    for name, (before, now) in pairs.items():
        times = [best_of(1, f) for _ in range(reps) for f in (before, now)]  # interleaved: the same noise for both
        out[f"{name}_us_previous"] = round(min(times[0::2]) / len(docs) * 1e6, 2)
        out[f"{name}_us"] = round(min(times[1::2]) / len(docs) * 1e6, 2)
    return out


# --- documents and bundles -------------------------------------------------------------------------


def make_docs(start: int, count: int, prev: str) -> tuple[list[dict[str, Any]], str]:
    """Entries start..start+count-1 chained after ``prev`` (entries 1..3 are the founding block)."""
    head = founding()
    docs = []
    for seq in range(start, start + count):
        actor, kind, payload = entry(seq, head)
        row = chain.draft(
            mechanism=M, actor=actor, type=kind, payload=payload, at=at(seq), after=chain.Head(seq - 1, prev)
        )
        key = KEYS[actor]
        doc = {
            "mechanism": M,
            "seq": seq,
            "at": iso(row["at"]),
            "actor": actor,
            "type": kind,
            "payload": payload,
            "payload_hash": row["payload_hash"],
            "prev_hash": prev,
            "hash": row["hash"],
            "key_id": key.key_id,
            "signature": key.sign_entry(row["hash"]),
        }
        docs.append(doc)
        prev = row["hash"]
    return docs, prev


def bench_verify(docs: list[dict[str, Any]], workers: int) -> tuple[float, float, float]:
    """(entries verified a second, CPU µs an entry in this process, in the worker processes)."""
    c0 = cpu()
    t = time.perf_counter()
    report = verify.verify_docs(M, iter(docs), workers=workers)
    elapsed = time.perf_counter() - t
    c1 = cpu()
    assert report.ok and report.entries == len(docs) and report.head_hash == docs[-1]["hash"], report.problem
    n = len(docs)
    return n / elapsed, (c1[0] - c0[0]) / n * 1e6, (c1[1] - c0[1]) / n * 1e6


class Template:
    """A payload's JSON text with ``@name@`` holes, filled per entry without building the payload again."""

    def __init__(self, text: str) -> None:
        self.parts = re.split(r"@(\w+)@", text)

    def fill(self, values: dict[str, str]) -> str:
        parts = self.parts[:]
        parts[1::2] = [values[name] for name in self.parts[1::2]]
        return "".join(parts)


def _templates(actor: str) -> tuple[Template, Template]:
    """(canonical text, text as written in the bundle) of the payload ``actor`` writes each round."""
    if actor == "system":
        payload = conflict("@N@", "@DEADLINE@")
    else:
        payload = notice(actor, "@N@", "@AT@")
    return Template(chain.canonical(payload).decode()), Template(json.dumps(payload, sort_keys=True))


def _sign_lines(args: tuple[list[tuple[str, str]]]) -> list[str]:
    """Signatures for (actor, entry hash) rows, in a worker process."""
    (rows,) = args
    return [KEYS[actor].sign_entry(digest) for actor, digest in rows]


def write_bundle(path: Path, n: int) -> None:
    """A valid n-entry bundle: hashing in this process, signing in two; one checkpoint at export."""
    service = KEYS["system"]
    head = founding()
    keys_listed = [
        {"key_id": service.key_id, "owner": chain.SERVICE, "public_key": service.public_key, "custody": "service"}
    ] + [{k: p[k] for k in ("key_id", "owner", "public_key", "custody")} for _, _, p in head[1:]]
    templates = {a: _templates(a) for a in ("system", *PARTIES)}
    prev = chain.GENESIS_HASH
    chunk: list[tuple[str, str, str]] = []
    tmp = path.with_name(path.name + ".entries")
    with tmp.open("w", encoding="utf-8") as f, ProcessPoolExecutor(2) as pool:
        pending = []

        def flush() -> None:
            nonlocal chunk
            pending.append((pool.submit(_sign_lines, ([(a, d) for a, d, _ in chunk],)), chunk))
            chunk = []
            while len(pending) > 4 or (pending and pending[0][0].done()):
                drain()

        def drain() -> None:
            future, rows = pending.pop(0)
            for (actor, _, text), sig in zip(rows, future.result(), strict=True):
                f.write(text[:-1] + f',"key_id":"{KEYS[actor].key_id}","signature":"{sig}"}}\n')

        for seq in range(1, n + 1):
            when = at(seq)
            if seq <= len(head):
                actor, kind, payload = head[seq - 1]
                canonical, p_text = chain.canonical(payload), json.dumps(payload, sort_keys=True)
            else:
                actor, kind, number = role(seq)
                values = {"N": f"{number:07d}", "AT": iso(when)}
                if actor == "system":
                    values["DEADLINE"] = iso(when + timedelta(minutes=10))
                canonical_t, text_t = templates[actor]
                canonical, p_text = canonical_t.fill(values).encode(), text_t.fill(values)
            p_hash = chain.sha256_hex(canonical)
            digest = chain.entry_hash(
                mechanism=M, seq=seq, at=when, actor=actor, type=kind, payload_hash=p_hash, prev_hash=prev
            )
            text = (
                f'{{"actor":"{actor}","at":"{iso(when)}","hash":"{digest}","mechanism":"{M}","payload":{p_text},'
                f'"payload_hash":"{p_hash}","prev_hash":"{prev}","seq":{seq},"type":"{kind}"}}'
            )
            chunk.append((actor, digest, text))
            prev = digest
            if len(chunk) == 20_000:
                flush()
        if chunk:
            flush()
        while pending:
            drain()
    exported_at = iso(at(n) + timedelta(seconds=1))  # the export comes after the last entry
    checkpoint = {
        "seq": n,
        "hash": prev,
        "at": exported_at,
        "key_id": service.key_id,
        "signature": service.sign(signing.checkpoint_message(mechanism=M, seq=n, hash=prev, at=exported_at)),
    }
    header = {
        "format": bundle.FORMAT,
        "version": bundle.VERSION,
        "mechanism": M,
        "entries": n,
        "head_seq": n,
        "head_hash": prev,
        "keys": keys_listed,
        "checkpoints": [checkpoint],
        "exported_at": exported_at,
    }
    with path.open("w", encoding="utf-8") as out, tmp.open(encoding="utf-8") as entries:
        out.write(json.dumps(header) + "\n")
        while block := entries.read(1 << 22):
            out.write(block)
    tmp.unlink()


PARTS = ("ed25519", "appends", "verify", "bundle")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=5000)
    ap.add_argument("--verifies", type=int, default=100_000)
    ap.add_argument("--bundle-entries", type=int, default=1_000_000)
    ap.add_argument(
        "--only", default=",".join(PARTS), help=f"the parts to run, comma-separated, of {', '.join(PARTS)} (all)"
    )
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="also verify the bundle with the code of an earlier checkout's src folder (a git worktree), in a "
        "process of its own, in the same run",
    )
    ap.add_argument("--verify-bundle", metavar="PATH", help=argparse.SUPPRESS)  # the baseline's own process
    args = ap.parse_args()
    if args.verify_bundle:
        print(json.dumps(verify_bundle(Path(args.verify_bundle), args.bundle_entries)))
        return
    only = set(args.only.split(","))
    if not only <= set(PARTS):
        ap.error(f"--only: parts are {', '.join(PARTS)}")
    result: dict[str, Any] = {"cpus": os.cpu_count(), "parts": sorted(only, key=PARTS.index)}
    if "ed25519" in only:
        result["ed25519"] = bench_ed25519()
        print(f"ed25519: {result['ed25519']}", file=sys.stderr)
    if "appends" in only:
        run_appends(args, result)
    if "verify" in only:
        run_verify(args, result)
    if "bundle" in only:
        run_bundle(args, result)
    met: dict[str, bool] = {}
    free: dict[str, bool] = {}
    if "appends" in only:
        # met as the service writes a busy hotline (batched); each entry in a transaction of its own (as a
        # notice is written) is reported beside it
        met["append_5000_per_s"] = result["append_per_s_8_writers_batched"] >= 5000
        met["append_5000_per_s_one_entry_a_transaction"] = result["append_per_s_8_writers_group_commit"] >= 5000
        # no estimate on free cores: the figure is the disk's syncs overlapping the next appends, a matter of
        # wall time; the CPU an entry says what one core would allow (append_capacity_1_core_group_commit)
    if "verify" in only:
        met["verify_20000_per_s"] = result["verify_per_s_2_processes"] >= 20000
        free["verify_20000_per_s"] = result["verify_capacity_2_cores"] >= 20000
    if "bundle" in only:
        met["bundle_1m_under_60_s"] = args.bundle_entries >= 1_000_000 and result["bundle_verify_s"] < 60
        free["bundle_1m_under_60_s"] = result["bundle_1m_verify_s_2_free_cores"] < 60
    result["targets_met"] = met
    result["targets_met_on_2_free_cores"] = free
    print(json.dumps(result))


def run_appends(args: argparse.Namespace, result: dict[str, Any]) -> None:
    for name, sync, per_commit, n in (
        ("commit_each_normal", "NORMAL", 1, args.appends),
        ("commit_100", "FULL", 100, args.appends * 4),
    ):
        rate, cpu_us = bench_appends(n, synchronous=sync, per_commit=per_commit)
        result[f"append_per_s_{name}"] = round(rate)
        result[f"append_cpu_us_{name}"] = round(cpu_us, 1)
    # the headline figure (as the service commits) and its baseline, interleaved (now, previous, now,
    # previous), best of each
    runs = [bench_appends(args.appends, synchronous="FULL", per_commit=1, previous=p) for p in (False, True) * 2]
    now, before = runs[0::2], runs[1::2]
    result["append_per_s_commit_each_full"] = round(max(r for r, _ in now))
    result["append_cpu_us_commit_each_full"] = round(min(c for _, c in now), 1)
    result["append_per_s_commit_each_full_previous"] = round(max(r for r, _ in before))
    result["append_cpu_us_commit_each_full_previous"] = round(min(c for _, c in before), 1)
    result["append_cpu_ratio_previous_over_now"] = round(
        result["append_cpu_us_commit_each_full_previous"] / result["append_cpu_us_commit_each_full"], 2
    )
    result["append_capacity_1_core"] = round(1e6 / result["append_cpu_us_commit_each_full"])
    # the service's way: 8 writers through one lock, each answered once its entry is on the disk; FULL (a
    # sync inside each commit, under the lock) against group commit, taking turns, best of each
    writers = [bench_writers(args.appends, group=g) for g in (True, False) * 2]
    grouped, full = writers[0::2], writers[1::2]
    result["append_per_s_8_writers_group_commit"] = round(max(r for r, _, _ in grouped))
    result["append_cpu_us_8_writers_group_commit"] = round(min(c for _, c, _ in grouped), 1)
    result["append_commits_per_sync_8_writers_group_commit"] = round(
        args.appends / max(1, min(k for _, _, k in grouped)), 2
    )
    result["append_per_s_8_writers_full"] = round(max(r for r, _, _ in full))
    result["append_cpu_us_8_writers_full"] = round(min(c for _, c, _ in full), 1)
    result["append_capacity_1_core_group_commit"] = round(1e6 / result["append_cpu_us_8_writers_group_commit"])
    result["append_ratio_group_commit_over_full"] = round(
        result["append_per_s_8_writers_group_commit"] / result["append_per_s_8_writers_full"], 2
    )
    # the service's way for a busy hotline: the same 8 writers' entries batched (one transaction, one commit and
    # one sync for those waiting), best of two
    batched = [bench_batched(args.appends) for _ in range(2)]
    result["append_per_s_8_writers_batched"] = round(max(r for r, _, _, _ in batched))
    result["append_cpu_us_8_writers_batched"] = round(min(c for _, c, _, _ in batched), 1)
    result["append_entries_per_batch_8_writers_batched"] = round(min(b for _, _, _, b in batched), 2)
    result["append_ratio_batched_over_group_commit"] = round(
        result["append_per_s_8_writers_batched"] / result["append_per_s_8_writers_group_commit"], 2
    )
    print(f"appends/s: {result}", file=sys.stderr)


def run_verify(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Entries verified a second from documents in memory, 1 and 2 processes, now and the previous verifier
    interleaved (now, previous, now, previous: the same noise for both), best of each; and the floor."""
    docs, _ = make_docs(1, args.verifies, chain.GENESIS_HASH)
    result["steps"] = bench_steps(docs)
    floor_us = signature_floor(docs)
    result["verify_signature_floor_cpu_us"] = round(floor_us, 1)
    for workers in (1, 2):
        tag = f"{workers}_process" + ("es" if workers > 1 else "")
        runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for previous in (False, True) * 2:
            if previous:
                with previous_verifier():
                    runs[previous].append(bench_verify(docs, workers))
            else:
                runs[previous].append(bench_verify(docs, workers))
        for previous, suffix in ((False, ""), (True, "_previous")):
            rate = max(r for r, _, _ in runs[previous])
            main_us, workers_us = min((m + w, m, w) for _, m, w in runs[previous])[1:]
            result[f"verify_per_s_{tag}{suffix}"] = round(rate)
            result[f"verify_cpu_us_{tag}{suffix}"] = {"main": round(main_us, 1), "workers": round(workers_us, 1)}
    for suffix in ("", "_previous"):
        cpu2 = result[f"verify_cpu_us_2_processes{suffix}"]
        result[f"verify_capacity_2_cores{suffix}"] = capacity(1, cpu2["main"] / 1e6, cpu2["workers"] / 1e6)
    now, before = result["verify_cpu_us_2_processes"], result["verify_cpu_us_2_processes_previous"]
    total = now["main"] + now["workers"]
    result["verify_cpu_ratio_previous_over_now"] = round((before["main"] + before["workers"]) / total, 2)
    result["verify_profile_us"] = {
        "signature_floor": round(floor_us, 1),
        "other": round(total - floor_us, 1),
        "capacity_at_floor_2_cores": round(2e6 / floor_us),
    }
    print(f"verifies/s: {result}", file=sys.stderr)


def verify_bundle(path: Path, n: int) -> dict[str, Any]:
    """``bundle.verify`` of ``path`` timed from opening the file to the verdict: wall, CPU of this process
    and of its workers, and what two free cores would take for 1M entries."""
    c0 = cpu()
    t = time.perf_counter()
    report = bundle.verify(path)
    wall = time.perf_counter() - t
    c1 = cpu()
    assert report.ok and report.entries == n and report.checkpoints == 1, report.problem
    main_s, workers_s = c1[0] - c0[0], c1[1] - c0[1]
    return {
        "verify_s": round(wall, 1),
        "cpu_s": {"main": round(main_s, 1), "workers": round(workers_s, 1)},
        "cpu_us_per_entry": round((main_s + workers_s) / n * 1e6, 1),
        "1m_verify_s_2_free_cores": round(1_000_000 / capacity(n, main_s, workers_s), 1),
    }


def baseline_verify_bundle(src: Path, path: Path, n: int) -> dict[str, Any]:
    """:func:`verify_bundle` by the code in ``src`` (an earlier checkout's ``src`` folder), in a process of its
    own that imports ``deconflict`` from there."""
    if not (src / "deconflict" / "record" / "bundle.py").is_file():
        raise SystemExit(f"--baseline: {src} holds no deconflict package (give a checkout's src folder)")
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    args = [sys.executable, __file__, "--verify-bundle", str(path), "--bundle-entries", str(n)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"--baseline: the baseline's verification failed: {done.stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    out["src"] = str(src)
    return out


def run_bundle(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """A bundle written, then verified by the verifier now and (with ``--baseline``) by an earlier checkout's
    code; the signature floor measured on its first 20,000 entries in the same run."""
    n = args.bundle_entries
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "million.jsonl"
        t = time.perf_counter()
        write_bundle(path, n)
        result["bundle_write_s"] = round(time.perf_counter() - t, 1)
        result["bundle_mib"] = round(path.stat().st_size / 2**20)
        result["bundle_entries"] = n
        now = verify_bundle(path, n)
        result["bundle_verify_s"] = now["verify_s"]
        result["bundle_verify_cpu_s"] = now["cpu_s"]
        result["bundle_verify_cpu_us_per_entry"] = now["cpu_us_per_entry"]
        result["bundle_1m_verify_s_2_free_cores"] = now["1m_verify_s_2_free_cores"]
        result["bundle_ok"] = True
        with path.open("rb") as f:
            f.readline()
            sample = [json.loads(line) for _, line in zip(range(20_000), f, strict=False)]
        floor_us = signature_floor(sample)
        result["bundle_profile_us_per_entry"] = {
            "signature_floor": round(floor_us, 1),
            "other": round(now["cpu_us_per_entry"] - floor_us, 1),
            "1m_s_2_free_cores_at_floor": round(1e6 * floor_us / 2e6, 1),
        }
        if args.baseline:
            before = baseline_verify_bundle(Path(args.baseline), path, n)
            result["bundle_baseline"] = before
            result["bundle_cpu_ratio_baseline_over_now"] = round(
                before["cpu_us_per_entry"] / now["cpu_us_per_entry"], 2
            )
    print(f"bundle: {result}", file=sys.stderr)


if __name__ == "__main__":
    main()
