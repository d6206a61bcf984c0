"""Spreading the verifier's per-entry work over processes: signatures in batches, bundle lines read ahead.

:class:`Signatures` queues signature checks and remembers the first that fails; :func:`ahead`
works out the facts of a bundle's lines (:func:`lines_facts`: read with orjson where that is provably the
strict reading) a few batches ahead of the sequential pass; :func:`processes` gives the worker processes
(none for one worker: everything then runs inline).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from deconflict.record import signing
from deconflict.record.facts import Facts, entry_facts, line_facts
from deconflict.record.strict_json import load_entry_line

__all__ = [
    "LINE_BATCH",
    "SIGNATURE_BATCH",
    "Signatures",
    "ahead",
    "batched",
    "first_bad_signature",
    "lines_facts",
    "processes",
]


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


def lines_facts(mechanism: str, lines: list[tuple[int, bytes]], known_keys: dict[str, str]) -> list[Facts]:
    """:func:`~deconflict.record.facts.line_facts` of numbered bundle lines, each read with orjson when that
    reading is provably the strict one (:func:`~deconflict.record.strict_json.load_entry_line`), else
    strictly; stops at the first unreadable line.

    The facts cross to the sequential pass pickled: an entry's ``prev_hash`` that equals the entry
    before's hash is made that very string, and the actor, type and key id one string per value, so that
    pickle writes each once a batch rather than once an entry.
    """
    out: list[Facts] = []
    shared: dict[str, str] = {}
    digest = None
    for number, line in lines:
        fast = load_entry_line(line)
        if fast is None:
            got = line_facts(mechanism, [(number, line)], known_keys)
            out.extend(got)
            if got[-1].unreadable:
                break
            digest = got[-1].digest
            continue
        doc, text = fast
        if doc.get("prev_hash") == digest:
            doc["prev_hash"] = digest
        for name in ("actor", "type", "key_id"):
            value = doc.get(name)
            if value.__class__ is str:
                doc[name] = shared.setdefault(value, value)
        facts = entry_facts(mechanism, doc, known_keys, text)
        digest = facts.digest
        out.append(facts)
    return out


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
    pending: collections.deque[Future[list[tuple[Any, ...]]]] = collections.deque()
    for batch in batches:
        pending.append(pool.submit(_lines_facts_plain, mechanism, batch, known_keys))
        if len(pending) >= 4 * workers:
            yield _facts(pending.popleft().result())
    while pending:
        yield _facts(pending.popleft().result())


def _lines_facts_plain(mechanism: str, lines: list[tuple[int, bytes]], known_keys: dict[str, str]) -> list[Any]:
    """:func:`lines_facts` as plain tuples, in a worker process: pickle writes a named tuple through a Python
    call each (about 5 µs an entry here), a plain one in C (about 1.5 µs)."""
    return [tuple(f) for f in lines_facts(mechanism, lines, known_keys)]


def _facts(plain: list[tuple[Any, ...]]) -> list[Facts]:
    return [tuple.__new__(Facts, f) for f in plain]


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
