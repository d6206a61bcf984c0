"""The service's Merkle tree from cached subtree roots gives byte for byte the roots and proofs of
record/merkle.py's reference over all leaves, for every size up to 300 and sizes around powers of
two, at small ``K``; it reads back at most two blocks per proof, holds a few hundred kB at a million
leaves, follows the ledger when it is rewritten, and refuses leaves that no longer match its roots."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
from typing import Any

import pytest
from support import insider
from support.builders import M

from deconflict.clock import FixedClock
from deconflict.errors import InvalidInput, LedgerBroken
from deconflict.record import merkle, note, signing
from deconflict.record.merkle_cache import SubtreeCache, TreeView, pieces
from deconflict.service import Service
from deconflict.service import checkpoints as notes


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{salt}/{i}".encode()).digest() for i in range(n)]


class _Reads:
    """A leaf reader over a list that counts the blocks asked for."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves, self.calls = leaves, 0

    def __call__(self, lo: int, hi: int) -> list[bytes]:
        self.calls += 1
        return self.leaves[lo:hi]


def _grown(leaves: list[bytes], level: int) -> SubtreeCache:
    tree = SubtreeCache(level)
    tree.extend(leaves)
    return tree


ALL = _leaves(1100)


@pytest.mark.parametrize("level", [0, 1, 3])
def test_every_size_up_to_300_gives_the_references_roots_and_proofs(level: int) -> None:
    """The tree grows one leaf at a time; at each size n its root, every consistency proof to n (from
    sampled sizes past 100), inclusion proofs of sampled leaves, and roots and proofs at smaller sizes
    (which read complete blocks back) equal the reference's over all leaves."""
    rng = random.Random(level)
    tree = SubtreeCache(level)
    for n in range(1, 301):
        tree.append(ALL[n - 1])
        leaves = ALL[:n]
        view = tree.view(_Reads(leaves))
        assert view.root(n) == merkle.root(leaves)
        froms = range(1, n + 1) if n <= 100 else sorted({1, n - 1, n, *rng.sample(range(1, n + 1), 10)})
        for m in froms:
            assert view.consistency_proof(m, n) == merkle.consistency_proof(leaves, m, n), (m, n)
        for index in {0, n - 1, *rng.sample(range(n), min(n, 4))}:
            assert view.inclusion_proof(index, n) == merkle.inclusion_proof(leaves, index, n), (index, n)
            assert view.leaf(index) == leaves[index]
        size = rng.randint(1, n)
        assert view.root(size) == merkle.root(leaves[:size])
        index = rng.randrange(size)
        assert view.inclusion_proof(index, size) == merkle.inclusion_proof(leaves, index, size), (index, size)


def test_every_proof_up_to_48_is_the_references() -> None:
    """Exhaustively, at K = 2: every (index, size) and every (m, n) up to 48 leaves."""
    leaves = ALL[:48]
    view = _grown(leaves, 2).view(_Reads(leaves))
    for n in range(1, 49):
        for i in range(n):
            assert view.inclusion_proof(i, n) == merkle.inclusion_proof(leaves, i, n), (i, n)
        for m in range(1, n + 1):
            assert view.consistency_proof(m, n) == merkle.consistency_proof(leaves, m, n), (m, n)


@pytest.mark.parametrize("level", [2, 4, 8])
def test_sizes_around_powers_of_two(level: int) -> None:
    sizes = sorted({s for p in range(1, 11) for s in (2**p - 1, 2**p, 2**p + 1) if s <= len(ALL)} | {1000, 1100})
    for n in sizes:
        leaves = ALL[:n]
        view = _grown(leaves, level).view(_Reads(leaves))
        assert view.root(n) == merkle.root(leaves)
        for m in sorted(m for m in {1, 2, n // 2, n - 1, n, *sizes} if 1 <= m <= n):
            assert view.consistency_proof(m, n) == merkle.consistency_proof(leaves, m, n), (m, n)
            assert view.root(m) == merkle.root(leaves[:m])
        for index in sorted(i for i in {0, 1, n // 3, n // 2, n - 2, n - 1} if 0 <= i < n):
            assert view.inclusion_proof(index, n) == merkle.inclusion_proof(leaves, index, n), (index, n)


def test_a_proof_reads_at_most_two_blocks_and_the_cache_is_small() -> None:
    n, level = 5000, 4
    leaves = _leaves(n, 1)
    tree = _grown(leaves, level)
    assert tree.nbytes() < 2 * (n >> level) * 32 + (32 << level)
    rng = random.Random(7)
    for _ in range(50):
        reads = _Reads(leaves)
        view = tree.view(reads)
        size = rng.randint(1, n)
        index, m = rng.randrange(size), rng.randint(1, size)
        assert view.inclusion_proof(index, size) == merkle.inclusion_proof(leaves, index, size)
        assert view.consistency_proof(m, size) == merkle.consistency_proof(leaves, m, size)
        assert reads.calls <= 4  # two per proof at most: the block of index (or m) and that of size


def test_a_view_is_a_snapshot_while_the_tree_grows() -> None:
    leaves = _leaves(3000, 2)
    tree = _grown(leaves[:1000], 3)
    view = tree.view(_Reads(leaves))
    expected = merkle.root(leaves[:1000]), merkle.inclusion_proof(leaves, 999, 1000)
    done = threading.Event()

    def grow() -> None:
        tree.extend(leaves[1000:])
        done.set()

    worker = threading.Thread(target=grow)
    worker.start()
    while not done.is_set():
        assert (view.root(1000), view.inclusion_proof(999, 1000)) == expected
    worker.join()
    assert tree.view(_Reads(leaves)).root(3000) == merkle.root(leaves)
    assert view.size == 1000 and (view.root(1000), view.inclusion_proof(999, 1000)) == expected


def test_leaves_read_back_that_differ_from_the_cached_roots_are_refused() -> None:
    leaves = _leaves(40, 3)
    tree = _grown(leaves, 3)
    edited = list(leaves)
    edited[5] = bytes(32)
    with pytest.raises(LedgerBroken, match="entries 1 to 8 no longer give the Merkle root"):
        tree.view(_Reads(edited)).inclusion_proof(5, 40)
    with pytest.raises(LedgerBroken):
        tree.view(lambda lo, hi: leaves[lo : hi - 1]).inclusion_proof(5, 40)  # one missing


def test_bad_sizes_are_named() -> None:
    leaves = _leaves(10, 4)
    view: TreeView = _grown(leaves, 2).view(_Reads(leaves))
    with pytest.raises(InvalidInput, match="size: 11 is more than the 10 leaves held"):
        view.inclusion_proof(0, 11)
    with pytest.raises(InvalidInput, match="index: 10 is not a leaf of a tree of 10"):
        view.inclusion_proof(10, 10)
    with pytest.raises(InvalidInput, match="from a size in 1..10, not 0"):
        view.consistency_proof(0, 10)
    with pytest.raises(InvalidInput, match="a leaf is 32 bytes"):
        SubtreeCache(2).append(b"short")
    assert view.root(0) == merkle.EMPTY_ROOT


def test_pieces_are_aligned_perfect_subtrees() -> None:
    assert list(pieces(0, 11)) == [(0, 3), (8, 1), (10, 0)]
    assert list(pieces(8, 16)) == [(8, 3)]
    for lo in range(0, 64):
        for hi in range(lo + 1, 70):
            got = list(pieces(lo, hi))
            assert sum(1 << h for _, h in got) == hi - lo
            assert all(start % (1 << h) == 0 for start, h in got)


# --- the service's tree over the ledger ------------------------------------------------------------------


def _record_leaves(svc: Service) -> list[bytes]:
    return [merkle.entry_leaf(e["hash"]) for e in svc.record(M)]


def _b64s(doc: dict[str, Any]) -> list[bytes]:
    return [signing.unb64(h, field="proof", size=32) for h in doc["proof"]]


def _assert_the_references(svc: Service, *, every: bool) -> None:
    """The service's answers for every (or the last few) sizes equal the reference over the ledger's leaves."""
    ctx, ref = svc.context, _record_leaves(svc)
    n = len(ref)
    for size in range(1, n + 1) if every else range(max(1, n - 3), n + 1):
        for seq in range(1, size + 1):
            doc = notes.inclusion(ctx, M, seq, size)
            assert _b64s(doc) == merkle.inclusion_proof(ref, seq - 1, size), (seq, size)
            assert doc["hash"] == ref[seq - 1].hex()
            assert signing.unb64(doc["root"], field="root", size=32) == merkle.root(ref[:size])
        for first in range(1, size + 1):
            doc = notes.consistency(ctx, M, first, size)
            assert _b64s(doc) == merkle.consistency_proof(ref, first, size), (first, size)
            assert signing.unb64(doc["from_root"], field="root", size=32) == merkle.root(ref[:first])


def _grow(svc: Service, count: int, prefix: str) -> None:
    for i in range(count):
        member = {"id": f"{prefix}{i}", "party": f"{prefix}{i}", "role": "observer", "name": "Observer"}
        svc.add_member(mechanism_id=M, member=member)


@pytest.fixture
def small_k(svc: Service, monkeypatch: pytest.MonkeyPatch) -> Service:
    """The service with trees of K = 2 (blocks of 4 entries), so that a short record has many blocks."""
    monkeypatch.setattr(notes, "SUBTREE_LEVEL", 2)
    notes._TREES.pop(svc.context.store, None)
    return svc


def test_the_services_proofs_and_roots_are_the_references_over_the_ledger(small_k: Service, clock: FixedClock) -> None:
    svc = small_k
    _grow(svc, 12, "O")
    _assert_the_references(svc, every=True)
    tree = notes._TREES[svc.context.store][M]
    _grow(svc, 5, "P")  # extended, not rebuilt
    _assert_the_references(svc, every=False)
    assert notes._TREES[svc.context.store][M] is tree
    clock.advance(seconds=60)
    doc = svc.checkpoint(M)
    assert doc is not None
    cp, _ = note.open_checkpoint(doc["note"], note.parse_vkey(notes.note_keys(svc.context, M)["service"]))
    assert (cp.size, cp.root) == (len(_record_leaves(svc)), merkle.root(_record_leaves(svc)))


@pytest.mark.parametrize("entries", [3, 6])
def test_a_ledger_rewritten_by_another_process_rebuilds_the_tree(small_k: Service, db: str, entries: int) -> None:
    """The operator forks the stored record under a running service (to the same length, or longer):
    the next proof follows the ledger as it is now."""
    svc = small_k
    _grow(svc, 10, "O")
    n = len(_record_leaves(svc))
    notes.inclusion(svc.context, M, 1, n)  # the tree is built
    insider.fork(db, M, from_seq=n - 2, entries=entries)
    assert len(_record_leaves(svc)) == n - 3 + entries
    _assert_the_references(svc, every=False)


def test_a_stored_hash_edited_in_place_is_followed_after_the_block_check_fails(small_k: Service, db: str) -> None:
    svc = small_k
    _grow(svc, 10, "O")
    n = len(_record_leaves(svc))
    notes.inclusion(svc.context, M, 1, n)
    tree = notes._TREES[svc.context.store][M]
    con = sqlite3.connect(db)
    with con:
        con.execute("update ledger set hash = ? where mechanism_id = ? and seq = 3", ("ab" * 32, M))
    con.close()
    _assert_the_references(svc, every=False)  # entry 3's block no longer matched: rebuilt from the ledger
    assert notes._TREES[svc.context.store][M] is not tree


def test_proof_sizes_out_of_range_are_named(small_k: Service) -> None:
    n = len(_record_leaves(small_k))
    with pytest.raises(InvalidInput, match=f"size: the record has entries 1 to {n}, not {n + 1}"):
        notes.inclusion(small_k.context, M, 1, n + 1)
    with pytest.raises(InvalidInput, match="seq: expected 1 to 2, not 3"):
        notes.inclusion(small_k.context, M, 3, 2)


def test_a_missing_stored_entry_is_named(small_k: Service, db: str) -> None:
    _grow(small_k, 6, "O")
    con = sqlite3.connect(db)
    with con:
        con.execute("delete from ledger where mechanism_id = ? and seq = 5", (M,))
    con.close()
    with pytest.raises(InvalidInput, match=f"the record of {M} has no entry 5"):
        notes.inclusion(small_k.context, M, 1, 2)


def test_blocks_that_never_match_raise_after_one_rebuild(small_k: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    _grow(small_k, 10, "O")
    n = len(_record_leaves(small_k))
    monkeypatch.setattr(notes, "_reader", lambda s, m: lambda lo, hi: [bytes(32)] * (hi - lo))
    with pytest.raises(LedgerBroken, match="entries 1 to 4 no longer give the Merkle root"):
        notes.inclusion(small_k.context, M, 1, n)
    assert M not in notes._TREES[small_k.context.store]  # dropped: the next answer starts from the ledger
