"""Spreading the verifier's per-entry work over processes: signatures in batches, bundle lines read ahead.

:class:`Signatures` queues signature checks and remembers the first that fails; :func:`ahead`
works out the facts of a bundle's lines a few batches ahead of the sequential pass; :func:`processes`
gives the worker processes (none for one worker: everything then runs inline).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from deconflict.record import signing
from deconflict.record.facts import Facts, line_facts

__all__ = ["LINE_BATCH", "SIGNATURE_BATCH", "Signatures", "ahead", "batched", "first_bad_signature", "processes"]


SIGNATURE_BATCH = 4096
"""Signatures checked together (in a worker process when there are several)."""
LINE_BATCH = 2000
"""Bundle lines worked out together in a worker process."""


def first_bad_signature(batch: list[tuple[int, str, str, str]]) -> int | None:
    """The first sequence number in ``batch`` whose signature does not verify, or None."""
    for seq, public_key, digest, signature in batch:
        if not signing.verify(public_key, signing.entry_message(digest), signature):
            return seq
    return None


class Signatures:
    """Signature checks queued in batches, run inline or in worker processes; remembers the first failure."""

    def __init__(self, pool: ProcessPoolExecutor | None) -> None:
        self.pool = pool
        self.batch: list[tuple[int, str, str, str]] = []
        self.pending: list[Future[int | None]] = []
        self.first_bad: int | None = None

    def add(self, seq: int, public_key: str, digest: str, signature: str) -> None:
        self.batch.append((seq, public_key, digest, signature))
        if len(self.batch) >= SIGNATURE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.batch:
            return
        if self.pool is None:
            self.note(first_bad_signature(self.batch))
        else:
            self.pending.append(self.pool.submit(first_bad_signature, self.batch))
            if len(self.pending) > 8:  # bound memory: wait for the oldest
                self.note(self.pending.pop(0).result())
        self.batch = []

    def note(self, bad: int | None) -> None:
        if bad is not None and (self.first_bad is None or bad < self.first_bad):
            self.first_bad = bad

    def finish(self) -> int | None:
        self._flush()
        for future in self.pending:
            self.note(future.result())
        return self.first_bad


def batched(lines: Iterator[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    """Numbered lines in lists of ``size`` (the last one shorter)."""
    while batch := list(itertools.islice(lines, size)):
        yield batch


def ahead(
    pool: ProcessPoolExecutor,
    workers: int,
    batches: Iterator[list[tuple[int, bytes]]],
    mechanism: str,
    known_keys: dict[str, str],
) -> Iterator[list[Facts]]:
    """Results of batches in order, with a few batches worked on ahead of the one being read."""
    pending: collections.deque[Future[list[Facts]]] = collections.deque()
    for batch in batches:
        pending.append(pool.submit(line_facts, mechanism, batch, known_keys))
        if len(pending) >= 4 * workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextmanager
def processes(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` processes, or None (work inline) for one; shut down, pending work cancelled, on leaving."""
    if workers <= 1:
        yield None
        return
    executor = ProcessPoolExecutor(workers)
    try:
        yield executor
    finally:
        executor.shutdown(cancel_futures=True)
