"""Ledger benchmark: signed entries appended per second (durable), entries verified per second, and a
1,000,000-entry bundle verified end to end.

    scripts/uv run python bench/ledger.py [--bundle-entries 1000000] [--appends 5000] [--verifies 100000]

* appends: ``ledger.append`` of a signed entry (canonical JSON, SHA-256 twice, Ed25519 signature,
  insert) into a real SQLite file in WAL mode on a plain connection, one commit per entry
  (synchronous=NORMAL, as the service runs: durable across a process crash), then the same with
  synchronous=FULL (durable across power loss), then 100 entries per commit. The service adds its
  projection and detection on top of this.
* verifies: ``verify.verify_docs`` over entries in memory (chain, payload hash, key ownership,
  signature), with 1 process and with 2.
* bundle: a 1M-entry bundle (two parties and the service signing in turn) written to a temporary
  file, then ``bundle.verify`` on it, timed from opening the file to the verdict.

Targets on 2 cores (issue 5): 5,000 appends/s, 20,000 verifications/s, 1M bundle under 60 s.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
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
from deconflict.store import ledger, open_store
from deconflict.store.schema import MechanismRow

M = "bench"
T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
SEEDS = {"service": bytes(range(32)), "TR": bytes(range(1, 33)), "IL": bytes(range(2, 34))}
ACTORS = ("system", "TR", "IL")


def notice(n: int) -> dict[str, Any]:
    """A payload the size of a real notice (one circular volume)."""
    return {
        "id": f"TR-{n:07d}",
        "party": "TR",
        "kind": "uav_patrol",
        "state": "notified",
        "version": 1,
        "title": "",
        "notified_at": iso(T0),
        "first_notified_at": iso(T0),
        "start": "2025-04-09T09:00:00Z",
        "end": "2025-04-09T11:00:00Z",
        "volumes": [
            {
                "id": "v1",
                "geometry": {"type": "Point", "coordinates": [37.6298 + n % 97 * 1e-3, 34.5226]},
                "radius_m": 20000.0,
                "floor_m": 1000.0,
                "ceiling_m": 4000.0,
                "start": "2025-04-09T09:00:00Z",
                "end": "2025-04-09T11:00:00Z",
            }
        ],
    }


def genesis() -> list[tuple[str, str, dict[str, Any]]]:
    service = signing.KeyPair(SEEDS["service"])
    first = {
        "id": M,
        "name": "bench",
        "members": [{"id": p, "party": p, "role": "party", "name": p, "language": "en"} for p in ("TR", "IL")],
        "service_key": {"key_id": service.key_id, "public_key": service.public_key},
    }
    out = [("operator", "mechanism.declared", first)]
    for party in ("TR", "IL"):
        key = signing.KeyPair(SEEDS[party])
        payload = {"key_id": key.key_id, "owner": party, "public_key": key.public_key, "custody": "party"}
        out.append(("operator", "key.registered", payload))
    return out


def _signer(actor: str) -> signing.KeyPair:
    return signing.KeyPair(SEEDS["service" if actor in chain.SERVICE_ACTORS else actor])


# --- appends -------------------------------------------------------------------------------------


def bench_appends(n: int, *, synchronous: str, per_commit: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "ledger.db"))
        with store.transaction() as s:
            s.add(MechanismRow(id=M, name=M, doc={}, declared_at=T0))
        keys = {a: _signer(a) for a in ACTORS}
        head = chain.Head(0, chain.GENESIS_HASH)
        store.engine.dispose()  # connections made from here on take the pragma below
        event.listen(store.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA synchronous={synchronous}"))
        payloads = [notice(i) for i in range(n)]
        t = time.perf_counter()
        i = 0
        with store.engine.connect() as conn:  # the record's own cost: no ORM session, no projection
            while i < n:
                with conn.begin():
                    for _ in range(min(per_commit, n - i)):
                        actor = ACTORS[i % 3]
                        key = keys[actor]
                        head = ledger.append(
                            conn,
                            mechanism=M,
                            actor=actor,
                            type="activity.notified",
                            payload=payloads[i],
                            at=T0 + timedelta(milliseconds=i),
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
    """Entries start..start+count-1 chained after ``prev`` (the first ones are the genesis entries)."""
    keys = {a: _signer(a) for a in ACTORS + ("operator",)}
    head = genesis()
    docs = []
    for seq in range(start, start + count):
        if seq <= len(head):
            actor, kind, payload = head[seq - 1]
        else:
            actor, kind, payload = ACTORS[seq % 3], "activity.notified", notice(seq)
        row = chain.draft(
            mechanism=M,
            actor=actor,
            type=kind,
            payload=payload,
            at=T0 + timedelta(milliseconds=seq),
            after=chain.Head(seq - 1, prev),
        )
        key = keys[actor]
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


def _sign_lines(args: tuple[list[tuple[int, str, str, str, str]]]) -> list[str]:
    """Signatures for (seq, actor, kind, hash, line-without-signature) rows, in a worker process."""
    (rows,) = args
    keys = {a: _signer(a) for a in ACTORS + ("operator",)}
    return [keys[actor].sign_entry(digest) for _, actor, _, digest, _ in rows]


def write_bundle(path: Path, n: int) -> None:
    """A valid n-entry bundle: hashing in this process, signing in two."""
    service = _signer("system")
    gen = genesis()
    keys_listed = [
        {"key_id": service.key_id, "owner": "service", "public_key": service.public_key, "custody": "service"}
    ] + [{k: p[k] for k in ("key_id", "owner", "public_key", "custody")} for _, _, p in gen[1:]]
    prev = chain.GENESIS_HASH
    chunk: list[tuple[int, str, str, str, str]] = []
    body = chain.canonical(notice(0))
    payload_hash = chain.sha256_hex(body)
    payload_text = json.dumps(notice(0), ensure_ascii=False, sort_keys=True)
    tmp = path.with_name(path.name + ".entries")
    with tmp.open("w", encoding="utf-8") as f, ProcessPoolExecutor(2) as pool:
        pending = []

        def flush() -> None:
            nonlocal chunk
            pending.append((pool.submit(_sign_lines, (chunk,)), chunk))
            chunk = []
            while len(pending) > 4 or (pending and pending[0][0].done()):
                drain()

        def drain() -> None:
            future, rows = pending.pop(0)
            for (seq, actor, _, _, text), sig in zip(rows, future.result(), strict=True):
                keyid = _signer(actor).key_id if seq <= 3 else KEY_IDS[actor]
                f.write(text[:-1] + f',"key_id":"{keyid}","signature":"{sig}"}}\n')

        for seq in range(1, n + 1):
            if seq <= len(gen):
                actor, kind, payload = gen[seq - 1]
                p_hash, p_text = chain.sha256_hex(chain.canonical(payload)), json.dumps(payload, sort_keys=True)
            else:
                actor, kind, p_hash, p_text = ACTORS[seq % 3], "activity.notified", payload_hash, payload_text
            at = T0 + timedelta(milliseconds=seq)
            digest = chain.entry_hash(
                mechanism=M, seq=seq, at=at, actor=actor, type=kind, payload_hash=p_hash, prev_hash=prev
            )
            text = (
                f'{{"actor":"{actor}","at":"{iso(at)}","hash":"{digest}","mechanism":"{M}","payload":{p_text},'
                f'"payload_hash":"{p_hash}","prev_hash":"{prev}","seq":{seq},"type":"{kind}"}}'
            )
            chunk.append((seq, actor, kind, digest, text))
            prev = digest
            if len(chunk) == 20_000:
                flush()
        if chunk:
            flush()
        while pending:
            drain()
    header = {
        "format": bundle.FORMAT,
        "version": bundle.VERSION,
        "mechanism": M,
        "entries": n,
        "head_seq": n,
        "head_hash": prev,
        "keys": keys_listed,
        "checkpoints": [],
        "exported_at": iso(T0),
    }
    with path.open("w", encoding="utf-8") as out, tmp.open(encoding="utf-8") as entries:
        out.write(json.dumps(header) + "\n")
        while block := entries.read(1 << 22):
            out.write(block)
    tmp.unlink()


KEY_IDS = {a: _signer(a).key_id for a in ACTORS + ("operator",)}


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
        assert report.ok, report.problem
    result["targets_met"] = {
        "append_5000_per_s": result["append_per_s_commit_each_normal"] >= 5000,
        "verify_20000_per_s": result["verify_per_s_2_processes"] >= 20000,
        "bundle_1m_under_60_s": result["bundle_verify_s"] < 60,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
