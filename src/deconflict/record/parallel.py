"""Spreading the verifier's per-entry work over processes: signatures in batches, bundle spans read ahead.

:class:`Signatures` queues signature checks and remembers the first that fails. A bundle's entry lines
are cut into byte ranges (:func:`spans`, each ending at a newline); each worker process opens the file
itself, reads its own range and works out the facts of its lines (:func:`span_facts`: read with orjson
where that is provably the strict reading), so no line crosses between processes; :func:`ahead` keeps
a few ranges worked on ahead of the sequential pass. :func:`processes` gives the worker processes (none
for one worker: everything then runs inline, on the same ranges).
"""

from __future__ import annotations

import collections
import gc
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple

from deconflict.record import signing
from deconflict.record.facts import Facts, entry_facts, read_line
from deconflict.record.strict_json import load_entry_line

__all__ = [
    "SIGNATURE_BATCH",
    "SPAN_BYTES",
    "Signatures",
    "Span",
    "ahead",
    "entries_end",
    "first_bad_signature",
    "no_collection",
    "processes",
    "span_facts",
    "spans",
]


SIGNATURE_BATCH = 4096
"""Signatures checked together (in a worker process when there are several)."""
SPAN_BYTES = 2 << 20
"""Bytes of bundle lines a worker process reads and works out at a time (about 2,000 entries)."""
_WHITE = b" \t\n\r\x0b\x0c"
"""What ``bytes.strip()`` takes away: a line of only these is blank."""
_BLOCK = 1 << 16


class Span(NamedTuple):
    """What a range of bundle lines says: the facts of its lines up to the first unreadable one."""

    facts: list[Facts]
    bad: tuple[int, str] | None
    """The first line that could not be read: (its index in the range, why), or None."""
    lines: int
    """Lines in the range."""


def first_bad_signature(batch: list[tuple[int, str, str, str]]) -> int | None:
    """The first sequence number in ``batch`` whose signature does not verify, or None."""
    for seq, public_key, digest, signature in batch:
        if not signing.verify(public_key, signing.entry_message(digest), signature):
            return seq
    return None


def entries_end(path: str, start: int) -> int:
    """Where a bundle's entry lines end (they begin at byte ``start``): just after the last line that is not
    blank. Blank lines at the end of the file are not entries (an editor may add them); a blank line between
    entries still is (and is named)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        last = -1  # the last byte that is not white space
        at = end
        while at > start and last < 0:
            size = min(_BLOCK, at - start)
            at -= size
            f.seek(at)
            block = f.read(size)
            stripped = block.rstrip(_WHITE)
            if stripped:
                last = at + len(stripped) - 1
        if last < 0:
            return start
        f.seek(last)
        at = last
        while block := f.read(_BLOCK):
            newline = block.find(b"\n")
            if newline >= 0:
                return at + newline + 1
            at += len(block)
        return end


def spans(path: str, start: int, end: int, size: int = SPAN_BYTES) -> Iterator[tuple[int, int]]:
    """Byte ranges ``[a, b)`` covering ``[start, end)``, of about ``size`` bytes each, each ending just after
    a newline (the last at ``end``): whole lines, in order."""
    with open(path, "rb") as f:
        a = start
        while a < end:
            b = a + size
            if b >= end:
                yield a, end
                return
            f.seek(b - 1)  # the range ends after the first newline from its last byte on
            at = b - 1
            while True:
                block = f.read(_BLOCK)
                newline = block.find(b"\n")
                if newline >= 0 or not block:
                    b = at + newline + 1 if newline >= 0 else end
                    break
                at += len(block)
            b = min(b, end)
            yield a, b
            a = b


def span_facts(mechanism: str, data: bytes, known_keys: dict[str, str]) -> Span:
    """The facts of a range of bundle lines (``data``: whole lines, as :func:`spans` cuts them), each read
    with orjson when that reading is provably the strict one
    (:func:`~deconflict.record.strict_json.load_entry_line`), else strictly; stops at the first line that
    cannot be read.

    The facts cross to the sequential pass pickled: an entry's ``prev_hash`` that equals the entry
    before's hash is made that very string, and the actor, type and key id one string per value, so that
    pickle writes each once a range rather than once an entry.
    """
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    out: list[Facts] = []
    shared: dict[str, str] = {}
    digest = None
    for index, line in enumerate(lines):
        fast = load_entry_line(line)
        if fast is None:
            doc = read_line(line)
            if isinstance(doc, str):
                return Span(out, (index, doc), len(lines))
            facts = entry_facts(mechanism, doc, known_keys)
            out.append(facts)
            digest = facts.digest
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
    return Span(out, None, len(lines))


def read_span(path: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of the file at ``path``."""
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


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


def ahead(
    pool: ProcessPoolExecutor | None,
    workers: int,
    path: str,
    ranges: Iterator[tuple[int, int]],
    mechanism: str,
    known_keys: dict[str, str],
) -> Iterator[Span]:
    """What each range says, in order: worked out in the worker processes, a few ranges ahead of the one
    being taken in, or inline without a pool."""
    if pool is None:
        for start, end in ranges:
            yield span_facts(mechanism, read_span(path, start, end), known_keys)
        return
    pending: collections.deque[Future[tuple[list[tuple[Any, ...]], Any, int]]] = collections.deque()
    for start, end in ranges:
        pending.append(pool.submit(_span_facts_plain, path, start, end, mechanism, known_keys))
        if len(pending) >= 4 * workers:
            yield _span(pending.popleft().result())
    while pending:
        yield _span(pending.popleft().result())


def _span_facts_plain(
    path: str, start: int, end: int, mechanism: str, known_keys: dict[str, str]
) -> tuple[list[tuple[Any, ...]], Any, int]:
    """:func:`span_facts` of a range of the file, in a worker process, as plain tuples: pickle writes a named
    tuple through a Python call each (about 5 µs an entry here), a plain one in C (about 1.5 µs)."""
    with no_collection():
        got = span_facts(mechanism, read_span(path, start, end), known_keys)
        return [tuple(f) for f in got.facts], got.bad, got.lines


def _span(plain: tuple[list[tuple[Any, ...]], Any, int]) -> Span:
    facts, bad, lines = plain
    return Span([tuple.__new__(Facts, f) for f in facts], bad, lines)


@contextmanager
def no_collection() -> Iterator[None]:
    """Python's cyclic garbage collector held off meanwhile. Verification builds nothing cyclic (refcounting
    frees it all), but the authority state grows with the record (three tracked objects a conflict), and
    each full collection walks all of it: at 500,000 entries that was about 11 µs an entry of the main
    process's CPU, and growing. Collection resumes after, and is left off if it was off before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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
