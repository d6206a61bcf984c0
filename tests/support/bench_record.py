"""bench/ledger.py's record for the record's tests: a legitimate record under the authority rules, as documents
or as a bundle file, and one bundle's verdict in one process or several.

The bench is loaded once from its file (it is a script, not a package module).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from deconflict.record import bundle
from deconflict.record.chain import ChainReport
from support.paths import ROOT

__all__ = ["M", "bench", "bundle_lines", "verdict", "verdict_of_lines", "write_bundle"]

M = "bench"
"""The mechanism of bench/ledger.py's record."""


@functools.cache
def bench() -> ModuleType:
    """bench/ledger.py as a module."""
    spec = importlib.util.spec_from_file_location("bench_ledger_for_tests", ROOT / "bench" / "ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_bundle(path: Path, entries: int) -> Path:
    """A valid bundle of the bench's record with ``entries`` entries written at ``path``."""
    bench().write_bundle(path, entries)
    return path


def bundle_lines(path: Path, entries: int) -> list[bytes]:
    """The lines (header first, each with its newline) of a bundle written by :func:`write_bundle`."""
    return write_bundle(path, entries).read_bytes().splitlines(keepends=True)


def verdict(report: ChainReport) -> tuple[Any, ...]:
    """What a verification answers: whether it verifies, how far, and the first bad entry and why."""
    return (report.ok, report.entries, report.head_seq, report.head_hash, report.first_bad_seq, report.problem)


def verdict_of_lines(lines: list[bytes], folder: Path, workers: int) -> tuple[Any, ...]:
    """The verdict on a bundle of ``lines`` (written to a file in ``folder``), verified in ``workers`` processes."""
    path = folder / f"lines-{workers}.jsonl"
    path.write_bytes(b"".join(lines))
    return verdict(bundle.verify(path, workers=workers))
