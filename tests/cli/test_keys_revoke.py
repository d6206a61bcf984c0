"""``deconflict keys revoke``: the operator retires a party's key that the party reports lost or stolen. The
revocation is a record entry; the lost key can no longer authorise anything (a thief with the file cannot
give the party a key of its own choosing); the operator registers the party's new key, as only it may while the
party has none in force; the record verifies. Refusals (a key nobody registered, one revoked already, the
service's own, a reason missing or too long) are one line, exit 2, and change nothing. A real SQLite file,
through the command line as the operator types it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.builders import M
from support.cli import ok, rows_digest, run

from deconflict.record import signing
from deconflict.scenarios import scenario_path


@pytest.fixture
def declared(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A mechanism declared from the Syria file, TR and IL each with a key made on its own side."""
    db = tmp_path / "deconflict.db"
    ok("mechanism", "declare", str(scenario_path("syria")), "--db", str(db))
    keys = {}
    for party in ("TR", "IL"):
        keys[party] = tmp_path / f"{party}.key"
        ok("keys", "generate", "--party", party, "--out", str(keys[party]))
        ok("keys", "register", "--db", str(db), "--mechanism", M, "--party", party, "--public-key", str(keys[party]))
    return db, keys


def test_a_lost_key_is_revoked_and_the_operator_registers_the_partys_new_one(
    declared: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    db, keys = declared
    lost = signing.read_key_file(keys["TR"])[1]
    said = ok("keys", "revoke", "--db", str(db), "--key-id", lost.key_id, "--reason", "laptop lost in Ankara")
    assert f"revoked {lost.key_id} of TR at entry 5" in said
    assert "TR has no key in force now" in said and "--party TR --request" in said
    assert "bearer tokens may be in the same hands" in said and "deconflict member revoke" in said
    listed = ok("keys", "list", "--db", str(db))
    assert f"{lost.key_id}  TR       held by party  revoked at entry 5" in listed
    assert listed.count("revoked") == 1  # IL's key stands

    # whoever holds the lost file cannot use it to give TR a key of its choosing
    stolen = tmp_path / "thief.key"
    ok("keys", "generate", "--party", "TR", "--out", str(stolen))
    code, refused = run(
        "keys", "register", "--db", str(db), "--party", "TR", "--public-key", str(stolen), "--with-key", str(keys["TR"])
    )
    assert code == 2 and refused.startswith("error: ") and "TR has no key in force" in refused, refused

    # the operator registers TR's new key from the request TR made on its side, as it may while TR has none in force
    new, request = tmp_path / "TR-2.key", tmp_path / "TR-2.request"
    ok("keys", "generate", "--party", "TR", "--out", str(new))
    ok("keys", "request", "--key", str(new), "--mechanism", M, "--out", str(request))
    registered = ok("keys", "register", "--db", str(db), "--party", "TR", "--request", str(request))
    assert f"registered {signing.read_key_file(new)[1].key_id} for TR at entry 6" in registered
    assert "6 entries verify" in ok("ledger", "check", "--db", str(db))
    bundle = tmp_path / "record.jsonl"
    ok("ledger", "export", "--db", str(db), "--out", str(bundle))
    verified = ok("ledger", "verify", str(bundle))
    assert "laptop lost in Ankara" in bundle.read_text() and "verif" in verified


def test_a_party_with_a_second_key_in_force_is_told_it_keeps_it(
    declared: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    db, keys = declared
    second = tmp_path / "TR-2.key"
    ok("keys", "generate", "--party", "TR", "--out", str(second))
    register = ["keys", "register", "--db", str(db), "--party", "TR", "--public-key", str(second)]
    ok(*register, "--with-key", str(keys["TR"]))
    first = signing.read_key_file(keys["TR"])[1]
    said = ok("keys", "revoke", "--db", str(db), "--key-id", first.key_id, "--reason", "rotated")
    assert f"TR still has {signing.read_key_file(second)[1].key_id} in force" in said


def test_a_refused_revocation_is_one_line_and_changes_nothing(declared: tuple[Path, dict[str, Path]]) -> None:
    db, keys = declared
    tr = signing.read_key_file(keys["TR"])[1].key_id
    service_key = next(
        line.split()[0] for line in ok("keys", "list", "--db", str(db)).splitlines() if "service" in line
    )
    ok("keys", "revoke", "--db", str(db), "--key-id", tr, "--reason", "lost")
    before = rows_digest(db)
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
        code, said = run("keys", "revoke", "--db", str(db), *args)
        assert code == 2, said
        assert said.startswith("error: ") and words in said and said.count("\n") == 1, said
        assert rows_digest(db) == before, args
    code, said = run("keys", "revoke", "--db", str(db), "--key-id", tr)  # (one line through main: test_cli.py)
    assert code == 2 and "Missing option '--reason'" in said and rows_digest(db) == before, said
