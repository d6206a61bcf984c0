"""``deconflict mechanism declare``: a mechanism for real, from its agreed file, without the demo. The site
engineer declares it; each party registers the key it made on its side (still the founding agreement:
nothing but declarations has happened); members get tokens; a party's notice signed with its own key is
recorded and the record verifies. A refused file, a second declaration or a missing folder changes nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.builders import M, syria
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.errors import InvalidInput
from deconflict.model import Rung
from deconflict.scenarios import scenario_path
from deconflict.service import Service
from deconflict.store import open_store
from deconflict.store.replay import TABLES
from deconflict.store.schema import LedgerEntry

runner = CliRunner()
SYRIA = scenario_path("syria")


def _ok(*args: str) -> str:
    run = runner.invoke(app, list(args))
    assert run.exit_code == 0, run.output
    return run.output


def _rows(db: Path) -> int:
    """Every row of the record and of the tables derived from it."""
    store = open_store(str(db))
    try:
        with store.read() as s:
            return sum(len(s.query(model).all()) for model in (LedgerEntry, *TABLES.values()))
    finally:
        store.close()


def test_a_mechanism_declared_from_its_file_takes_the_parties_own_keys_and_their_signed_notices(
    tmp_path: Path,
) -> None:
    db = tmp_path / "deconflict.db"
    said = _ok("mechanism", "declare", str(SYRIA), "--db", str(db))
    assert f"mechanism {M} declared in {db}: 4 members, 1 zone, record at entry 2" in said
    assert f"deconflict keys request --mechanism {M}" in said and "--request" in said
    for party in ("TR", "IL"):
        key = tmp_path / f"{party}.key"
        _ok("keys", "generate", "--party", party, "--out", str(key))
        # the party's first key, right after the declaration: part of the founding agreement. TR sends the
        # operator its request (no secret in it); IL's officer registers at the operator's desk, its key file in hand
        if party == "TR":
            request = tmp_path / "TR.request"
            _ok("keys", "request", "--key", str(key), "--mechanism", M, "--out", str(request))
            assert "seed" not in request.read_text()
            given = ["--request", str(request)]
        else:
            given = ["--public-key", str(key)]
        assert "registered ed25519:" in _ok(
            "keys", "register", "--db", str(db), "--mechanism", M, "--party", party, *given
        )
    listed = _ok("keys", "list", "--db", str(db), "--mechanism", M)
    assert listed.count("held by party") == 2 and listed.count("held by service") == 1
    token = _ok("member", "token", "--db", str(db), "--mechanism", M, "--member", "TR").strip()
    assert token.startswith("dcf_")
    found = Service.open(str(db)).authenticate(token)
    assert found is not None and found[0] == M and found[1].party == "TR"
    assert "4 entries verify" in _ok("ledger", "check", "--db", str(db))
    bundle = tmp_path / "record.jsonl"
    _ok("ledger", "export", "--db", str(db), "--out", str(bundle))
    assert "verif" in _ok("ledger", "verify", str(bundle))


def test_a_second_declaration_a_refused_file_or_a_missing_folder_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "deconflict.db"
    _ok("mechanism", "declare", str(SYRIA), "--db", str(db))
    before = _rows(db)
    again = runner.invoke(app, ["mechanism", "declare", str(SYRIA), "--db", str(db)])
    assert again.exit_code == 2 and f"mechanism '{M}' already exists" in again.output
    assert _rows(db) == before

    short = tmp_path / "short.toml"  # a ladder rung of 3 seconds: under the 6 the rules allow
    (tmp_path / "data").symlink_to(SYRIA.parent / "data")  # the area's boundary file, beside it
    short.write_text(SYRIA.read_text(encoding="utf-8").replace("answer_within_min = ", "answer_within_min = 0.05 #", 1))
    fresh = tmp_path / "fresh.db"
    refused = runner.invoke(app, ["mechanism", "declare", str(short), "--db", str(fresh)])
    assert refused.exit_code == 2 and "ladder[0] answer_within_min: must be at least 0.1" in refused.output
    assert not fresh.exists()  # refused before a database was made

    nowhere = runner.invoke(app, ["mechanism", "declare", str(SYRIA), "--db", str(tmp_path / "no" / "x.db")])
    assert nowhere.exit_code == 2 and "is not a folder" in nowhere.output
    assert "Traceback" not in refused.output + nowhere.output + again.output


def test_the_service_refuses_a_definition_that_would_not_read_back_from_its_record(tmp_path: Path) -> None:
    """A mechanism built in code with a 3-second rung once recorded fine and then bricked every start
    (the first entry no longer read back): it is refused before anything is written."""
    m = syria()
    short = dataclasses.replace(m, rules=dataclasses.replace(m.rules, ladder=(Rung("duty officer", 3.0),)))
    db = tmp_path / "d.db"
    service = Service.open(str(db), migrate=True)
    with pytest.raises(InvalidInput, match=r"ladder\[0\] answer_within_min: must be at least 0\.1"):
        service.declare_mechanism(mechanism=short)
    assert _rows(db) == 0
    service.declare_mechanism(mechanism=m)  # the agreed one still declares on the same database
    assert Service.open(str(db)).mechanism(M).rules.ladder == m.rules.ladder  # and reads back


def test_a_zone_wholly_outside_the_area_refuses_the_file_before_anything_is_written(tmp_path: Path) -> None:
    """The red line's centre written latitude first: the declaration recorded the mechanism, then was refused at
    the zone, leaving a record of one entry without its red line and the file refused again as 'already exists'
    (a review). The file is refused by 'mechanism check' and by 'declare', before a database is made; a
    mechanism built in code is refused by the service before anything is written."""
    swapped = tmp_path / "swapped.toml"
    (tmp_path / "data").symlink_to(SYRIA.parent / "data")
    text = SYRIA.read_text(encoding="utf-8")
    assert "centre = [38.3169, 34.5574]" in text
    swapped.write_text(text.replace("centre = [38.3169, 34.5574]", "centre = [34.5574, 38.3169]", 1), encoding="utf-8")
    words = "swapped.toml zones: zone 'IL-RL-PALMYRA' lies wholly outside the mechanism's area of responsibility"
    checked = runner.invoke(app, ["mechanism", "check", str(swapped)])
    assert checked.exit_code == 2 and words in checked.output
    db = tmp_path / "d.db"
    refused = runner.invoke(app, ["mechanism", "declare", str(swapped), "--db", str(db)])
    assert refused.exit_code == 2 and words in refused.output
    assert not db.exists()
    m = syria()
    (red,) = [z for z in m.zones if z.id == "IL-RL-PALMYRA"]
    lon, lat = red.footprint.geometry.x, red.footprint.geometry.y
    moved = dataclasses.replace(
        red, footprint=dataclasses.replace(red.footprint, geometry=type(red.footprint.geometry)(lat, lon))
    )
    service = Service.open(str(db), migrate=True)
    with pytest.raises(InvalidInput, match="zone 'IL-RL-PALMYRA' lies wholly outside"):
        service.declare_mechanism(mechanism=dataclasses.replace(m, zones=(moved,)))
    assert _rows(db) == 0


@pytest.mark.parametrize(
    ("line", "instead", "words"),
    [
        (
            "line_check_interval_min = 60",
            "line_check_interval_min = 0",
            "line_check_interval_min: must be at least 0.1",
        ),
        ("ack_deadline_min = 10", "ack_deadline_min = 0", "ack_deadline_min: must be at least 0.1"),
        ("separation_m = 9260", "separaton_m = 9260", "rules separaton_m: no such rule (did you mean separation_m?)"),
        ("horizon_days = 180", "horizon_days = 180\nbogus_rule = 3", "rules bogus_rule: no such rule; the rules are"),
        ("vertical_separation_m = 305", "", "rules vertical_separation_m: missing"),
    ],
)
def test_a_rule_that_would_stop_the_duty_loop_or_a_misspelt_one_is_refused_by_name(
    tmp_path: Path, line: str, instead: str, words: str
) -> None:
    """Line checks every 0 minutes passed the check, declared, then failed every tick of the duty loop; a
    misspelt rule read as missing (``got None``) or, unknown, was dropped with its default in force."""
    (tmp_path / "data").symlink_to(SYRIA.parent / "data")
    source = SYRIA.read_text(encoding="utf-8")
    assert line in source
    edited = tmp_path / "edited.toml"
    edited.write_text(source.replace(line, instead, 1))
    for args in (["mechanism", "check", str(edited)], ["mechanism", "declare", str(edited), "--db", "x.db"]):
        run = runner.invoke(app, args)
        assert run.exit_code == 2 and words in run.output and "Traceback" not in run.output, run.output
    assert not (tmp_path / "x.db").exists() and not Path("x.db").exists()


def test_commands_on_a_database_take_its_only_mechanism_and_ask_when_it_holds_several(tmp_path: Path) -> None:
    """The demo's id was every command's default: on a site's own mechanism, export said it did not exist."""
    (tmp_path / "data").symlink_to(SYRIA.parent / "data")
    own = tmp_path / "own.toml"
    own.write_text(SYRIA.read_text(encoding="utf-8").replace(f'id = "{M}"', 'id = "xx-site"', 1))
    db = str(tmp_path / "site.db")
    _ok("mechanism", "declare", str(own), "--db", db)
    _ok("ledger", "export", "--db", db, "--out", str(tmp_path / "one.jsonl"))
    assert '"mechanism": "xx-site"' in (tmp_path / "one.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert "held by service" in _ok("keys", "list", "--db", db)
    _ok("mechanism", "declare", str(SYRIA), "--db", db)
    for args in (["ledger", "export", "--db", db, "--out", str(tmp_path / "two.jsonl")], ["keys", "list", "--db", db]):
        run = runner.invoke(app, args)
        assert run.exit_code == 2 and f"it holds {M}, xx-site; choose one with --mechanism" in run.output, run.output
    assert not (tmp_path / "two.jsonl").exists()
