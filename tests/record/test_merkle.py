"""The record's Merkle tree against RFC 6962's reference vectors, and every proof up to 64 leaves.

The 8-leaf vectors are the standard ones of certificate-transparency-go and Trillian, as kept in
github.com/transparency-dev/merkle (commit 417fb0c314750d94e53942e9f92e79b6d35915db):
``testonly/constants.go`` (LeafInputs, RootHashes, NodeHashes) and ``cmd/proofgen/main.go``
(inclusionProofs, consistencyProofs; their leaf indexes are 1-based, ours 0-based).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.errors import InvalidInput
from deconflict.record import merkle
from deconflict.record.merkle import (
    EMPTY_ROOT,
    BadProof,
    CompactRange,
    consistency_proof,
    entry_leaf,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAVES = [
    h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = [  # RootHashes(): the root of the first n leaves, n = 1..8
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, 1-based as in proofgen; tree size; proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [  # (size 1, size 2, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def test_hashes_are_rfc6962s() -> None:
    """Empty root, leaf and node hashes (rfc6962/rfc6962_test.go in transparency-dev/merkle)."""
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert node_hash(b"N123", b"N456").hex() == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"


@pytest.mark.parametrize("n", range(0, 9))
def test_roots_of_the_reference_leaves(n: int) -> None:
    want = EMPTY_ROOT.hex() if n == 0 else ROOTS[n - 1]
    assert root(LEAVES[:n]).hex() == want
    r = CompactRange().extend(LEAVES[:n])
    assert r.root().hex() == want and r.size == n and len(r.hashes) == bin(n).count("1")


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    got = inclusion_proof(LEAVES, index - 1, size)
    assert [p.hex() for p in got] == proof
    verify_inclusion(LEAVES[index - 1], index - 1, size, got, h(ROOTS[size - 1]))


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY)
def test_consistency_vectors(m: int, n: int, proof: list[str]) -> None:
    got = consistency_proof(LEAVES, m, n)
    assert [p.hex() for p in got] == proof
    verify_consistency(m, n, h(ROOTS[m - 1]), h(ROOTS[n - 1]), got)


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


LEAVES64 = _leaves(64)
ROOTS64 = [root(LEAVES64[:n]) for n in range(65)]


def _flips(proof: list[bytes]) -> list[list[bytes]]:
    """Every proof with one bit changed (each byte's low and high bit, to keep the sweep quick)."""
    out = []
    for i, p in enumerate(proof):
        for byte in range(len(p)):
            for bit in (0, 7):
                q = bytearray(p)
                q[byte] ^= 1 << bit
                out.append([*proof[:i], bytes(q), *proof[i + 1 :]])
    return out


def test_every_inclusion_proof_up_to_64_verifies_and_one_flipped_bit_fails() -> None:
    for n in range(1, 65):
        for i in range(n):
            proof = inclusion_proof(LEAVES64, i, n)
            assert len(proof) <= (n - 1).bit_length()
            verify_inclusion(LEAVES64[i], i, n, proof, ROOTS64[n])
            if n in (1, 7, 33, 64):
                for bad in _flips(proof):
                    with pytest.raises(BadProof):
                        verify_inclusion(LEAVES64[i], i, n, bad, ROOTS64[n])


def test_every_consistency_proof_m_below_n_up_to_64_verifies_and_one_flipped_bit_fails() -> None:
    for n in range(1, 65):
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES64, m, n)
            verify_consistency(m, n, ROOTS64[m], ROOTS64[n], proof)
            for bad in _flips(proof) if n in (5, 8, 37, 64) else []:
                with pytest.raises(BadProof):
                    verify_consistency(m, n, ROOTS64[m], ROOTS64[n], bad)


def _flip(b: bytes, bit: int) -> bytes:
    q = bytearray(b)
    q[bit // 8] ^= 1 << (bit % 8)
    return bytes(q)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_bit_change_fails_consistency(data: st.DataObject) -> None:
    """One bit of either root or of any proof hash changed: the consistency proof fails."""
    n = data.draw(st.integers(2, 64))
    m = data.draw(st.integers(1, n - 1))
    proof, rm, rn = consistency_proof(LEAVES64, m, n), ROOTS64[m], ROOTS64[n]
    target = data.draw(st.integers(-2, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    if target == -2:
        rm = _flip(rm, bit)
    elif target == -1:
        rn = _flip(rn, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(BadProof):
        verify_consistency(m, n, rm, rn, proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_bit_change_fails_inclusion(data: st.DataObject) -> None:
    """One bit of the leaf, the root or any proof hash changed: the inclusion proof fails."""
    n = data.draw(st.integers(1, 64))
    i = data.draw(st.integers(0, n - 1))
    proof, leaf, r = inclusion_proof(LEAVES64, i, n), LEAVES64[i], ROOTS64[n]
    target = data.draw(st.integers(-2, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        r = _flip(r, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(BadProof):
        verify_inclusion(leaf, i, n, proof, r)


@pytest.mark.parametrize(
    ("m", "n", "proof", "words"),
    [
        (5, 4, [], "larger than the newer"),
        (0, 4, [], "size 0 has no consistency proof"),
        (4, 4, [bytes(32)], "equal size 4 need an empty proof"),
        (3, 8, [], "an empty proof from 3 to 8"),
    ],
)
def test_malformed_consistency_is_named(m: int, n: int, proof: list[bytes], words: str) -> None:
    with pytest.raises(BadProof, match=words):
        verify_consistency(m, n, ROOTS64[min(m, 64)], ROOTS64[n], proof)


def test_proofs_of_the_wrong_length_wrong_index_or_wrong_size_fail_with_a_reason() -> None:
    proof = inclusion_proof(LEAVES64, 5, 13)
    with pytest.raises(BadProof, match="too few"):
        verify_inclusion(LEAVES64[5], 5, 13, proof[:-1], ROOTS64[13])
    with pytest.raises(BadProof, match="too many"):
        verify_inclusion(LEAVES64[5], 5, 13, [*proof, bytes(32)], ROOTS64[13])
    with pytest.raises(BadProof, match="not in a tree of 13"):
        verify_inclusion(LEAVES64[5], 13, 13, proof, ROOTS64[13])
    with pytest.raises(BadProof, match="different root"):
        verify_inclusion(LEAVES64[5], 4, 13, proof, ROOTS64[13])
    with pytest.raises(BadProof, match="different root"):
        verify_inclusion(LEAVES64[5], 5, 14, proof, ROOTS64[14])
    with pytest.raises(BadProof, match="a hash is 32 bytes"):
        verify_inclusion(LEAVES64[5], 5, 13, [proof[0][:31], *proof[1:]], ROOTS64[13])
    with pytest.raises(BadProof, match="not a tree size"):
        root_from_inclusion_proof(leaf_hash(b""), -1, 13, proof)
    cons = consistency_proof(LEAVES64, 5, 13)
    with pytest.raises(BadProof, match="too many"):
        verify_consistency(5, 13, ROOTS64[5], ROOTS64[13], [*cons, bytes(32)])
    with pytest.raises(BadProof):
        verify_consistency(5, 13, ROOTS64[5], ROOTS64[13], cons[:-1])
    with pytest.raises(BadProof, match="old root"):
        verify_consistency(5, 13, ROOTS64[6], ROOTS64[13], cons)
    with pytest.raises(BadProof, match="new root"):
        verify_consistency(5, 13, ROOTS64[5], ROOTS64[12], cons)


def test_proof_makers_refuse_what_is_not_a_tree() -> None:
    with pytest.raises(InvalidInput, match="not a leaf of a tree of 8"):
        inclusion_proof(LEAVES64, 8, 8)
    with pytest.raises(InvalidInput, match="more than the 64 leaves"):
        consistency_proof(LEAVES64, 3, 65)
    with pytest.raises(InvalidInput, match="from a size in 1..8"):
        consistency_proof(LEAVES64, 0, 8)
    assert consistency_proof(LEAVES64, 8, 8) == []


def test_an_entry_leaf_is_its_chain_hash_in_bytes() -> None:
    assert entry_leaf("ab" * 32) == b"\xab" * 32
    for bad in ("ab" * 31, "AB" * 32, "zz" * 32, 7):
        with pytest.raises(InvalidInput, match="hash"):
            entry_leaf(bad)  # type: ignore[arg-type]


def test_streaming_memory_is_logarithmic() -> None:
    r = CompactRange()
    for i in range(1, 4097):
        r.append(i.to_bytes(4, "big"))
        assert len(r.hashes) == bin(i).count("1") <= 12
    assert merkle.root(i.to_bytes(4, "big") for i in range(1, 4097)) == r.root()
