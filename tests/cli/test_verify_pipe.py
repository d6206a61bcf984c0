"""``deconflict ledger verify`` gives its verdict as its exit status even when the reader of its output goes away
(``| head``, ``| grep -q``): it ran to its end, where it stopped at the first line the closed pipe refused and
exited 0 (a broken record, or one signed with keys the operator holds, "verified" under ``set -o pipefail``).
A real process, its standard output a pipe closed before it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.day import build_day
from typer.testing import CliRunner

from deconflict.cli import app


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pipe")
    build_day(str(folder / "day.db")).store.close()
    out = folder / "day.jsonl"
    run = CliRunner().invoke(app, ["ledger", "export", "--db", str(folder / "day.db"), "--out", str(out)])
    assert run.exit_code == 0, run.output
    return out


def _verify_into_a_closed_pipe(path: Path, *options: str) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from deconflict.cli import main; main()", "ledger", "verify", str(path), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line
    return proc.wait(timeout=120)


def test_the_verdict_is_the_exit_status_when_nobody_reads_the_output(bundle: Path, tmp_path: Path) -> None:
    # the scripted day stops ticking at +36 min, and M9's escalation is missing: DOES NOT HOLD, exit 1, which only
    # the recomputation after the lines on standard output finds (tests/service/test_recheck.py)
    assert _verify_into_a_closed_pipe(bundle) == 1
    # without it: the chain verifies, its keys held by the service (the builders' custody), exit 3
    assert _verify_into_a_closed_pipe(bundle, "--no-recompute") == 3
    # an acknowledgement's time moved by hand: it does not verify, exit 1
    lines = bundle.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if '"conflict.acknowledged"' in line)
    entry = json.loads(lines[n])
    entry["at"] = entry["at"].replace(":08:", ":07:")
    lines[n] = json.dumps(entry)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines) + "\n")
    assert _verify_into_a_closed_pipe(edited) == 1
