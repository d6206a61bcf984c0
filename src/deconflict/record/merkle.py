"""The record as a Merkle tree (RFC 6962 / RFC 9162 §2.1): roots, inclusion and consistency proofs.

A checkpoint names one root for the whole record up to a size, so a party that kept the root
it cosigned at size ``m`` can check with ``O(log n)`` hashes that the record at size ``n``
still begins with the same ``m`` entries (a *consistency* proof), and that one entry is in
the record (an *inclusion* proof), without reading the rest.

Hashing is RFC 6962's, so any RFC 6962 tool computes the same roots:

* leaf hash ``SHA-256(0x00 || leaf)``, interior node ``SHA-256(0x01 || left || right)``;
* the root of ``n > 1`` leaves splits at ``k``, the largest power of two below ``n``;
* the root of no leaves is ``SHA-256("")``.

**What a leaf is.** Leaf ``i`` is the 32 raw bytes of entry ``i``'s chain hash (the hex
``hash`` of the entry with sequence number ``i + 1``, in sequence order; see
:func:`entry_leaf`). The chain hash already covers the entry's mechanism, number, time,
actor, type, payload hash and the hash before it, so a leaf commits to the whole entry and,
through ``prev_hash``, to the chain; and a conflicts-only copy that carries every entry's
hash (payloads withheld) still yields the same root.

Proofs are lists of 32-byte hashes ordered from the leaf upwards, as in RFC 9162. The
verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, and raise :class:`BadProof`
with a worded reason; they never return ``False`` to be ignored.

>>> root([]).hex()[:16]
'e3b0c44298fc1c14'
>>> leaves = [bytes([i]) * 32 for i in range(5)]
>>> verify_inclusion(leaves[3], 3, 5, inclusion_proof(leaves, 3, 5), root(leaves))
>>> verify_consistency(2, 5, root(leaves[:2]), root(leaves), consistency_proof(leaves, 2, 5))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from deconflict.errors import InvalidInput

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "BadProof",
    "CompactRange",
    "SubtreeRoot",
    "consistency_path",
    "consistency_proof",
    "entry_leaf",
    "inclusion_path",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of a tree with no leaves (RFC 9162 §2.1.1: the hash of the empty string)."""

_sha256 = hashlib.sha256


class BadProof(InvalidInput):
    """A Merkle proof that does not show what it claims (or is not a proof at all)."""


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || leaf)``."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def entry_leaf(entry_hash: str) -> bytes:
    """A record entry's leaf: the 32 bytes of its hex chain hash (lower case, 64 digits)."""
    value: object = entry_hash  # from parsed input: its type is checked too
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE:
        raise InvalidInput("hash: an entry's hash is 64 hex digits", field="hash")
    try:
        raw = bytes.fromhex(entry_hash)
    except ValueError:
        raise InvalidInput("hash: an entry's hash is 64 hex digits", field="hash") from None
    if raw.hex() != entry_hash:
        raise InvalidInput("hash: an entry's hash is written in lower-case hex", field="hash")
    return raw


class CompactRange:
    """The right edge of a growing tree: the roots of its perfect subtrees, largest first.

    A tree of ``n`` leaves is a sequence of perfect subtrees, one per set bit of ``n``, so
    appending needs at most ``log2(n)`` hashes kept; :meth:`root` folds them right to left,
    which is exactly RFC 6962's split at the largest power of two. A million-entry bundle is
    rooted streaming, entry by entry, in 20 hashes of memory.

    >>> r = CompactRange()
    >>> for i in range(5):
    ...     r.append(bytes([i]) * 32)
    >>> r.size, len(r.hashes), r.root() == root([bytes([i]) * 32 for i in range(5)])
    (5, 2, True)
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._hashes: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect subtrees' roots, left (largest) to right."""
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Add the next leaf (its data; hashed here)."""
        self.append_hash(_sha256(b"\x00" + leaf).digest())

    def append_hash(self, hashed: bytes) -> None:
        """Add the next leaf by its leaf hash: merge equal-sized subtrees while the size's low bits are set."""
        stack, size = self._hashes, self._size
        while size & 1:
            hashed = _sha256(b"\x01" + stack.pop() + hashed).digest()
            size >>= 1
        stack.append(hashed)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> CompactRange:
        for leaf in leaves:
            self.append(leaf)
        return self

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            acc = _sha256(b"\x01" + left + acc).digest()
        return acc


def root(leaves: Iterable[bytes]) -> bytes:
    """MTH: the RFC 6962 root of ``leaves`` (leaf data, in order), streaming."""
    return CompactRange().extend(leaves).root()


def _whole(value: object) -> bool:
    """A whole number (not a bool): sizes and indexes come from parsed input, so their type is checked."""
    return isinstance(value, int) and not isinstance(value, bool)


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    return CompactRange().extend(leaves[lo:hi]).root()


def _check_size(leaves: Sequence[bytes], size: int) -> None:
    if not _whole(size) or size < 0:
        raise InvalidInput(f"size: a tree size is a whole number ≥ 0, not {size!r}", field="size")
    if size > len(leaves):
        raise InvalidInput(f"size: {size} is more than the {len(leaves)} leaves given", field="size")


SubtreeRoot = Callable[[int, int], bytes]
"""``mth(lo, hi)``: MTH(D[lo:hi]) of a tree held some other way than as a list of leaves (its cached
nodes, say). The proof paths below ask only for RFC 6962 subtrees: ``lo`` is a multiple of the
smallest power of two ``>= hi - lo``, so ``D[lo:hi]`` is perfect subtrees of decreasing size from ``lo``."""


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1: the sibling roots from the leaf up to the root."""
    _check_size(leaves, size)
    return inclusion_path(lambda lo, hi: _mth(leaves, lo, hi), index, size)


def inclusion_path(mth: SubtreeRoot, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) over a tree given by its subtree roots: ``log2(size)`` calls of ``mth``.

    :func:`inclusion_proof` is this over a list of leaves; the service's tree answers ``mth`` from
    its cached nodes instead, so both give the same proof by construction.
    """
    if not _whole(size) or size < 0:
        raise InvalidInput(f"size: a tree size is a whole number ≥ 0, not {size!r}", field="size")
    if not _whole(index) or not 0 <= index < size:
        raise InvalidInput(f"index: {index!r} is not a leaf of a tree of {size}", field="index")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:  # descend, collecting siblings top-down; reversed at the end
        k = _split(hi - lo)
        if m < k:
            path.append(mth(lo + k, hi))
            hi = lo + k
        else:
            path.append(mth(lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], m: int, n: int) -> list[bytes]:
    """PROOF(m, D[0:n]) of RFC 9162 §2.1.4.1 for ``0 < m <= n`` (empty when ``m == n``)."""
    _check_size(leaves, n)
    return consistency_path(lambda lo, hi: _mth(leaves, lo, hi), m, n)


def consistency_path(mth: SubtreeRoot, m: int, n: int) -> list[bytes]:
    """PROOF(m, D[0:n]) over a tree given by its subtree roots (see :func:`inclusion_path`)."""
    if not _whole(n) or n < 0:
        raise InvalidInput(f"size: a tree size is a whole number ≥ 0, not {n!r}", field="size")
    if not _whole(m) or not 0 < m <= n:
        raise InvalidInput(f"size: a consistency proof runs from a size in 1..{n}, not {m!r}", field="size")
    proof: list[bytes] = []
    lo, hi, b = 0, n, True  # SUBPROOF(m - lo, D[lo:hi], b); appended after the recursion, so collected reversed
    while True:
        if m - lo == hi - lo:
            if not b:
                proof.append(mth(lo, hi))
            break
        k = _split(hi - lo)
        if m - lo <= k:
            proof.append(mth(lo + k, hi))
            hi = lo + k
        else:
            proof.append(mth(lo, lo + k))
            lo, b = lo + k, False
    proof.reverse()
    return proof


def _hash_arg(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise BadProof(f"{what}: a hash is {HASH_SIZE} bytes", field="proof")
    return bytes(value)


def _sizes(*pairs: tuple[str, object]) -> None:
    for name, value in pairs:
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64):
            raise BadProof(f"{name}: {value!r} is not a tree size or index (0 to 2^64 - 1)", field=name)


def root_from_inclusion_proof(hashed: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof of the leaf *hash* ``hashed`` at ``index`` implies (RFC 9162 §2.1.3.2)."""
    _sizes(("index", index), ("size", size))
    if index >= size:
        raise BadProof(f"index: leaf {index} is not in a tree of {size}", field="index")
    r = _hash_arg(hashed, "leaf hash")
    fn, sn = index, size - 1
    for i, p in enumerate(proof):
        p = _hash_arg(p, f"proof[{i}]")
        if sn == 0:
            raise BadProof(f"proof: {len(proof)} hashes is too many for leaf {index} of {size}", field="proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:  # a right edge: climb until the path turns
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise BadProof(f"proof: {len(proof)} hashes is too few for leaf {index} of {size}", field="proof")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (its data) is leaf ``index`` of the tree of ``size`` with ``root``; else BadProof."""
    expected = _hash_arg(root, "root")
    if root_from_inclusion_proof(leaf_hash(leaf), index, size, proof) != expected:
        raise BadProof(
            f"inclusion proof: leaf {index} with this proof gives a different root for size {size}", field="proof"
        )


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of size ``n`` with ``root_n`` begins with the tree of size ``m`` with ``root_m``.

    RFC 9162 §2.1.4.2 for ``0 < m < n``; for ``m == n`` the proof is empty and the roots are
    equal. A tree of size 0 has no consistency proof (RFC 9162 defines none; anything extends
    nothing), so ``m == 0`` is refused: a witness that has seen nothing checks nothing.
    Raises :class:`BadProof` naming what failed.
    """
    _sizes(("size", m), ("size", n))
    first, second = _hash_arg(root_m, "old root"), _hash_arg(root_n, "new root")
    path = [_hash_arg(p, f"proof[{i}]") for i, p in enumerate(proof)]
    if m > n:
        raise BadProof(f"consistency: the older tree ({m}) is larger than the newer ({n})", field="size")
    if m == 0:
        raise BadProof("consistency: a tree of size 0 has no consistency proof", field="size")
    if m == n:
        if path:
            raise BadProof(f"consistency: trees of equal size {m} need an empty proof", field="proof")
        if first != second:
            raise BadProof(f"consistency: two different roots for the same size {m}", field="root")
        return
    # 1. An empty path proves nothing between different sizes.
    if not path:
        raise BadProof(f"consistency: an empty proof from {m} to {n}", field="proof")
    # 2. When m is a power of two, the old root is itself a node of the new tree: start from it.
    if m & (m - 1) == 0:
        path.insert(0, first)
    # 3-4. Walk up from the old tree's last leaf, skipping levels where it is a right child.
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5-6. Rebuild both roots from the path.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise BadProof(f"consistency: {len(proof)} hashes is too many from {m} to {n}", field="proof")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:  # a right edge: climb until the path turns
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # 7. Both roots and the walk's end must match.
    if sn != 0:
        raise BadProof(f"consistency: {len(proof)} hashes is too few from {m} to {n}", field="proof")
    if fr != first:
        raise BadProof(f"consistency: the proof does not rebuild the old root at size {m}", field="root")
    if sr != second:
        raise BadProof(f"consistency: the proof does not rebuild the new root at size {n}", field="root")
