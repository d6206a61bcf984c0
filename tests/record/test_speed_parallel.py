"""Verification spread over processes gives the sequential verdict, at the seams between chunks (issue 17).

The record of bench/ledger.py (a legitimate record under the authority rules) is made a little past the
sizes the verifier works in (the byte ranges of bundle lines each worker reads, made small here, and
:data:`~deconflict.record.parallel.SIGNATURE_BATCH` signatures a chunk), then broken just at a seam: an
entry missing or two swapped where one range of lines ends and the next begins, a signature moved
within the second range, a line cut short or a blank line at a seam. One process and two give the same
report, field for field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.bench_record import M, bench, verdict, write_bundle

from deconflict.record import bundle, chain, parallel, verify

N = parallel.SIGNATURE_BATCH + 60
SPAN = 40_000
"""Bytes of bundle lines a range (about 40 entries of the bench's record: many seams in a small bundle)."""


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "SPAN_BYTES", SPAN)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    made, _ = bench().make_docs(1, N, chain.GENESIS_HASH)
    return list(made)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("speed") / "record.jsonl", 300)


def _seam(path: Path) -> int:
    """The last entry of the first range of bundle lines (lines 2..SEAM+1 hold entries 1..SEAM)."""
    with path.open("rb") as f:
        f.readline()
        start = f.tell()
    first, end = next(parallel.spans(str(path), start, path.stat().st_size, SPAN))
    assert first == start
    with path.open("rb") as f:
        f.seek(start)
        seam = f.read(end - start).count(b"\n")
    assert 10 < seam < 250
    return seam


def test_documents_in_one_process_and_two_agree(docs: list[dict[str, Any]]) -> None:
    whole = verify.verify_docs(M, iter(docs), workers=1)
    assert whole.ok and whole.entries == N and whole.head_hash == docs[-1]["hash"]
    assert verdict(verify.verify_docs(M, iter(docs), workers=2)) == verdict(whole)

    moved = [dict(d) for d in docs]
    late = parallel.SIGNATURE_BATCH + 10  # in the second batch of signatures
    moved[late - 1]["signature"] = moved[late - 2]["signature"]
    one = verify.verify_docs(M, iter(moved), workers=1)
    assert not one.ok and one.first_bad_seq == late and "signature does not verify" in (one.problem or "")
    assert verdict(verify.verify_docs(M, iter(moved), workers=2)) == verdict(one)

    seam = 2000  # in the middle of a batch of signatures
    missing = docs[:seam] + docs[seam + 1 :]
    one = verify.verify_docs(M, iter(missing), workers=1)
    assert not one.ok and one.first_bad_seq == seam + 2 and one.entries == seam
    assert verdict(verify.verify_docs(M, iter(missing), workers=2)) == verdict(one)


def test_a_whole_bundle_in_one_process_and_two_agrees(written: Path) -> None:
    one = bundle.verify(written, workers=1)
    assert one.ok and one.entries == 300 and one.checkpoints == 1
    assert verdict(bundle.verify(written, workers=2)) == verdict(one)


def _changed(path: Path, tmp: Path, change: Any) -> Path:
    lines = path.read_bytes().splitlines(keepends=True)
    out = tmp / "changed.jsonl"
    out.write_bytes(b"".join(change(lines)))
    return out


CHANGES: list[tuple[str, Any, int, str]] = [
    # (what, the lines changed given the seam S, first bad entry after S (None: the last), words of the problem)
    ("an entry missing after the seam", lambda ls, S: ls[: S + 1] + ls[S + 2 :], 2, "expected sequence"),
    (
        "two entries swapped across the seam",
        lambda ls, S: ls[:S] + [ls[S + 1], ls[S]] + ls[S + 2 :],
        1,
        "expected sequence",
    ),
    (
        "a signature moved in the second range",
        lambda ls, S: ls[: S + 5] + [ls[S + 5].replace(ls[S + 5][-91:-3], ls[S + 6][-91:-3])] + ls[S + 6 :],
        5,
        "signature does not verify",
    ),
    ("the seam's entry cut short", lambda ls, S: ls[:S] + [ls[S][:300] + b"\n"] + ls[S + 1 :], 0, "unreadable"),
    ("a blank line at the seam", lambda ls, S: ls[: S + 1] + [b"  \n"] + ls[S + 1 :], 1, "(line"),
    ("a line that is not an object", lambda ls, S: ls[: S + 2] + [b"[1, 2]\n"] + ls[S + 3 :], 2, "not an entry"),
    (
        "a repeated key",
        lambda ls, S: ls[: S + 1] + [ls[S + 1].replace(b'{"', b'{"seq":1,"', 1)] + ls[S + 2 :],
        1,
        "twice",
    ),
    (
        "bytes that are not UTF-8",
        lambda ls, S: ls[: S + 1] + [ls[S + 1].replace(b"TR", b"\xff", 1)] + ls[S + 2 :],
        1,
        "unreadable",
    ),
    ("the file cut in the last entry", lambda ls, S: ls[:-1] + [ls[-1][:500]], None, "unreadable"),
    (
        "a wrong prev_hash",
        lambda ls, S: ls[: S + 1] + [ls[S + 1].replace(b'"prev_hash":"', b'"prev_hash":"0', 1)] + ls[S + 2 :],
        1,
        "hash",
    ),
]


@pytest.mark.parametrize(("name", "change", "after", "words"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_bundle_broken_at_a_seam_gets_one_verdict(
    written: Path, tmp_path: Path, name: str, change: Any, after: int | None, words: str
) -> None:
    seam = _seam(written)
    lines = written.read_bytes().splitlines(keepends=True)
    path = tmp_path / "changed.jsonl"
    path.write_bytes(b"".join(change(lines, seam)))
    one = bundle.verify(path, workers=1)
    first_bad = 300 if after is None else seam + after
    assert not one.ok and one.first_bad_seq == first_bad and words in (one.problem or ""), (name, one.problem)
    assert verdict(bundle.verify(path, workers=2)) == verdict(one), name


def test_blank_lines_at_the_end_are_no_entries(written: Path, tmp_path: Path) -> None:
    whole = verdict(bundle.verify(written, workers=1))
    path = tmp_path / "blank-end.jsonl"
    for text in (written.read_bytes() + b"\n\n  \r\n\t", written.read_bytes().rstrip(b"\n")):
        path.write_bytes(text)
        assert verdict(bundle.verify(path, workers=1)) == verdict(bundle.verify(path, workers=2)) == whole
