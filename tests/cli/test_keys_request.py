"""``deconflict keys request`` and ``keys register --request``: a party's key is registered by the operator
without its private half ever leaving the party. The party makes its key and a registration request on its side
(the new key's public half and its proof of possession, no secret); the operator registers the request. A
request for another party or mechanism, an edited one, a private key file handed over by mistake, or a request
for a party that still has a key in force, is refused in one line (exit 2) and changes nothing. Real SQLite files,
the command line as each side types it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.builders import M
from support.cli import ok, rows_digest, run

from deconflict.record import signing
from deconflict.scenarios import scenario_path


@pytest.fixture
def declared(tmp_path: Path) -> Path:
    db = tmp_path / "deconflict.db"
    ok("mechanism", "declare", str(scenario_path("syria")), "--db", str(db))
    return db


def _request(tmp_path: Path, party: str, name: str, mechanism: str = M) -> tuple[Path, Path]:
    key, request = tmp_path / f"{name}.key", tmp_path / f"{name}.request"
    ok("keys", "generate", "--party", party, "--out", str(key))
    said = ok("keys", "request", "--key", str(key), "--mechanism", mechanism, "--out", str(request))
    assert f"--party {party} --request {request.name}" in said
    return key, request


def test_the_operator_registers_a_partys_key_from_its_request_and_its_signatures_verify(
    declared: Path, tmp_path: Path
) -> None:
    key, request = _request(tmp_path, "TR", "tr")
    text = request.read_text()
    pair = signing.read_key_file(key)[1]
    assert "seed" not in text and pair.public_key in text and pair.key_id in text
    assert f"registered {pair.key_id} for TR" in ok(
        "keys", "register", "--db", str(declared), "--party", "TR", "--request", str(request)
    )
    listed = ok("keys", "list", "--db", str(declared))
    assert f"{pair.key_id}  TR       held by party" in listed
    assert "3 entries verify" in ok("ledger", "check", "--db", str(declared))
    # the same request again: the key is registered once
    code, said = run("keys", "register", "--db", str(declared), "--party", "TR", "--request", str(request))
    assert code == 2 and said.startswith("error: ") and "already registered" in said, said


def test_a_wrong_edited_or_secret_bearing_request_is_refused_and_changes_nothing(
    declared: Path, tmp_path: Path
) -> None:
    tr_key, tr_request = _request(tmp_path, "TR", "tr")
    _, elsewhere = _request(tmp_path, "TR", "tr-elsewhere", mechanism="another-mechanism")
    edited = tmp_path / "edited.request"
    il_key = signing.read_key_file(_request(tmp_path, "IL", "il")[0])[1]
    edited.write_text(tr_request.read_text().replace(signing.read_key_file(tr_key)[1].public_key, il_key.public_key))
    forged = tmp_path / "forged.request"
    lines = [ln for ln in tr_request.read_text().splitlines() if not ln.startswith("key_id")]
    forged.write_text(
        "\n".join(ln if not ln.startswith("possession") else 'possession = "' + "A" * 86 + '=="' for ln in lines) + "\n"
    )
    before = rows_digest(declared)
    for args, words in (
        (["--party", "IL", "--request", str(tr_request)], "is a request of TR, not of IL"),
        (["--party", "TR", "--request", str(elsewhere)], "asks for a key in mechanism 'another-mechanism'"),
        (["--party", "TR", "--request", str(edited)], "key_id does not match its public key"),
        (["--party", "TR", "--request", str(forged)], "possession: does not verify"),
        (["--party", "TR", "--request", str(tr_key)], "is a private key file, which never leaves the party"),
        (["--party", "TR", "--request", str(tmp_path / "none.request")], "cannot be read"),
        (["--party", "TR"], "give the party's registration request (--request)"),
        (["--party", "TR", "--request", str(tr_request), "--public-key", str(tr_key)], "give the party's"),
        (
            ["--party", "TR", "--request", str(tr_request), "--with-key", str(tr_key)],
            "with_key: a request is registered by the operator",
        ),
    ):
        code, said = run("keys", "register", "--db", str(declared), *args)
        assert code == 2, said
        assert said.startswith("error: ") and words in said and said.count("\n") == 1, (args, said)
        assert rows_digest(declared) == before, args


def test_a_party_with_a_key_in_force_is_not_given_another_from_a_request(declared: Path, tmp_path: Path) -> None:
    _, first = _request(tmp_path, "TR", "tr")
    ok("keys", "register", "--db", str(declared), "--party", "TR", "--request", str(first))
    _, second = _request(tmp_path, "TR", "tr-2")
    before = rows_digest(declared)
    code, said = run("keys", "register", "--db", str(declared), "--party", "TR", "--request", str(second))
    assert code == 2 and "TR has a key in force" in said and "--with-key" in said, said
    assert rows_digest(declared) == before


def test_a_request_file_is_never_written_over_and_needs_a_key_file(tmp_path: Path) -> None:
    key, request = _request(tmp_path, "TR", "tr")
    kept = request.read_text()
    code, said = run("keys", "request", "--key", str(key), "--mechanism", M, "--out", str(request))
    assert code == 2 and "already exists" in said and request.read_text() == kept, said
    code, said = run("keys", "request", "--key", str(request), "--mechanism", M, "--out", str(tmp_path / "x"))
    assert code == 2 and "not a deconflict key file" in said and not (tmp_path / "x").exists(), said
