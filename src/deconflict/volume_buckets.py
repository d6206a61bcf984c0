"""The layout of :class:`~deconflict.volumes.VolumeIndex` (and of ``deconflict check``'s batch search):
time-bucket levels, Morton order within a bucket, runs of the packed tree."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BUCKET_BASE_S", "BUCKET_GROWTH", "BUCKET_LEVELS", "BUCKET_SPLIT", "CIRCLE", "NODE_SLOTS", "OTHER", "RING"]

BUCKET_BASE_S = 900.0
"""Longest window (s) at time-bucket level 0; level ``l`` holds windows up to ``BUCKET_BASE_S * 4**l``."""
BUCKET_GROWTH = 4.0
"""Ratio of the longest window between one time-bucket level and the next."""
BUCKET_SPLIT = 2
"""Buckets per level's longest window: bucket width is ``BUCKET_BASE_S * 4**l / BUCKET_SPLIT`` seconds."""
BUCKET_LEVELS = 20
"""Levels with time buckets (up to ~10⁹ years); longer or unbounded windows go to one shared bucket."""

NODE_SLOTS = 32
"""Slots per leaf of the packed tree: consecutive slots of one bucket in Morton order, with their envelope."""


def _morton(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Z-order codes (32 bits) of points, 16 bits per axis over their bounding box."""

    def spread(v: np.ndarray) -> np.ndarray:
        v = (v | (v << 8)) & 0x00FF00FF
        v = (v | (v << 4)) & 0x0F0F0F0F
        v = (v | (v << 2)) & 0x33333333
        v = (v | (v << 1)) & 0x55555555
        return v

    def grid(v: np.ndarray) -> np.ndarray:
        lo, span = float(v.min()), float(np.ptp(v))
        return ((v - lo) * (65535.0 / span if span > 0 else 0.0)).astype(np.int64)

    codes: np.ndarray = spread(grid(x)) | (spread(grid(y)) << 1)
    return codes


def _expand(start: np.ndarray, count: np.ndarray, step: int) -> np.ndarray:
    """``start[k] + step * i`` for i in ``range(count[k])``, for every k in turn, as one array."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offset = np.repeat(start - step * (np.cumsum(count) - count), count)
    expanded: np.ndarray = offset + step * np.arange(total, dtype=np.int64)
    return expanded


def _levels(duration_s: np.ndarray) -> np.ndarray:
    """Time-bucket level of each window length: the least ``l`` with ``duration <= BASE * 4**l``."""
    level: np.ndarray
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.ceil(np.log(np.maximum(duration_s, BUCKET_BASE_S) / BUCKET_BASE_S) / math.log(BUCKET_GROWTH))
    level = np.nan_to_num(level, nan=BUCKET_LEVELS, posinf=BUCKET_LEVELS)
    level = np.minimum(level, BUCKET_LEVELS).astype(np.int64)
    # guard the logarithm's rounding: every window must fit its level's longest window
    short = (level < BUCKET_LEVELS) & ~(duration_s <= BUCKET_BASE_S * BUCKET_GROWTH ** np.minimum(level, BUCKET_LEVELS))
    level[short] += 1
    return level


CIRCLE, RING, OTHER = 0, 1, 2
"""Kinds of footprint in the compiled query: a circle (centre and radius), a polygon of one ring, anything else."""
