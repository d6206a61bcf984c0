"""Transitional: moved to deconflict.record.chain, deconflict.record.verify (pure) and deconflict.store.ledger (SQL);
deleted when every import uses the new home."""

from deconflict.record.chain import (
    GENESIS_HASH,
    SERVICE,
    SERVICE_ACTORS,
    ChainReport,
    Head,
    Signer,
    canonical,
    checkpoint_doc,
    draft,
    entry_hash,
    sha256_hex,
)
from deconflict.record.verify import RING_TYPES, KeyRing, check_checkpoints, verify_docs, verify_lines
from deconflict.store.ledger import append, entry_doc, read_head, store_docs, verify_store

__all__ = [
    "GENESIS_HASH",
    "RING_TYPES",
    "SERVICE",
    "SERVICE_ACTORS",
    "ChainReport",
    "Head",
    "KeyRing",
    "Signer",
    "append",
    "canonical",
    "check_checkpoints",
    "checkpoint_doc",
    "draft",
    "entry_doc",
    "entry_hash",
    "read_head",
    "sha256_hex",
    "store_docs",
    "verify_docs",
    "verify_lines",
    "verify_store",
]
