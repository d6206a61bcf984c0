"""``deconflict keys revoke``: the operator retires a party's key that the party reports lost or stolen. The
revocation is a record entry; the lost key can no longer authorise anything (a thief with the file cannot
give the party a key of its own choosing); the operator registers the party's new key, as only it may while the
party has none in force; the record verifies. Refusals (a key nobody registered, one revoked already, the
service's own, a reason missing or too long) are one line, exit 2, and change nothing. A real SQLite file,
through the command line as the operator types it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from support.builders import M
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.record import signing
from deconflict.scenarios import scenario_path

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    run = runner.invoke(app, list(args))
    return run.exit_code, run.output


def _ok(*args: str) -> str:
    code, said = _run(*args)
    assert code == 0, said
    return said


def _digest(db: Path) -> str:
    """Everything the database holds, every table's rows (not its file's bytes: a store another command left open
    folds its write-ahead log into the file when it is collected, which changes no row)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


@pytest.fixture
def declared(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A mechanism declared from the Syria file, TR and IL each with a key made on its own side."""
    db = tmp_path / "deconflict.db"
    _ok("mechanism", "declare", str(scenario_path("syria")), "--db", str(db))
    keys = {}
    for party in ("TR", "IL"):
        keys[party] = tmp_path / f"{party}.key"
        _ok("keys", "generate", "--party", party, "--out", str(keys[party]))
        _ok("keys", "register", "--db", str(db), "--mechanism", M, "--party", party, "--public-key", str(keys[party]))
    return db, keys


def test_a_lost_key_is_revoked_and_the_operator_registers_the_partys_new_one(
    declared: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    db, keys = declared
    lost = signing.read_key_file(keys["TR"])[1]
    said = _ok("keys", "revoke", "--db", str(db), "--key-id", lost.key_id, "--reason", "laptop lost in Ankara")
    assert f"revoked {lost.key_id} of TR at entry 5" in said
    assert "TR has no key in force now" in said and "--party TR --request" in said
    assert "bearer tokens may be in the same hands" in said and "deconflict member revoke" in said
    listed = _ok("keys", "list", "--db", str(db))
    assert f"{lost.key_id}  TR       held by party  revoked at entry 5" in listed
    assert listed.count("revoked") == 1  # IL's key stands

    # whoever holds the lost file cannot use it to give TR a key of its choosing
    stolen = tmp_path / "thief.key"
    _ok("keys", "generate", "--party", "TR", "--out", str(stolen))
    code, refused = _run(
        "keys", "register", "--db", str(db), "--party", "TR", "--public-key", str(stolen), "--with-key", str(keys["TR"])
    )
    assert code == 2 and refused.startswith("error: ") and "TR has no key in force" in refused, refused

    # the operator registers TR's new key from the request TR made on its side, as it may while TR has none in force
    new, request = tmp_path / "TR-2.key", tmp_path / "TR-2.request"
    _ok("keys", "generate", "--party", "TR", "--out", str(new))
    _ok("keys", "request", "--key", str(new), "--mechanism", M, "--out", str(request))
    registered = _ok("keys", "register", "--db", str(db), "--party", "TR", "--request", str(request))
    assert f"registered {signing.read_key_file(new)[1].key_id} for TR at entry 6" in registered
    assert "6 entries verify" in _ok("ledger", "check", "--db", str(db))
    bundle = tmp_path / "record.jsonl"
    _ok("ledger", "export", "--db", str(db), "--out", str(bundle))
    verified = _ok("ledger", "verify", str(bundle))
    assert "laptop lost in Ankara" in bundle.read_text() and "verif" in verified


def test_a_party_with_a_second_key_in_force_is_told_it_keeps_it(
    declared: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    db, keys = declared
    second = tmp_path / "TR-2.key"
    _ok("keys", "generate", "--party", "TR", "--out", str(second))
    register = ["keys", "register", "--db", str(db), "--party", "TR", "--public-key", str(second)]
    _ok(*register, "--with-key", str(keys["TR"]))
    first = signing.read_key_file(keys["TR"])[1]
    said = _ok("keys", "revoke", "--db", str(db), "--key-id", first.key_id, "--reason", "rotated")
    assert f"TR still has {signing.read_key_file(second)[1].key_id} in force" in said


def test_a_refused_revocation_is_one_line_and_changes_nothing(declared: tuple[Path, dict[str, Path]]) -> None:
    db, keys = declared
    tr = signing.read_key_file(keys["TR"])[1].key_id
    service_key = next(
        line.split()[0] for line in _ok("keys", "list", "--db", str(db)).splitlines() if "service" in line
    )
    _ok("keys", "revoke", "--db", str(db), "--key-id", tr, "--reason", "lost")
    before = _digest(db)
    for args, words in (
        (["--key-id", "ed25519:" + "0" * 64, "--reason", "lost"], "is not registered in mechanism"),
        (["--key-id", tr, "--reason", "lost again"], "was already revoked at entry 5"),
        (["--key-id", service_key, "--reason", "lost"], "the service's own key cannot be revoked"),
        (["--key-id", signing.read_key_file(keys["IL"])[1].key_id, "--reason", "  "], "reason: say why"),
        (
            ["--key-id", signing.read_key_file(keys["IL"])[1].key_id, "--reason", "x" * 201],
            "longer than 200 characters",
        ),
        (["--key-id", signing.read_key_file(keys["IL"])[1].key_id, "--reason", "lost\x1b[2J"], "a control character"),
        (
            ["--key-id", signing.read_key_file(keys["IL"])[1].key_id, "--reason", "lost \u202e"],
            "a bidirectional control",
        ),
    ):
        code, said = _run("keys", "revoke", "--db", str(db), *args)
        assert code == 2, said
        assert said.startswith("error: ") and words in said and said.count("\n") == 1, said
        assert _digest(db) == before, args
    code, said = _run("keys", "revoke", "--db", str(db), "--key-id", tr)  # (one line through main: test_cli.py)
    assert code == 2 and "Missing option '--reason'" in said and _digest(db) == before, said
