"""Transitional: moved to deconflict.store.projection; deleted when every import uses the new home."""

from deconflict.store.projection import Applier, applies, apply

__all__ = ["Applier", "applies", "apply"]
