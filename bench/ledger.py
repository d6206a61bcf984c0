"""Ledger benchmark: signed entries appended per second (durable), entries verified per second, and a
1,000,000-entry bundle verified end to end.

    scripts/uv run python bench/ledger.py [--bundle-entries 1000000] [--appends 5000] [--verifies 100000]

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
  (synchronous=NORMAL, as the service runs: durable across a process crash), then the same with
  synchronous=FULL (durable across power loss), then 100 entries per commit. The service adds its
  projection, authority check and detection on top of this.
* verifies: ``verify.verify_docs`` over entries in memory (chain, payload hash, key ownership,
  signature, authority rules, time), with 1 process and with 2.
* bundle: a 1M-entry bundle written to a temporary file, then ``bundle.verify`` on it, timed from
  opening the file to the verdict.

Targets on 2 cores (issue 5): 5,000 appends/s, 20,000 verifications/s, 1M bundle under 60 s.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from deconflict.clock import iso
from deconflict.record import bundle, chain, signing, verify
from deconflict.record.chain import EntryType
from deconflict.service import keys as service_keys
from deconflict.store import ledger, open_store
from deconflict.store.schema import MechanismRow

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


def bench_appends(n: int, *, synchronous: str, per_commit: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "ledger.db"))
        with store.transaction() as s:
            s.add(MechanismRow(id=M, name=M, doc={}, declared_at=T0))
        head = chain.Head(0, chain.GENESIS_HASH)
        store.engine.dispose()  # connections made from here on take the pragma below
        event.listen(store.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA synchronous={synchronous}"))
        first = founding()
        entries = [entry(seq, first) for seq in range(1, n + 1)]
        t = time.perf_counter()
        i = 0
        with store.engine.connect() as conn:  # the record's own cost: no ORM session, no projection
            while i < n:
                with conn.begin():
                    for _ in range(min(per_commit, n - i)):
                        actor, kind, payload = entries[i]
                        key = KEYS[actor]
                        head = ledger.append(
                            conn,
                            mechanism=M,
                            actor=actor,
                            type=kind,
                            payload=payload,
                            at=at(i + 1),
                            after=head,
                            sign=lambda row, key=key: (key.key_id, key.sign_entry(row["hash"])),
                        )
                        i += 1
        elapsed = time.perf_counter() - t
        with sqlite3.connect(Path(tmp) / "ledger.db") as con:
            assert con.execute("select count(*) from ledger").fetchone()[0] == n
        store.close()
    return n / elapsed


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


def bench_verify(docs: list[dict[str, Any]], workers: int) -> float:
    t = time.perf_counter()
    report = verify.verify_docs(M, iter(docs), workers=workers)
    elapsed = time.perf_counter() - t
    assert report.ok and report.entries == len(docs), report.problem
    return len(docs) / elapsed


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=5000)
    ap.add_argument("--verifies", type=int, default=100_000)
    ap.add_argument("--bundle-entries", type=int, default=1_000_000)
    args = ap.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}

    result["append_per_s_commit_each_normal"] = round(bench_appends(args.appends, synchronous="NORMAL", per_commit=1))
    result["append_per_s_commit_each_full"] = round(bench_appends(args.appends, synchronous="FULL", per_commit=1))
    result["append_per_s_commit_100"] = round(bench_appends(args.appends * 4, synchronous="FULL", per_commit=100))
    print(f"appends/s: {result}", file=sys.stderr)

    docs, _ = make_docs(1, args.verifies, chain.GENESIS_HASH)
    result["verify_per_s_1_process"] = round(bench_verify(docs, 1))
    result["verify_per_s_2_processes"] = round(bench_verify(docs, 2))
    print(f"verifies/s: {result}", file=sys.stderr)
    del docs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "million.jsonl"
        t = time.perf_counter()
        write_bundle(path, args.bundle_entries)
        result["bundle_write_s"] = round(time.perf_counter() - t, 1)
        result["bundle_mib"] = round(path.stat().st_size / 2**20)
        t = time.perf_counter()
        report = bundle.verify(path)
        result["bundle_entries"] = args.bundle_entries
        result["bundle_verify_s"] = round(time.perf_counter() - t, 1)
        result["bundle_ok"] = report.ok
        result["bundle_checkpoints"] = report.checkpoints
        assert report.ok, report.problem
    result["targets_met"] = {
        "append_5000_per_s": result["append_per_s_commit_each_normal"] >= 5000,
        "verify_20000_per_s": result["verify_per_s_2_processes"] >= 20000,
        "bundle_1m_under_60_s": result["bundle_verify_s"] < 60,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
