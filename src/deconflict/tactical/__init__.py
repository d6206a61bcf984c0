"""Tactical detection over track states: predicted loss of separation, and conformance of positions to volumes.

=============================================  ================================================
:mod:`~deconflict.tactical.tracks`             track states and predicted conflicts as columns
:mod:`~deconflict.tactical.predict`            the model (motion, reported figures, broad
                                               phase) and :func:`find_track_conflicts`
:mod:`~deconflict.tactical.conformance`        :func:`tracks_in_volumes`: positions inside
                                               volumes at one instant
``_motion``, ``_refine``                      tracks as chords in a conformal frame; pairs
                                               in doubt decided on the ellipsoid
``_kernel``, ``_numpy``                        the grid and the frame's exact test: compiled
                                               (numba) from ``NUMBA_FROM`` tracks, numpy below
=============================================  ================================================

Everything public is importable from ``deconflict.tactical`` itself.
"""

from __future__ import annotations

from deconflict.tactical._motion import CELL_DEG, MAX_FRAME_RADIUS_M
from deconflict.tactical._motion import _frames as _frames
from deconflict.tactical._motion import _plane as _plane
from deconflict.tactical._numpy import CELL_SPEED
from deconflict.tactical.conformance import tracks_in_volumes
from deconflict.tactical.predict import (
    COLD_NUMBA_FROM,
    DEFAULT_HPZ_M,
    DEFAULT_LOOKAHEAD_S,
    DEFAULT_RPZ_M,
    NUMBA_FROM,
    ONE_SHOT_NUMBA_FROM,
    SLICES,
    STRICT_M,
    THREADS,
    THREADS_FROM,
    brute_force_track_conflicts,
    find_track_conflicts,
    one_shot_numba_from,
)
from deconflict.tactical.tracks import TrackConflict, TrackConflictTable, Tracks

__all__ = [
    "CELL_DEG",
    "COLD_NUMBA_FROM",
    "CELL_SPEED",
    "DEFAULT_HPZ_M",
    "DEFAULT_LOOKAHEAD_S",
    "DEFAULT_RPZ_M",
    "MAX_FRAME_RADIUS_M",
    "NUMBA_FROM",
    "ONE_SHOT_NUMBA_FROM",
    "SLICES",
    "STRICT_M",
    "THREADS",
    "THREADS_FROM",
    "TrackConflict",
    "TrackConflictTable",
    "Tracks",
    "brute_force_track_conflicts",
    "find_track_conflicts",
    "one_shot_numba_from",
    "tracks_in_volumes",
]
