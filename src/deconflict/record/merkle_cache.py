"""The record's Merkle tree held in a few hundred kilobytes: cached subtree roots, leaves read back on demand.

A tree of ``n`` leaves (RFC 6962) is made of *perfect* subtrees: the node of height ``h`` and index
``j`` is the root of leaves ``j·2^h .. (j+1)·2^h - 1``, and it never changes once its last leaf is in.
:class:`SubtreeCache` keeps, for every height ``h >= level`` (``level`` is ``K``, 8 by default), the
roots of all complete subtrees of that height, 32 bytes each, side by side in one ``bytearray`` per
height; and the leaves of the last, incomplete block of ``2^K`` leaves. Nothing below height ``K``
is kept for complete blocks: at a million entries and ``K = 8`` that is ``2 · 10^6 / 256 · 32`` bytes
≈ 250 kB instead of the 32 MB of raw leaves (about 100 MB as a Python list of ``bytes``).

Any RFC 6962 subtree ``D[lo:hi]`` a proof asks for is a run of perfect subtrees of decreasing size
from ``lo`` (:func:`pieces`); each piece of height ``>= K`` is one cached root, and a piece below
``K`` lies inside one block of ``2^K`` leaves, which :class:`TreeView` reads back from where the
leaves are stored (the service's ledger: one indexed range read of ``2^K`` chain hashes; a party's
mirror: its own entries file, one seek per block) and checks against
that block's cached root before using it. A proof thus costs ``O(log n)`` cached roots, at most two
block reads, and ``O(2^K + log n)`` hashes — a few hundred microseconds at a million entries, where
hashing every leaf took seconds.

The cache only grows by :meth:`SubtreeCache.extend`; a :class:`TreeView` is a snapshot of its first
``size`` leaves (the per-height arrays only ever gain nodes at their end, and the view copies the
small incomplete block), so a reader can work out a proof while another thread extends the tree.
Pure (in ``record``, so a party's mirror loads no database): the leaves of a block come from the
``reader`` it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from deconflict.errors import InvalidInput, LedgerBroken
from deconflict.record import merkle

__all__ = ["DEFAULT_LEVEL", "LeafReader", "SubtreeCache", "TreeView", "pieces", "subtrees"]

DEFAULT_LEVEL = 8
"""``K``: subtrees of ``2^K`` leaves and larger are cached; smaller ones are rehashed from their block."""

LeafReader = Callable[[int, int], list[bytes]]
"""``reader(lo, hi)``: the leaves (32-byte entry hashes) ``lo .. hi - 1`` as stored, in order."""

_H = merkle.HASH_SIZE
_sha256 = hashlib.sha256


def pieces(lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """The perfect subtrees ``(start, height)`` that make ``D[lo:hi]``, left to right: each the largest
    one aligned at its start that still fits (for an RFC 6962 subtree, sizes strictly decrease)."""
    while lo < hi:
        height = (hi - lo).bit_length() - 1
        if lo:
            height = min(height, (lo & -lo).bit_length() - 1)
        yield lo, height
        lo += 1 << height


class SubtreeCache:
    """One tree's cached subtree roots (heights ``>= level``) and the leaves of its incomplete last block.

    >>> leaves = [bytes([i]) * 32 for i in range(11)]
    >>> tree = SubtreeCache(level=2)
    >>> tree.extend(leaves)
    >>> view = tree.view(lambda lo, hi: leaves[lo:hi])
    >>> view.root(11) == merkle.root(leaves), view.root(6) == merkle.root(leaves[:6])
    (True, True)
    >>> view.inclusion_proof(4, 11) == merkle.inclusion_proof(leaves, 4, 11)
    True
    """

    __slots__ = ("_last", "_levels", "_size", "_tail", "level")

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if not 0 <= level <= 30:
            raise ValueError(f"level: 0 to 30, not {level}")
        self.level = level
        self._levels: list[bytearray] = []
        """``_levels[i]``: the roots of the complete subtrees of height ``level + i``, in order."""
        self._tail = bytearray()
        """The leaves (raw) of the last block, while it has fewer than ``2^level``."""
        self._size = 0
        self._last = b""

    @property
    def size(self) -> int:
        """How many leaves the tree has."""
        return self._size

    @property
    def last(self) -> bytes:
        """The last leaf (b"" when there is none): the chain hash the next entry must link to."""
        return self._last

    def nbytes(self) -> int:
        """The bytes of hashes held (what a million entries cost)."""
        return len(self._tail) + sum(len(a) for a in self._levels)

    def append(self, leaf: bytes) -> None:
        """Add the next leaf (an entry's 32-byte chain hash); a block that fills is hashed into the cache."""
        self.extend([leaf])

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaves in order: whole blocks are hashed straight into the cache, the rest join the tail.

        The caller serialises ``extend`` and :meth:`view` (the service holds its lock); a view already
        taken stays valid while the tree grows.
        """
        items = list(leaves)
        for leaf in items:
            if len(leaf) != _H:
                raise InvalidInput(f"hash: a leaf is {_H} bytes, not {len(leaf)}", field="hash")
        block, i = 1 << self.level, 0
        while i < len(items):
            have = len(self._tail) // _H
            if have == 0 and len(items) - i >= block:
                self._push(0, subtrees(items[i : i + block])[-1][0])
                i += block
            else:
                take = items[i : i + block - have]
                self._tail += b"".join(take)
                i += len(take)
                if len(self._tail) == _H << self.level:
                    full = self._tail
                    self._tail = bytearray()
                    self._push(0, subtrees([bytes(full[j : j + _H]) for j in range(0, len(full), _H)])[-1][0])
        if items:
            self._size += len(items)
            self._last = bytes(items[-1])

    def _push(self, i: int, node: bytes) -> None:
        """Add a complete node at height ``level + i`` and merge upwards while it completes a pair."""
        while True:
            if i == len(self._levels):
                self._levels.append(bytearray())
            row = self._levels[i]
            row += node
            count = len(row) // _H
            if count & 1:
                return
            node = merkle.node_hash(bytes(row[-2 * _H : -_H]), bytes(row[-_H:]))
            i += 1

    def view(self, reader: LeafReader) -> TreeView:
        """A snapshot of the tree as it is now; blocks below the cached heights are read with ``reader``."""
        return TreeView(self.level, self._size, list(self._levels), bytes(self._tail), reader)


class TreeView:
    """The first ``size`` leaves of a :class:`SubtreeCache`: roots and RFC 9162 proofs of any size up to it.

    Blocks read through ``reader`` are checked against their cached root, so leaves that differ from
    those the tree was built from (the ledger rewritten meanwhile) raise :class:`LedgerBroken` rather
    than give a wrong proof. Each block used is read and hashed once per view.
    """

    def __init__(self, level: int, size: int, levels: list[bytearray], tail: bytes, reader: LeafReader) -> None:
        self.level, self.size = level, size
        self._levels, self._tail, self._reader = levels, tail, reader
        self._tail_start = size - len(tail) // _H
        self._raw: dict[int, list[bytes]] = {}
        self._nodes: dict[int, list[list[bytes]]] = {}

    def node(self, start: int, height: int) -> bytes:
        """The root of the perfect subtree of ``2^height`` leaves from ``start`` (aligned, complete)."""
        if height >= self.level:
            j = (start >> height) * _H
            return bytes(self._levels[height - self.level][j : j + _H])
        b = start >> self.level
        nodes = self._nodes.get(b)
        if nodes is None:
            nodes = self._block(b)
        return nodes[height][(start - (b << self.level)) >> height]

    def leaf(self, index: int) -> bytes:
        """Leaf ``index`` (an entry's chain hash, raw)."""
        b = index >> self.level
        if b not in self._raw:
            self._block(b)
        return self._raw[b][index - (b << self.level)]

    def _block(self, b: int) -> list[list[bytes]]:
        """Block ``b``'s leaves, from the tail or read back and checked, and its complete subtrees' roots."""
        lo, hi = b << self.level, (b + 1) << self.level
        if lo >= self._tail_start:
            raw = [self._tail[i : i + _H] for i in range(0, len(self._tail), _H)]
            nodes = subtrees(raw)
        else:
            raw = self._reader(lo, hi)
            nodes = subtrees(raw) if len(raw) == hi - lo else []
            expected = bytes(self._levels[0][b * _H : (b + 1) * _H])
            if len(nodes) != self.level + 1 or nodes[-1][0] != expected:
                raise LedgerBroken(
                    f"the stored entries {lo + 1} to {hi} no longer give the Merkle root this tree was built from"
                )
        self._raw[b], self._nodes[b] = raw, nodes
        return nodes

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for an RFC 6962 subtree within the first ``size`` leaves (see merkle.SubtreeRoot)."""
        if not 0 <= lo < hi <= self.size:
            raise InvalidInput(f"size: leaves {lo} to {hi} are not in a tree of {self.size}", field="size")
        nodes = [self.node(start, height) for start, height in pieces(lo, hi)]
        acc = nodes[-1]
        for left in reversed(nodes[:-1]):
            acc = merkle.node_hash(left, acc)
        return acc

    def root(self, size: int) -> bytes:
        """The RFC 6962 root of the first ``size`` leaves."""
        return merkle.EMPTY_ROOT if size == 0 else self.mth(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The same as ``merkle.inclusion_proof(all_leaves, index, size)``, in ``O(log n)`` cached roots."""
        self._check(size)
        return merkle.inclusion_path(self.mth, index, size)

    def consistency_proof(self, m: int, n: int) -> list[bytes]:
        """The same as ``merkle.consistency_proof(all_leaves, m, n)``, in ``O(log n)`` cached roots."""
        self._check(n)
        return merkle.consistency_path(self.mth, m, n)

    def _check(self, size: object) -> None:
        if isinstance(size, int) and size > self.size:
            raise InvalidInput(f"size: {size} is more than the {self.size} leaves held", field="size")


def subtrees(leaves: list[bytes]) -> list[list[bytes]]:
    """The roots of the complete aligned subtrees over ``leaves``, by height: ``[0]`` the leaf hashes,
    ``[h][j]`` the root of leaves ``j·2^h .. (j+1)·2^h - 1`` (an odd one out at a height has no parent)."""
    row = [_sha256(b"\x00" + leaf).digest() for leaf in leaves]
    rows = [row]
    while len(row) > 1:
        row = [_sha256(b"\x01" + row[i] + row[i + 1]).digest() for i in range(0, len(row) - 1, 2)]
        rows.append(row)
    return rows
