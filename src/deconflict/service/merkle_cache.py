"""Moved to :mod:`deconflict.record.merkle_cache` (pure, so a party's mirror can use it too).

Kept only as a re-export for ``bench/merkle.py``, which still imports it from here; once that
import names ``deconflict.record.merkle_cache``, this module can go.
"""

from deconflict.record.merkle_cache import DEFAULT_LEVEL, LeafReader, SubtreeCache, TreeView, pieces, subtrees

__all__ = ["DEFAULT_LEVEL", "LeafReader", "SubtreeCache", "TreeView", "pieces", "subtrees"]
