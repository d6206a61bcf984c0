"""Merkle benchmark: the root of a 1,000,000-entry record streamed, proof sizes at that size, the
service's proofs from its cached subtree roots against the former all-leaves tree, and the time to
verify an inclusion proof, a consistency proof and a cosigned checkpoint note.

    scripts/uv run python bench/merkle.py [--entries 1000000] [--repeat 2000] [--requests 300]

(from a fresh clone: ``scripts/uv`` installs uv into ``.tools/`` when the machine has none.)

* root: :class:`deconflict.record.merkle.CompactRange` over the entries' 32-byte chain hashes,
  one at a time (what a verifier does while streaming a bundle), in O(log n) memory.
* proofs: an inclusion proof for the entry a third of the way in, and a consistency proof from
  a checkpoint at 500,000 + 12,345 entries to the full record.
* service tree, in the same run: the **old** way (every leaf in a Python list, each answer hashing
  over all leaves: the proof plus the roots the answer carries, as ``service/checkpoints.py`` did
  before ``service/merkle_cache.py``) against the **new** one (``checkpoints.inclusion`` and
  ``checkpoints.consistency`` of a real :class:`~deconflict.service.Service` over an SQLite ledger
  of that many entries: cached subtree roots, at most two block reads from the ledger). The new
  answers are checked byte for byte against the old. Memory is what the tree holds, measured with
  ``tracemalloc`` while building it from the leaves (the old list of ``bytes`` and compact range;
  the new :class:`~deconflict.service.merkle_cache.SubtreeCache`). The new proof time is the mean
  over ``--requests`` answers at random entries and sizes, each a fresh snapshot of the tree, its
  block reads and hashing; the first answer also builds the tree from the ledger (timed apart).
  The ledger's entries after the Syria declaration are stand-ins (valid chain links, no payload):
  the tree reads only their hashes. The SQLite file (a few hundred MB at 1M entries) is written in
  a temporary folder and removed at the end. Times are given as wall and CPU: the ratios use CPU,
  which another process's load disturbs less.
* verify: each proof checked ``--repeat`` times; a checkpoint note signed by the service and
  cosigned by two parties, parsed and verified.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deconflict.mechanisms import load_mechanism
from deconflict.record import merkle, note, signing
from deconflict.record.signing import KeyPair
from deconflict.scenarios import scenario_path
from deconflict.service import Service
from deconflict.service import checkpoints as notes
from deconflict.service.merkle_cache import SubtreeCache
from deconflict.store import open_store

M = "tr-il-syria"


def _per_call(fn: Any, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def _stand_in(i: int) -> bytes:
    """Entry ``i``'s stand-in chain hash (a fresh bytes object each call)."""
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def _service(folder: Path, n: int) -> tuple[Service, list[bytes]]:
    """A service over an SQLite ledger of ``n`` entries: the Syria declaration, then stand-ins linked by
    their hashes (written straight into the ledger table); and the ledger's leaves, in order."""
    db = folder / "merkle.db"
    svc = Service(open_store(str(db)))
    svc.declare_mechanism(mechanism=load_mechanism(scenario_path("syria")), demo_custody=True)
    con = sqlite3.connect(db)
    try:
        con.execute("pragma synchronous=off")
        real = con.execute("select hash, at from ledger where mechanism_id = ? order by seq", (M,)).fetchall()
        at = real[-1][1]

        def rows() -> Any:
            prev = real[-1][0]
            for seq in range(len(real) + 1, n + 1):
                h = _stand_in(seq).hex()
                yield (M, seq, at, "operator", "member.added", "{}", "0" * 64, prev, h)
                prev = h

        with con:
            con.executemany(
                "insert into ledger (mechanism_id, seq, at, actor, type, payload, payload_hash, prev_hash, hash)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows(),
            )
    finally:
        con.close()
    leaves = [bytes.fromhex(h) for h, _ in real] + [_stand_in(seq) for seq in range(len(real) + 1, n + 1)]
    return svc, leaves


def _held_bytes(build: Callable[[], object]) -> int:
    """The bytes still allocated by what ``build`` returns, once built (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    held = build()
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held
    return size


def _rss_growth(build: Callable[[], object]) -> int | None:
    """How much the resident set grew while ``build`` ran and its result is held (Linux; else None)."""
    statm = Path("/proc/self/statm")
    if not statm.exists():
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    gc.collect()
    before = int(statm.read_text().split()[1]) * page
    held = build()
    gc.collect()
    grown = int(statm.read_text().split()[1]) * page - before
    del held
    return grown


def _old_tree(n: int) -> object:
    """The former service tree: every leaf in a list, and a compact range over them."""
    leaves, top = [], merkle.CompactRange()
    for i in range(n):
        leaf = _stand_in(i)
        leaves.append(leaf)
        top.append(leaf)
    return leaves, top


def _new_tree(n: int) -> object:
    tree = SubtreeCache()
    for i in range(n):
        tree.append(_stand_in(i))
    return tree


def _b64s(hashes: list[str]) -> list[bytes]:
    return [signing.unb64(h, field="proof", size=32) for h in hashes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300, help="new-tree answers to average over")
    args = parser.parse_args()
    n, repeat = args.entries, args.repeat

    folder = tempfile.TemporaryDirectory(prefix="bench-merkle-")
    start = time.perf_counter()
    svc, leaves = _service(Path(folder.name), n)
    print(f"ledger of {n:,} entries written in {time.perf_counter() - start:.1f} s")

    start, cpu = time.perf_counter(), time.process_time()
    tree = merkle.CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    root = tree.root()
    root_s, root_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"root of {n:,} entries streamed: {root_s:.2f} s wall, {root_cpu:.2f} s CPU, {len(tree.hashes)} hashes kept")

    # The old way: each answer hashes over all the leaves (the proof, then the roots it carries).
    index, m = n // 3, min(n, n // 2 + 12_345)
    start, cpu = time.perf_counter(), time.process_time()
    inc = merkle.inclusion_proof(leaves, index, n)
    inc_build = time.perf_counter() - start
    merkle.root(leaves[:n])
    old_inc_s, old_inc_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    cons = merkle.consistency_proof(leaves, m, n)
    cons_build = time.perf_counter() - start
    root_m = merkle.root(leaves[:m])
    merkle.root(leaves[:n])
    old_cons_s, old_cons_cpu = time.perf_counter() - start, time.process_time() - cpu
    old_bytes = _held_bytes(lambda: _old_tree(n))
    old_rss = _rss_growth(lambda: _old_tree(n))
    print(f"old tree (every leaf): inclusion answer {old_inc_s:.2f} s ({old_inc_cpu:.2f} s CPU), ", end="")
    print(f"consistency answer {old_cons_s:.2f} s ({old_cons_cpu:.2f} s CPU), ", end="")
    print(f"holds {old_bytes / 1e6:.1f} MB (resident set grew {(old_rss or 0) / 1e6:.1f} MB)")

    # The new way: the service's cached subtree roots over the ledger.
    ctx = svc.context
    start, cpu = time.perf_counter(), time.process_time()
    doc = notes.inclusion(ctx, M, index + 1, n)
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert _b64s(doc["proof"]) == inc and signing.unb64(doc["root"], field="root", size=32) == root
    doc = notes.consistency(ctx, M, m, n)
    assert _b64s(doc["proof"]) == cons and signing.unb64(doc["from_root"], field="root", size=32) == root_m
    rng = random.Random(13)
    asks = [(rng.randint(1, n), rng.randint(1, n)) for _ in range(args.requests)]
    asks = [(min(a, b), max(a, b)) for a, b in asks]
    start, cpu = time.perf_counter(), time.process_time()
    for a, b in asks:
        notes.inclusion(ctx, M, a, b)
    new_inc_s, new_inc_cpu = (time.perf_counter() - start) / len(asks), (time.process_time() - cpu) / len(asks)
    start, cpu = time.perf_counter(), time.process_time()
    for a, b in asks:
        notes.consistency(ctx, M, a, b)
    new_cons_s, new_cons_cpu = (time.perf_counter() - start) / len(asks), (time.process_time() - cpu) / len(asks)
    new_bytes = _held_bytes(lambda: _new_tree(n))
    new_rss = _rss_growth(lambda: _new_tree(n))
    held = notes._TREES[svc.store][M].nbytes()
    svc.store.close()
    folder.cleanup()
    print(
        f"new tree (cached subtree roots, K = {SubtreeCache().level}): built from the ledger in {build_s:.2f} s ",
        end="",
    )
    print(f"({build_cpu:.2f} s CPU)")
    print(f"  inclusion answer {new_inc_s * 1e3:.2f} ms ({new_inc_cpu * 1e3:.2f} ms CPU), ", end="")
    print(f"consistency answer {new_cons_s * 1e3:.2f} ms ({new_cons_cpu * 1e3:.2f} ms CPU), mean of {len(asks)}")
    print(f"  holds {new_bytes / 1e6:.2f} MB ({held / 1e3:.0f} kB of hashes); the same proofs as the old")
    inc_x, cons_x = old_inc_cpu / new_inc_cpu, old_cons_cpu / new_cons_cpu
    print(f"ratios (CPU): inclusion {inc_x:,.0f}x faster, consistency {cons_x:,.0f}x, ", end="")
    print(f"memory {old_bytes / new_bytes:,.0f}x smaller")

    inc_verify = _per_call(lambda: merkle.verify_inclusion(leaves[index], index, n, inc, root), repeat)
    cons_verify = _per_call(lambda: merkle.verify_consistency(m, n, root_m, root, cons), repeat)
    print(f"inclusion proof of entry {index:,} in {n:,}: {len(inc)} hashes, {32 * len(inc)} bytes, ", end="")
    print(f"built in {inc_build:.2f} s, verified in {inc_verify * 1e6:.0f} µs")
    print(f"consistency proof {m:,} -> {n:,}: {len(cons)} hashes, {32 * len(cons)} bytes, ", end="")
    print(f"built in {cons_build:.2f} s, verified in {cons_verify * 1e6:.0f} µs")

    origin = note.origin(M)
    service = note.NoteSigner(origin, KeyPair.from_seed(bytes([1]) * 32))
    parties = [
        note.Cosigner(note.cosigner_name(M, p), KeyPair.from_seed(bytes([i + 2]) * 32))
        for i, p in enumerate(("TR", "IL"))
    ]
    text = note.Checkpoint(origin, n, root).body()
    signed = note.Note(text).signed(service.sign(text))
    now = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    for p in parties:
        signed = signed.signed(p.cosign(text, now))
    wire = signed.format()
    verifiers = [service.verifier, *(p.verifier for p in parties)]
    note_verify = _per_call(lambda: note.verify_note(note.parse_note(wire), verifiers), max(1, repeat // 10))
    print(
        f"checkpoint note, 3 signatures: {len(wire.encode())} bytes, parsed and verified in {note_verify * 1e3:.2f} ms"
    )

    print(
        json.dumps(
            {
                "entries": n,
                "root_streaming_s": round(root_s, 3),
                "root_streaming_cpu_s": round(root_cpu, 3),
                "root_entries_per_cpu_s": round(n / root_cpu),
                "compact_range_hashes": len(tree.hashes),
                "inclusion_proof_hashes": len(inc),
                "inclusion_proof_bytes": 32 * len(inc),
                "inclusion_build_s": round(inc_build, 3),
                "inclusion_verify_us": round(inc_verify * 1e6, 1),
                "consistency_from": m,
                "consistency_proof_hashes": len(cons),
                "consistency_proof_bytes": 32 * len(cons),
                "consistency_build_s": round(cons_build, 3),
                "consistency_verify_us": round(cons_verify * 1e6, 1),
                "old_tree_bytes": old_bytes,
                "old_inclusion_answer_s": round(old_inc_s, 3),
                "old_consistency_answer_s": round(old_cons_s, 3),
                "old_inclusion_answer_cpu_s": round(old_inc_cpu, 3),
                "old_consistency_answer_cpu_s": round(old_cons_cpu, 3),
                "old_tree_rss_growth_bytes": old_rss,
                "new_tree_bytes": new_bytes,
                "new_tree_rss_growth_bytes": new_rss,
                "new_tree_hash_bytes": held,
                "new_tree_build_from_ledger_s": round(build_s, 3),
                "new_tree_build_from_ledger_cpu_s": round(build_cpu, 3),
                "new_inclusion_answer_ms": round(new_inc_s * 1e3, 3),
                "new_consistency_answer_ms": round(new_cons_s * 1e3, 3),
                "new_inclusion_answer_cpu_ms": round(new_inc_cpu * 1e3, 3),
                "new_consistency_answer_cpu_ms": round(new_cons_cpu * 1e3, 3),
                "new_answers_averaged": len(asks),
                "inclusion_speedup_cpu": round(inc_x),
                "consistency_speedup_cpu": round(cons_x),
                "inclusion_speedup_wall": round(old_inc_s / new_inc_s),
                "consistency_speedup_wall": round(old_cons_s / new_cons_s),
                "tree_memory_ratio": round(old_bytes / new_bytes),
                "checkpoint_note_bytes": len(wire.encode()),
                "checkpoint_note_verify_ms": round(note_verify * 1e3, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
