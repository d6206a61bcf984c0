"""CPU time of a few ways of doing the same work, measured so that a shared machine's noise does not decide.

The ways take turns, many rounds, with the collector held off, and each keeps its best round: a burst of
someone else's work (or a collection) lands on one call and not the other, and the best round of each is the
one least disturbed."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def best_cpu(*ways: Callable[[], object], rounds: int = 15) -> list[float]:
    """The best process CPU time, in seconds, of each of ``ways`` over ``rounds`` interleaved rounds."""
    best = [float("inf")] * len(ways)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for k, way in enumerate(ways):
                t0 = time.process_time()
                way()
                best[k] = min(best[k], time.process_time() - t0)
    finally:
        gc.enable()
    return best
