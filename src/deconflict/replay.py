"""Transitional: moved to deconflict.store.replay; deleted when every import uses the new home."""

from deconflict.store.replay import TABLES, replay, state

__all__ = ["TABLES", "replay", "state"]
