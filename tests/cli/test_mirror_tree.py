"""A party's mirror keeps its Merkle tree as cached subtree roots (``record.merkle_cache``), reading a block
of ``2^K`` entry hashes back from its own ``entries.jsonl`` when a root or proof needs one: its roots,
leaves and consistency proofs are those computed over every leaf, a mirror restarted on its folder
rebuilds the same tree and goes on cosigning, and an entry changed on disk under it is refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from support.builders import M
from support.live import LiveServer

from deconflict.cli.mirror import ENTRIES, Mirror
from deconflict.client import Client
from deconflict.clock import FixedClock
from deconflict.errors import LedgerBroken
from deconflict.record import merkle, note, signing
from deconflict.service import record

TR_KEY = signing.KeyPair.from_seed(bytes([7]) * 32)
LEVEL = 2
"""Blocks of 4 entries: a few hundred entries make a tree many cached levels high."""


@pytest.fixture
def party_keys() -> dict[str, signing.KeyPair]:
    """Türkiye holds its own key, so its mirror may cosign; the service holds the others'."""
    return {"TR": TR_KEY}


def grow(live: LiveServer, clock: FixedClock, entries: int, start: int) -> list[int]:
    """``entries`` new members added, with a checkpoint signed now and then (at sizes not aligned to
    blocks) and one at the end; the sizes signed."""
    signed = []
    for i in range(start, start + entries):
        live.service.add_member(
            mechanism_id=M, member={"id": f"OBS{i}", "party": f"OBS{i}", "role": "observer", "name": f"Observer {i}"}
        )
        if i % 37 == 11 or i == start + entries - 1:
            clock.advance(seconds=60)
            doc = live.service.checkpoint(M)
            assert doc is not None
            signed.append(doc["seq"])
    return signed


def all_leaves(live: LiveServer) -> list[bytes]:
    return [merkle.entry_leaf(e["hash"]) for e in live.service.record(M)]


def same_tree(m: Mirror, leaves: list[bytes], pairs: list[tuple[int, int]]) -> None:
    """The mirror's leaves, roots at every size and consistency proofs equal the reference over all leaves."""
    held = m.held
    assert held.size == len(leaves)
    assert [held.leaf(i) for i in range(len(leaves))] == leaves
    assert [held.root_at(s) for s in range(len(leaves) + 1)] == [
        merkle.root(leaves[:s]) for s in range(len(leaves) + 1)
    ]
    for a, b in pairs:
        assert held.consistency_proof(a, b) == merkle.consistency_proof(leaves, a, b), (a, b)


def test_the_mirrors_tree_of_cached_subtrees_equals_the_tree_of_all_leaves_and_survives_a_restart(
    live: LiveServer, tokens: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    folder, said = tmp_path / "TR", []
    signed = grow(live, clock, 300, 0)
    mirror = Mirror(Client(live.url, tokens["TR"]), TR_KEY, folder, say=said.append, level=LEVEL)
    mirror.once()
    leaves = all_leaves(live)
    n = len(leaves)
    assert n > 300 and mirror.held.size == n

    # 1. Every checkpoint was checked against the tree held and cosigned (the service's consistency
    #    proofs, made from its own cached tree, verified against the mirror's roots).
    assert [f"cosigned checkpoint {s}" in " ".join(said) for s in signed] == [True] * len(signed), said
    assert [int(p.stem) for p in sorted((folder / "cosigned").glob("*.note"))] == signed
    assert [c["cosigned_by"] for c in record.checkpoints(live.service.context, M, with_cosignatures=True)] == [
        ["TR"]
    ] * len(signed)

    # 2. Roots, leaves and proofs equal those over every leaf; only the cached roots and one offset per
    #    block are kept (a list of leaves would be n × 32 bytes).
    rng = random.Random(13)
    randoms = [sorted((rng.randint(1, n), rng.randint(1, n))) for _ in range(300)]
    pairs = [(a, b) for a in range(1, n + 1) for b in (n, a)] + [(a, b) for a, b in randoms]
    same_tree(mirror, leaves, pairs)
    assert mirror.held.tree.nbytes() < 32 * ((n >> LEVEL) * 2 + (1 << LEVEL))
    assert len(mirror.held.starts) == -(-n // (1 << LEVEL))
    assert mirror.held.end == (folder / ENTRIES).stat().st_size

    # 3. Restarted on its folder (a line cut short by a crash at the end): the same tree, from what it saved.
    with (folder / ENTRIES).open("ab") as f:
        f.write(b'{"seq": ')
    again = Mirror(Client(live.url, tokens["TR"]), TR_KEY, folder, say=said.append, level=LEVEL)
    assert again.held.end == (folder / ENTRIES).stat().st_size == mirror.held.end  # the cut line is dropped
    assert list(again.held.starts) == list(mirror.held.starts)
    assert again.held.tree.nbytes() == mirror.held.tree.nbytes()
    assert again.witness.checkpoint is not None and again.witness.checkpoint.size == signed[-1]
    same_tree(again, leaves, pairs[: 2 * n : 7])

    # 4. It goes on: new entries and checkpoints, consistent with the one cosigned before the restart.
    more = grow(live, clock, 41, 300)
    again.once()
    leaves = all_leaves(live)
    assert again.held.size == len(leaves) and again.witness.checkpoint.size == more[-1]
    same_tree(again, leaves, [(s, more[-1]) for s in (1, 3, 4, n - 1, n, *signed, *more)])
    last = note.parse_checkpoint(note.parse_note(live.service.checkpoints(M)[-1]["note"]).text)
    assert last.root == again.held.root_at(last.size)

    # 4b. The evidence it would gather for a fork proof from the service's pages (a tree of cached roots
    #     too, its blocks asked of the service again): the reference prefix root and proof.
    a, b = signed[2], more[-1]
    got = {"from_root": signing.b64(bytes(32)), "proof": []}
    cps = [note.Checkpoint(note.origin(M), size, merkle.root(leaves[:size])) for size in (a, b)]
    assert again._evidence(got, *cps)[1] == (merkle.root(leaves[:a]), merkle.consistency_proof(leaves, a, b))

    # 5. An entry changed on disk under the running mirror: the block read back no longer gives its cached
    #    root, and the mirror says so, naming its file, rather than use it.
    data = (folder / ENTRIES).read_bytes().splitlines(keepends=True)
    h = leaves[1].hex()
    data[1] = data[1].replace(h.encode(), (("0" if h[0] != "0" else "1") + h[1:]).encode())
    (folder / ENTRIES).write_bytes(b"".join(data))
    with pytest.raises(LedgerBroken, match=r"entries.jsonl: the stored entries 1 to 4 no longer give"):
        again.held.root_at(3)
    with pytest.raises(LedgerBroken, match="entries.jsonl"):
        again.held.leaf(1)
    assert again.held.root_at(again.held.size) == merkle.root(leaves)  # the cached roots alone
