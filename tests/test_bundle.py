"""Record bundles: export the demo's record, verify it offline, and catch each kind of tampering."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconflict.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bundle")
    db = base / "demo.db"
    assert runner.invoke(app, ["demo", "--script", "--db", str(db)]).exit_code == 0
    out = base / "record.jsonl"
    result = runner.invoke(app, ["ledger", "export", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _variant(exported: Path, tmp_path: Path, change: Callable[[list[str]], list[str]]) -> Path:
    lines = exported.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "changed.jsonl"
    path.write_text("".join(change(lines)), encoding="utf-8")
    return path


def test_the_exported_record_verifies_offline(exported: Path) -> None:
    result = runner.invoke(app, ["ledger", "verify", str(exported)])
    assert result.exit_code == 0 and "entries verify" in result.output


def _flip_payload(lines: list[str]) -> list[str]:
    out = list(lines)
    out[4] = out[4].replace('"air_sortie"', '"air_sortid"', 1)  # entry 4: Israel's notice
    return out


def _break_json(lines: list[str]) -> list[str]:
    out = list(lines)
    out[6] = out[6][:10] + "\x00" + out[6][11:]
    return out


CASES = [
    ("a byte of a payload changed", _flip_payload, "entry 4: payload does not match"),
    ("a byte that breaks the JSON", _break_json, "entry 6"),
    ("an entry deleted", lambda ls: ls[:5] + ls[6:], "entry 6: expected sequence number 5"),
    ("two entries swapped", lambda ls: ls[:3] + [ls[4], ls[3]] + ls[5:], "expected sequence number 3"),
    ("the tail cut", lambda ls: ls[:-3], "header says"),
    (
        "an actor rewritten",
        lambda ls: ls[:2] + [ls[2].replace('"actor": "IL"', '"actor": "TR"', 1)] + ls[3:],
        "entry 2",
    ),
]


@pytest.mark.parametrize(("case", "change", "words"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_caught_and_the_first_bad_entry_named(
    exported: Path, tmp_path: Path, case: str, change: Callable[[list[str]], list[str]], words: str
) -> None:
    path = _variant(exported, tmp_path, change)
    assert path.read_text(encoding="utf-8") != exported.read_text(encoding="utf-8")
    result = runner.invoke(app, ["ledger", "verify", str(path)])
    assert result.exit_code == 1, result.output
    assert words in result.output


def test_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n', encoding="utf-8")
    result = runner.invoke(app, ["ledger", "verify", str(path)])
    assert result.exit_code == 2 and "not a deconflict record bundle" in result.output
    missing = runner.invoke(app, ["ledger", "verify", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2
