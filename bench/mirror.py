"""Mirror benchmark: the memory and time of a party mirror's Merkle tree at 1,000,000 entries, the former
list of every leaf against the :class:`~deconflict.record.merkle_cache.SubtreeCache` it keeps now.

    scripts/uv run python bench/mirror.py [--entries 1000000] [--level 8] [--pad 200] [--requests 20]

* old: every leaf (an entry's 32-byte chain hash) in a Python list plus a compact range over them, as
  ``cli/mirror.py``'s ``Held`` did; a root at any size but the head hashed every leaf up to it, and a
  consistency proof hashed over all leaves.
* new: ``cli.mirror.Held``'s tree (cached roots of the subtrees of ``2^K`` entries and more, the last
  block's hashes) and its one byte offset per block, built as a mirror restarted on its folder builds
  them, reading ``entries.jsonl`` line by line; roots and proofs read at most two blocks back from the
  file (one seek each) and check them against their cached roots. The file here holds stand-in lines
  (the entry's hash, its number and ``--pad`` bytes of payload: a real entry is larger and parses
  slower); it is written in a temporary folder and removed at the end. The verifier a mirror also
  runs over each entry is not part of either figure.
* memory: what the tree holds once built, by ``tracemalloc``; times: wall and CPU per call, the mean
  over ``--requests`` random sizes; every new answer is checked against the old one.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deconflict.cli.mirror import Held
from deconflict.record import merkle


def _stand_in(i: int) -> str:
    """Entry ``i``'s stand-in chain hash, in hex."""
    return hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


def _held(build: Callable[[], Any]) -> tuple[Any, int, float, float]:
    """What ``build`` returns, the bytes it still holds (tracemalloc), and its wall and CPU seconds."""
    gc.collect()
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    made = build()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.collect()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return made, size, wall, cpu


def _timed(fn: Callable[[int], Any], args: list[int]) -> tuple[list[Any], float, float]:
    """``fn`` over ``args``: the answers and the mean wall and CPU seconds per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = [fn(a) for a in args]
    return out, (time.perf_counter() - wall) / len(args), (time.process_time() - cpu) / len(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--level", type=int, default=8, help="K: subtrees of 2^K entries and more are cached")
    parser.add_argument("--pad", type=int, default=200, help="bytes of payload in each stand-in line")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    n, rng = args.entries, random.Random(1)

    def old() -> tuple[list[bytes], merkle.CompactRange]:
        leaves, top = [], merkle.CompactRange()
        for i in range(n):
            leaf = merkle.entry_leaf(_stand_in(i))
            leaves.append(leaf)
            top.append(leaf)
        return leaves, top

    (leaves, _), old_bytes, old_wall, old_cpu = _held(old)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "entries.jsonl"
        with path.open("wb") as f:
            for i in range(n):
                doc = {"hash": _stand_in(i), "payload": {"pad": "x" * args.pad}, "seq": i + 1}
                f.write((json.dumps(doc, sort_keys=True) + "\n").encode())

        def new() -> Held:
            held, block = Held("bench", path, level=args.level), 1 << args.level
            with path.open("rb") as f:  # as Held.load does, without the verifier
                for line in f:
                    if held.tree.size % block == 0:
                        held.starts.append(held.end)
                    held.tree.append(merkle.entry_leaf(json.loads(line)["hash"]))
                    held.end += len(line)
            return held

        held, new_bytes, new_wall, new_cpu = _held(new)
        sizes = [rng.randint(1, n) for _ in range(args.requests)]
        roots, root_wall, root_cpu = _timed(held.root_at, sizes)
        proofs, cons_wall, cons_cpu = _timed(lambda m: held.consistency_proof(m, n), sizes)
        few = sizes[: max(1, min(3, len(sizes)))]
        old_roots, old_root_wall, old_root_cpu = _timed(lambda s: merkle.root(leaves[:s]), few)
        old_proofs, old_cons_wall, old_cons_cpu = _timed(lambda m: merkle.consistency_proof(leaves, m, n), few)
        assert roots[: len(few)] == old_roots and proofs[: len(few)] == old_proofs
        file_mb = path.stat().st_size / 1e6

    figures = {
        "entries": n,
        "level": args.level,
        "file_mb": round(file_mb, 1),
        "old_tree_mb": round(old_bytes / 1e6, 1),
        "new_tree_kb": round(new_bytes / 1e3, 1),
        "new_cache_kb": round(held.tree.nbytes() / 1e3, 1),
        "new_offsets_kb": round(len(held.starts) * held.starts.itemsize / 1e3, 1),
        "old_build_us_per_entry": round(old_cpu / n * 1e6, 2),
        "new_build_us_per_entry": round(new_cpu / n * 1e6, 2),
        "old_root_ms": round(old_root_cpu * 1e3, 1),
        "new_root_ms": round(root_cpu * 1e3, 2),
        "old_consistency_ms": round(old_cons_cpu * 1e3, 1),
        "new_consistency_ms": round(cons_cpu * 1e3, 2),
        "wall_s": {
            "old_build": round(old_wall, 2),
            "new_build": round(new_wall, 2),
            "old_root": round(old_root_wall, 3),
            "new_root": round(root_wall, 4),
            "old_consistency": round(old_cons_wall, 3),
            "new_consistency": round(cons_wall, 4),
        },
    }
    print(
        f"{n:,} entries, K={args.level}: tree held {old_bytes / 1e6:.1f} MB (list of leaves) -> "
        f"{new_bytes / 1e3:.0f} kB (cached roots {held.tree.nbytes() / 1e3:.0f} kB + offsets); "
        f"root at a random size {old_root_cpu * 1e3:.0f} ms -> {root_cpu * 1e3:.2f} ms CPU; "
        f"consistency proof {old_cons_cpu * 1e3:.0f} ms -> {cons_cpu * 1e3:.2f} ms CPU"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
