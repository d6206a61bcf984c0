"""Transitional: moved to deconflict.record.bundle; deleted when every import uses the new home."""

from deconflict.record.bundle import FORMAT, PARALLEL_FROM, VERSION, entries, export, read_checkpoints, verify

__all__ = ["FORMAT", "PARALLEL_FROM", "VERSION", "entries", "export", "read_checkpoints", "verify"]
