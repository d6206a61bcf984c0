"""The command line: the demo, the record check and mechanism files, through the runner and a real process."""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.paths import ROOT
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.scenarios import scenario_path

runner = CliRunner()


def test_demo_script_shows_the_scenario_and_the_record_verifies(tmp_path: Path) -> None:
    db = tmp_path / "my demo" / "demo.db"  # a folder name with a space: the command it suggests still runs
    db.parent.mkdir()
    result = runner.invoke(app, ["demo", "--script", "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "CONFLICT C1 separation" in out
    assert "HOTLINE M1 → TR (tr)" in out and "faaliyetiniz" in out  # the alert in Türkiye's language
    assert "red line IL-RL-PALMYRA" in out
    assert "short notice given 20 min ahead" in out
    assert "C1 closed (amended)" in out
    assert "chain verifies" in out
    suggested = out.rsplit("check it with: ", 1)[1].strip()
    argv = shlex.split(suggested)  # pasted into a shell as printed
    assert argv[:3] == ["deconflict", "ledger", "check"] and argv[-1] == str(db), suggested
    check = runner.invoke(app, argv[1:])
    assert check.exit_code == 0 and re.search(r"tr-il-syria: \d+ entries verify", check.output)
    assert "ESCALATED M3 to the operations chief" in out  # nobody answered the red-line alert
    assert "HOTLINE M3 → IL (he)" in out and "copy M5 → AZ (en): For the facilitator" in out  # owner alarmed
    # the tactical picture: a Turkish UAV and an Israeli aircraft converging near T4, minutes ahead
    flat = " ".join(out.split())
    assert re.search(r"CONFLICT C4 tracks IL/A2 and TR/UAV-1 predicted to lose separation in 4\.\d min", flat)
    assert "izlerinin" in flat and "המסלולים" in flat  # one alert, read by each party in its language
    # the script's one clock ends at now: nothing in the record is in the future of the machine's clock
    last = sqlite3.connect(db).execute("select max(at) from ledger").fetchone()[0]
    assert datetime.fromisoformat(str(last)).replace(tzinfo=UTC) <= datetime.now(UTC)


def test_ledger_check_names_the_first_bad_entry(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert runner.invoke(app, ["demo", "--script", "--db", str(db)]).exit_code == 0
    con = sqlite3.connect(db)
    seq = con.execute("select min(seq) from ledger where type = 'activity.notified' and actor = 'TR'").fetchone()[0]
    con.execute("update ledger set actor = 'IL' where seq = ?", (seq,))
    con.commit()
    con.close()
    result = runner.invoke(app, ["ledger", "check", "--db", str(db)])
    assert result.exit_code == 1
    assert f"entry {seq}" in result.output and "hash does not match" in result.output


def test_ledger_check_on_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ledger", "check", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no such database file" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["tracks", "t.csv", "--lookahead-s", "abc"], "Invalid value for '--lookahead-s'"),
        (["positions", "t.csv", "--key", "k"], "No such option: --key"),
        (["nosuch"], "No such command 'nosuch'"),
        (["tracks"], "Missing argument"),
    ],
    ids=["not a number", "unknown option", "unknown command", "missing argument"],
)
def test_a_usage_error_is_one_line_starting_error_exit_2(args: list[str], said: str, tmp_path: Path) -> None:
    """docs/contracts.md: errors go to standard error as one line starting ``error:``, exit 2. A usage error came
    as a usage line, a "Try ..." line and a boxed panel (Typer's), in the real command as a shell runs it."""
    exe = Path(sys.executable).parent / "deconflict"
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    help_of = "deconflict" if args[0] == "nosuch" else f"deconflict {args[0]}"
    assert line.startswith("error: ") and said in line and f"(see '{help_of} --help')" in line, line


@pytest.mark.parametrize(
    ("token", "url", "said"),
    [
        ("dcf_abc\u00a0x", "http://127.0.0.1:9", "--token: holds no-break space (U+00A0)"),
        ("\u201cdcf_abc\u201d", "http://127.0.0.1:9", "--token: holds left double quotation mark (U+201C)"),
        ("dcf_é", "http://127.0.0.1:9", "--token: holds latin small letter e with acute (U+00E9)"),
        ("dcf_abc", "http://[::1", "--url: 'http://[::1' is not an address"),
        ("dcf_abc", "http://127.0.0.1:99999", "--url: 'http://127.0.0.1:99999' is not an address (its port 99999"),
        ("dcf_abc", "127.0.0.1:8080", "--url: '127.0.0.1:8080' is not an http(s) address"),
    ],
    ids=["no-break space", "typographic quotes", "accent", "bracket", "port", "no scheme"],
)
def test_a_token_or_address_pasted_wrong_is_one_line_not_a_traceback(
    token: str, url: str, said: str, tmp_path: Path
) -> None:
    """A token copied from a chat or a PDF (a no-break space, typographic quotes) or an address mistyped was a
    traceback and exit 1 (UnicodeEncodeError, httpx.InvalidURL): one line naming the option, exit 2."""
    exe = Path(sys.executable).parent / "deconflict"
    done = subprocess.run(
        [str(exe), "conflicts", "--token", token, "--url", url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and said in line, line


def test_deconflict_alone_shows_its_help(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "deconflict"
    done = subprocess.run([str(exe)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "Commands" in done.stdout and done.stderr == ""


def test_mechanism_check(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["mechanism", "check", str(scenario_path("syria"))])
    assert ok.exit_code == 0 and "4 members" in ok.output and "1 zones" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nname = "x"\n', encoding="utf-8")
    result = runner.invoke(app, ["mechanism", "check", str(bad)])
    assert result.exit_code == 2 and "area" in result.output


def _syria_copy(folder: Path, encoding: str, bom: bytes = b"") -> Path:
    """The Syria mechanism file written in another encoding beside its data folder."""
    source = scenario_path("syria")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for data in (source.parent / "data").iterdir():
        (folder / "data" / data.name).write_bytes(data.read_bytes())
    path = folder / f"syria-{encoding}.toml"
    path.write_bytes(bom + source.read_text(encoding="utf-8").encode(encoding))
    return path


@pytest.mark.parametrize("command", ["check", "declare"])
@pytest.mark.parametrize(
    ("made", "words"),
    [
        (lambda d: _syria_copy(d, "utf-16"), "not UTF-8 text; save the mechanism file as UTF-8"),
        (lambda d: _syria_copy(d, "cp1254"), "not UTF-8 text"),  # Turkish Windows: 'Türkiye' is one byte
        (lambda d: d.mkdir(parents=True) or d, "is a folder, not a file"),
        (lambda d: d / "missing.toml", "missing.toml: no such file"),
    ],
    ids=["utf-16", "cp1254", "folder", "missing"],
)
def test_a_mechanism_file_that_cannot_be_read_is_refused_in_words(
    tmp_path: Path, command: str, made: Callable[[Path], Path], words: str
) -> None:
    """A file saved by an editor in UTF-16 or a Windows code page was a Python traceback (exit 1)."""
    path = made(tmp_path / "files")
    args = ["mechanism", command, str(path)] + (["--db", str(tmp_path / "new.db")] if command == "declare" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "new.db").exists()  # refused before a database is made


def test_a_mechanism_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad's UTF-8 begins with a byte-order mark, which is not part of the text (it was 'not valid TOML')."""
    path = _syria_copy(tmp_path, "utf-8", bom=b"\xef\xbb\xbf")
    result = runner.invoke(app, ["mechanism", "check", str(path)])
    assert result.exit_code == 0 and result.output.startswith("tr-il-syria:"), result.output


def test_every_command_has_help_with_an_example() -> None:
    for args in (
        ["check"],
        ["demo"],
        ["serve"],
        ["ledger", "check"],
        ["ledger", "export"],
        ["ledger", "verify"],
        ["mechanism", "check"],
        ["member", "add"],
        ["member", "token"],
        ["member", "revoke"],
        ["hotline", "send"],
        ["hotline", "ack"],
        ["hotline", "tail"],
    ):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, args


def test_scripted_demo_runs_in_a_real_process(tmp_path: Path) -> None:
    """./run-demo --script, through the README's wrapper, with a database kept for inspection."""
    db = tmp_path / "readme.db"
    done = subprocess.run(
        [str(ROOT / "run-demo"), "--script", "--db", str(db)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "CONFLICT" in done.stdout and "chain verifies" in done.stdout
    assert db.exists()
    # beside the record, what an operations centre reads: Türkiye's picture as KML, valid OGC KML 2.2 with the
    # declared zones in it, and the draft NOTAM of its Palmyra deployment, which an independent parser reads
    from aviconv_notam.parser import parse as parse_notam
    from lxml import etree

    kml = etree.parse(str(tmp_path / "picture-TR.kml"))
    schema = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "vendor" / "kml" / "ogckml22.xsd")))
    assert schema.validate(kml), schema.error_log
    names = kml.xpath(
        "//k:Folder[k:name='Zones']/k:Placemark/k:name/text()", namespaces={"k": "http://www.opengis.net/kml/2.2"}
    )
    assert any("(IL-RL-PALMYRA)" in n for n in names), names  # the red line Israel declared
    (notam_file,) = tmp_path.glob("notam-TR-*.txt")
    notam = parse_notam(notam_file.read_text())
    assert notam.fir == "OSTT" and notam.q_line.qcode == "QRTCA", notam  # Damascus FIR, a temporary restricted area
    assert abs(notam.q_line.centre_lat - 34.5574) < 0.01 and abs(notam.q_line.centre_lon - 38.3169) < 0.01  # Palmyra
    assert (notam.effective_to - notam.effective_from).days == 30


def test_member_add_prints_a_token_once_and_revoke_ends_it(tmp_path: Path) -> None:
    from deconflict.service import Service
    from deconflict.store import open_store

    db = str(tmp_path / "m.db")
    assert runner.invoke(app, ["demo", "--script", "--db", db]).exit_code == 0
    added = runner.invoke(
        app,
        [
            "member",
            "add",
            "--db",
            db,
            "--mechanism",
            "tr-il-syria",
            "--party",
            "TR",
            "--role",
            "party",
            "--name",
            "Duty officer",
        ],
    )
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("dcf_")
    service = Service(open_store(db))
    found = service.authenticate(token)
    assert found is not None and found[1].id == "TR-1" and found[1].party == "TR"
    with service.store.engine.connect() as c:  # only the hash is kept
        assert token not in repr(c.exec_driver_sql("select * from tokens").fetchall())
    revoked = runner.invoke(app, ["member", "revoke", "--db", db, "--mechanism", "tr-il-syria", "--member", "TR-1"])
    assert revoked.exit_code == 0 and "1 token(s)" in revoked.output
    assert Service(open_store(db)).authenticate(token) is None
    bad = runner.invoke(
        app,
        ["member", "add", "--db", db, "--mechanism", "tr-il-syria", "--party", "RU", "--role", "party", "--name", "x"],
    )
    assert bad.exit_code == 2 and "not a party" in bad.output
    missing = runner.invoke(
        app, ["member", "token", "--db", str(tmp_path / "no.db"), "--mechanism", "m", "--member", "x"]
    )
    assert missing.exit_code == 2 and "no such database file" in missing.output


def test_the_scripted_demo_refuses_a_database_that_already_holds_its_record(tmp_path: Path) -> None:
    """A second --script on the same file would append a second play behind the first one's clock."""
    db = str(tmp_path / "played.db")
    assert runner.invoke(app, ["demo", "--script", "--db", db]).exit_code == 0
    from deconflict.service import Service

    before = Service.open(db).head("tr-il-syria")
    again = runner.invoke(app, ["demo", "--script", "--db", db])
    assert again.exit_code == 2 and "already holds the scenario's record" in again.output, again.output
    assert Service.open(db).head("tr-il-syria") == before  # nothing appended


@pytest.mark.parametrize(
    "command",
    [
        ["ledger", "check"],
        ["replay", "--at", "2026-12-07T07:00:00Z"],
        ["member", "token", "--mechanism", "tr-il-syria", "--member", "TR"],
        ["ledger", "export", "--out", "x.jsonl"],
    ],
)
def test_a_file_that_is_not_a_database_is_refused_in_one_line(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engineer's walk-through: a --db that is a text file ended these commands in a traceback (SQLAlchemy's
    "file is not a database" and 120 lines more); it is one line, exit 2, and the file unchanged."""
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    before = notes.read_bytes()
    result = runner.invoke(app, [*command, "--db", str(notes)])
    assert result.exit_code == 2, result.output
    said = result.stderr.strip().splitlines()
    assert said == [
        "error: the database refused: file is not a database; check --db (a deconflict database, file or URL, that "
        "this user may read and write)"
    ], said
    assert notes.read_bytes() == before
