"""Tactical detection over track states: predicted loss of separation, and conformance of positions to volumes.

See :mod:`deconflict.tactical.predict` for the model (motion, reported figures, broad phase).
"""

from __future__ import annotations

from deconflict.tactical.predict import (
    BAND_FACTOR,
    CELL_DEG,
    CELL_SPEED,
    DEFAULT_HPZ_M,
    DEFAULT_LOOKAHEAD_S,
    DEFAULT_RPZ_M,
    MAX_FRAME_RADIUS_M,
    PAIR_CHUNK,
    SLICES,
    STRICT_M,
    THREADS,
    THREADS_FROM,
    TrackConflict,
    TrackConflictTable,
    Tracks,
    _frames,
    _plane,
    brute_force_track_conflicts,
    find_track_conflicts,
    tracks_in_volumes,
)

__all__ = [
    "BAND_FACTOR",
    "CELL_DEG",
    "CELL_SPEED",
    "DEFAULT_HPZ_M",
    "DEFAULT_LOOKAHEAD_S",
    "DEFAULT_RPZ_M",
    "MAX_FRAME_RADIUS_M",
    "PAIR_CHUNK",
    "SLICES",
    "STRICT_M",
    "THREADS",
    "THREADS_FROM",
    "TrackConflict",
    "TrackConflictTable",
    "Tracks",
    "brute_force_track_conflicts",
    "find_track_conflicts",
    "tracks_in_volumes",
]
