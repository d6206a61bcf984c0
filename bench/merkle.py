"""Merkle benchmark: the root of a 1,000,000-entry record streamed, proof sizes at that size, and
the time to verify an inclusion proof, a consistency proof and a cosigned checkpoint note.

    python bench/merkle.py [--entries 1000000] [--repeat 2000]

* root: :class:`deconflict.record.merkle.CompactRange` over the entries' 32-byte chain hashes,
  one at a time (what a verifier does while streaming a bundle), in O(log n) memory.
* proofs: an inclusion proof for the entry a third of the way in, and a consistency proof from
  a checkpoint at 500,000 + 12,345 entries to the full record (built from the leaves in memory,
  O(n) hashing each; a service would keep the tree's nodes instead).
* verify: each proof checked ``--repeat`` times; a checkpoint note signed by the service and
  cosigned by two parties, parsed and verified.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from deconflict.record import merkle, note
from deconflict.record.signing import KeyPair


def _per_call(fn: Any, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    n, repeat = args.entries, args.repeat

    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]  # stand-ins for chain hashes

    start, cpu = time.perf_counter(), time.process_time()
    tree = merkle.CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    root = tree.root()
    root_s, root_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"root of {n:,} entries streamed: {root_s:.2f} s wall, {root_cpu:.2f} s CPU, {len(tree.hashes)} hashes kept")

    index, m = n // 3, min(n, n // 2 + 12_345)
    start = time.perf_counter()
    inc = merkle.inclusion_proof(leaves, index, n)
    inc_build = time.perf_counter() - start
    start = time.perf_counter()
    cons = merkle.consistency_proof(leaves, m, n)
    cons_build = time.perf_counter() - start
    root_m = merkle.root(leaves[:m])

    inc_verify = _per_call(lambda: merkle.verify_inclusion(leaves[index], index, n, inc, root), repeat)
    cons_verify = _per_call(lambda: merkle.verify_consistency(m, n, root_m, root, cons), repeat)
    print(f"inclusion proof of entry {index:,} in {n:,}: {len(inc)} hashes, {32 * len(inc)} bytes, ", end="")
    print(f"built in {inc_build:.2f} s, verified in {inc_verify * 1e6:.0f} µs")
    print(f"consistency proof {m:,} -> {n:,}: {len(cons)} hashes, {32 * len(cons)} bytes, ", end="")
    print(f"built in {cons_build:.2f} s, verified in {cons_verify * 1e6:.0f} µs")

    origin = note.origin("tr-il-syria")
    service = note.NoteSigner(origin, KeyPair.from_seed(bytes([1]) * 32))
    parties = [
        note.Cosigner(note.cosigner_name("tr-il-syria", p), KeyPair.from_seed(bytes([i + 2]) * 32))
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
                "checkpoint_note_bytes": len(wire.encode()),
                "checkpoint_note_verify_ms": round(note_verify * 1e3, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
