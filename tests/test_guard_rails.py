"""Guard rails for moving code (issue 12): what callers meet must not change by accident.

- the HTTP API's OpenAPI document equals ``tests/golden/openapi.json``;
- every command's ``--help`` equals ``tests/golden/help/<command>.txt``;
- the scripted demo on a fixed clock, with key seeds drawn from a fixed sequence, writes exactly
  ``tests/golden/demo_record.jsonl`` (entry types, payloads, canonical JSON, hashes and Ed25519
  signatures, which are deterministic) and prints exactly ``tests/golden/demo_transcript.txt``;
- the pure modules import no database, web or CLI framework, and ``import deconflict.cli`` stays light.

A change that means to change a contract regenerates the golden files with
``DECONFLICT_UPDATE_GOLDEN=1 ./run-tests tests/test_guard_rails.py`` and shows the diff in its commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from deconflict.api import create_app
from deconflict.api.settings import Settings
from deconflict.cli import app

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DECONFLICT_UPDATE_GOLDEN") == "1"


def _same_as_golden(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; make it with DECONFLICT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed; if on purpose, regenerate it"


def test_openapi_document_is_unchanged(tmp_path: Path) -> None:
    api = create_app(Settings(db=str(tmp_path / "golden.db"), tick_s=0.0))
    doc = json.dumps(api.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _same_as_golden(GOLDEN / "openapi.json", doc)


def test_the_scripted_demo_writes_the_same_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import io
    from datetime import UTC, datetime

    from rich.console import Console

    from deconflict.demo import MECHANISM, run_script
    from deconflict.record import signing

    drawn = [0]

    def fixed_seed(cls: type[signing.KeyPair]) -> signing.KeyPair:
        drawn[0] += 1  # key material masked: a known seed in place of os.urandom
        return cls(hashlib.sha256(f"golden-key-{drawn[0]}".encode()).digest())

    monkeypatch.setattr(signing.KeyPair, "generate", classmethod(fixed_seed))
    said = io.StringIO()
    console = Console(file=said, width=120, color_system=None)
    service = run_script(console, db=str(tmp_path / "golden.db"), start=datetime(2026, 12, 2, 6, 0, tzinfo=UTC))
    entries = service.entries_after(MECHANISM, 0, limit=100_000)
    assert drawn[0] > 0 and len(entries) > 30
    record = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries)
    _same_as_golden(GOLDEN / "demo_record.jsonl", record)
    _same_as_golden(GOLDEN / "demo_transcript.txt", said.getvalue())


def _commands() -> list[tuple[str, ...]]:
    """Every command path of the CLI: ('check',), ('ledger', 'verify'), …"""
    root = get_command(app)
    out: list[tuple[str, ...]] = [()]
    for name, cmd in sorted(root.commands.items()):  # type: ignore[attr-defined]
        out.append((name,))
        for sub in sorted(getattr(cmd, "commands", {})):
            out.append((name, sub))
    return out


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "deconflict")
def test_every_help_text_is_unchanged(command: tuple[str, ...]) -> None:
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    result = CliRunner().invoke(app, [*command, "--help"], env=env)
    assert result.exit_code == 0, result.output
    _same_as_golden(GOLDEN / "help" / f"{'-'.join(command) or 'deconflict'}.txt", result.output)


RECORD = [
    "record",
    "record.chain",
    "record.verify",
    "record.facts",
    "record.parallel",
    "record.checkpoints",
    "record.strict_json",
    "record.authority",
    "record.rules",
    "record.registration",
    "record.signing",
    "record.bundle",
    "record.merkle",
    "record.merkle_cache",
    "record.note",
    "record.witness",
    "record.cosigned",
]
"""The record: a party's client and ``deconflict ledger verify`` load only this."""
PURE = [
    "errors",
    "clock",
    "model",
    "geo",
    "volumes",
    "detect",
    "tactical",
    "hotline",
    "disclosure",
    "mechanisms",
    "units",
    "analysis.report",
    "analysis.report_output",
    "analysis.timeline",
    "analysis.phase",
    *RECORD,
    "formats.geojson",
    "formats.docs",
    "formats.tracks_csv",
]
FRAMEWORKS = ("sqlalchemy", "alembic", "fastapi", "starlette", "typer", "uvicorn")


def _loaded(module: str, names: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(n for n in {names!r} if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return [n for n in out.stdout.strip().split(",") if n]


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_framework(module: str) -> None:
    assert _loaded(f"deconflict.{module}", FRAMEWORKS) == []


@pytest.mark.parametrize("module", RECORD)
def test_the_record_loads_no_numpy(module: str) -> None:
    """A party checks a record without the geometry stack (numpy, shapely, pyproj: the domain model)."""
    heavy = ("numpy", "shapely", "pyproj", "deconflict.store", "deconflict.service")
    assert _loaded(f"deconflict.{module}", heavy) == []


@pytest.mark.parametrize("module", [*RECORD, "client"])
def test_the_record_and_the_client_import_no_database(module: str) -> None:
    assert _loaded(f"deconflict.{module}", ("sqlalchemy", "alembic")) == []


def test_the_command_line_starts_light() -> None:
    assert _loaded("deconflict.cli", ("numpy", "sqlalchemy", "matplotlib", "fastapi", "shapely")) == []
