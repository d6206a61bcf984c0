"""Verification spread over processes gives the sequential verdict, at the seams between chunks (issue 17).

The record of bench/ledger.py (a legitimate record under the authority rules) is made a little past the
sizes the verifier works in (:data:`~deconflict.record.parallel.LINE_BATCH` bundle lines and
:data:`~deconflict.record.parallel.SIGNATURE_BATCH` signatures a chunk), then broken just at a seam: an
entry missing or two swapped where one chunk of lines ends and the next begins, a signature moved
within the second chunk of signatures. One process and two give the same report, field for field.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deconflict.record import bundle, chain, parallel, verify
from deconflict.record.chain import ChainReport

M = "bench"
"""The mechanism of bench/ledger.py's record."""
N = parallel.SIGNATURE_BATCH + 60
SEAM = parallel.LINE_BATCH
"""The last entry of the first chunk of bundle lines (lines 2..LINE_BATCH+1 hold entries 1..LINE_BATCH)."""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).parents[2] / "bench" / "ledger.py"
    spec = importlib.util.spec_from_file_location("bench_ledger_for_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def docs(bench: ModuleType) -> list[dict[str, Any]]:
    made, _ = bench.make_docs(1, N, chain.GENESIS_HASH)
    return list(made)


@pytest.fixture(scope="module")
def written(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speed") / "record.jsonl"
    bench.write_bundle(path, SEAM + 60)
    return path


def _verdict(report: ChainReport) -> tuple[Any, ...]:
    return (report.ok, report.entries, report.head_seq, report.head_hash, report.first_bad_seq, report.problem)


def test_documents_in_one_process_and_two_agree(docs: list[dict[str, Any]]) -> None:
    whole = verify.verify_docs(M, iter(docs), workers=1)
    assert whole.ok and whole.entries == N and whole.head_hash == docs[-1]["hash"]
    assert _verdict(verify.verify_docs(M, iter(docs), workers=2)) == _verdict(whole)

    moved = [dict(d) for d in docs]
    late = parallel.SIGNATURE_BATCH + 10  # in the second batch of signatures
    moved[late - 1]["signature"] = moved[late - 2]["signature"]
    one = verify.verify_docs(M, iter(moved), workers=1)
    assert not one.ok and one.first_bad_seq == late and "signature does not verify" in (one.problem or "")
    assert _verdict(verify.verify_docs(M, iter(moved), workers=2)) == _verdict(one)

    missing = docs[:SEAM] + docs[SEAM + 1 :]
    one = verify.verify_docs(M, iter(missing), workers=1)
    assert not one.ok and one.first_bad_seq == SEAM + 2 and one.entries == SEAM
    assert _verdict(verify.verify_docs(M, iter(missing), workers=2)) == _verdict(one)


def test_a_whole_bundle_in_one_process_and_two_agrees(written: Path) -> None:
    one = bundle.verify(written, workers=1)
    assert one.ok and one.entries == SEAM + 60 and one.checkpoints == 1
    assert _verdict(bundle.verify(written, workers=2)) == _verdict(one)


def _changed(path: Path, tmp: Path, change: Any) -> Path:
    lines = path.read_bytes().splitlines(keepends=True)
    out = tmp / "changed.jsonl"
    out.write_bytes(b"".join(change(lines)))
    return out


@pytest.mark.parametrize(
    ("name", "change", "first_bad", "words"),
    [
        ("an entry missing after the seam", lambda ls: ls[: SEAM + 1] + ls[SEAM + 2 :], SEAM + 2, "expected sequence"),
        (
            "two entries swapped across the seam",
            lambda ls: ls[:SEAM] + [ls[SEAM + 1], ls[SEAM]] + ls[SEAM + 2 :],
            SEAM + 1,
            "expected sequence",
        ),
        (
            "a signature moved in the second chunk",
            lambda ls: (
                ls[: SEAM + 5] + [ls[SEAM + 5].replace(ls[SEAM + 5][-91:-3], ls[SEAM + 6][-91:-3])] + ls[SEAM + 6 :]
            ),
            SEAM + 5,
            "signature does not verify",
        ),
    ],
)
def test_a_bundle_broken_at_a_seam_gets_one_verdict(
    written: Path, tmp_path: Path, name: str, change: Any, first_bad: int, words: str
) -> None:
    path = _changed(written, tmp_path, change)
    one = bundle.verify(path, workers=1)
    assert not one.ok and one.first_bad_seq == first_bad and words in (one.problem or ""), (name, one.problem)
    assert _verdict(bundle.verify(path, workers=2)) == _verdict(one), name
