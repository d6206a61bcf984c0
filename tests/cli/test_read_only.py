"""The commands that only read leave the database as they found it: an investigator checks, replays and reports
on a copy that is evidence, and the hash taken of it when it was handed over must still hold afterwards.

They used to switch the file to SQLite's write-ahead log on opening it (the pragma rewrites the file's header:
4 bytes, so every such command changed the evidence's hash)."""

from __future__ import annotations

import gc
import hashlib
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.store import open_store

runner = CliRunner()

READERS = {
    "ledger check": ["ledger", "check"],
    "replay": ["replay", "--at", "2030-01-01T00:00:00Z"],
    "replay around": ["replay", "--at", "2030-01-01T00:00:00Z", "--window-h", "24"],
    "replay check": ["replay", "--check-snapshots"],
    "timeline": [
        "timeline",
        *("--lat", "34.5", "--lon", "37.5", "--radius-km", "400"),
        *("--from", "2020-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"),
    ],
    "report": ["report", "--out", "{out}/report"],
    "keys list": ["keys", "list"],
    "export geojson": ["export", "geojson", "--as", "TR", "--out", "{out}/picture.geojson"],
    "export kml": ["export", "kml", "--as", "TR", "--out", "{out}/picture.kmz"],
    "export notam": ["export", "notam", "--as", "TR", "--out", "{out}/notams.txt"],
    "notam": ["notam", "TR-0002", "--as", "TR"],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted demo's database, as its service left it (SQLite's write-ahead log mode)."""
    live = tmp_path_factory.mktemp("served") / "demo.db"
    assert runner.invoke(app, ["demo", "--script", "--db", str(live)]).exit_code == 0
    with closing(sqlite3.connect(live)) as con:  # all of it in the file, which the tests copy
        assert con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    return live


@pytest.fixture(scope="module")
def evidence(demo: Path) -> Path:
    """A copy of a mechanism's database as an investigator is handed it: ``deconflict backup``'s one file (a
    rollback journal, not a write-ahead log), of the scripted demo's record."""
    live, folder = demo, demo.parent
    copy = folder / "evidence.db"
    backed = runner.invoke(app, ["backup", "--db", str(live), "--out", str(copy)])
    assert backed.exit_code == 0, backed.output
    return copy


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", READERS.values(), ids=list(READERS))
def test_a_command_that_reads_leaves_the_evidence_as_it_was(command: list[str], evidence: Path, tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    copy = case / "evidence.db"
    copy.write_bytes(evidence.read_bytes())
    assert sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True).execute("PRAGMA journal_mode").fetchone() == (
        "delete",
    )
    before = _digest(copy)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, [*(part.format(out=out) for part in command), "--db", str(copy)])
    assert result.exit_code == 0, result.output
    assert _digest(copy) == before  # not a byte changed
    assert sorted(p.name for p in case.iterdir()) == ["evidence.db"]  # and nothing written beside it


def test_a_served_database_is_read_as_it_stands_and_left_as_it_was(tmp_path: Path, demo: Path) -> None:
    """A server's own file (a write-ahead log, entries committed and not yet copied into the file): a check reads
    every committed entry (a reader that took the file for immutable would miss those in the log), and the file and
    its log are as the server left them."""
    db = tmp_path / "served.db"
    db.write_bytes(demo.read_bytes())
    service = Service(open_store(str(db)), clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))
    try:
        with service.store.engine.connect() as conn:  # the log holds what follows until a checkpoint
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        head = service.head("tr-il-syria").seq
        for _ in range(3):
            service.send_message(mechanism_id="tr-il-syria", actor="TR", template="holding", params={"ref": "C1"})
        assert service.head("tr-il-syria").seq == head + 3
        wal = Path(f"{db}-wal")
        before = (_digest(db), _digest(wal))
        result = runner.invoke(app, ["ledger", "check", "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert f"{head + 3} entries verify" in result.output
        assert (_digest(db), _digest(wal)) == before
    finally:
        service.store.close()


def test_a_reader_cannot_write(tmp_path: Path, evidence: Path) -> None:
    """What opens a database read-only is refused any write by the database itself (a command that wrote by
    mistake would fail, not change the evidence)."""
    copy = tmp_path / "evidence.db"
    copy.write_bytes(evidence.read_bytes())
    before = _digest(copy)
    service = Service.open(str(copy), read_only=True, clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))
    try:
        assert service.head("tr-il-syria").seq > 0
        with pytest.raises(Exception, match="readonly|read-only|query_only"):
            service.send_message(mechanism_id="tr-il-syria", actor="TR", template="holding", params={"ref": "C1"})
    finally:
        service.store.close()
    assert _digest(copy) == before


def test_a_reader_is_told_of_a_missing_file_and_makes_none(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    result = runner.invoke(app, ["ledger", "check", "--db", str(missing)])
    assert result.exit_code == 2
    assert "no such database file" in result.output
    assert not missing.exists()


@pytest.fixture(scope="module")
def no_record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Databases that hold no record: an empty file (``touch``, a copy cut short), and deconflict's tables with no
    mechanism declared and no service key (a store opened and closed, nothing served on it)."""
    folder = tmp_path_factory.mktemp("no-record")
    empty = folder / "empty.db"
    empty.touch()
    schema = folder / "schema.db"
    open_store(str(schema)).close()
    with closing(sqlite3.connect(schema)) as con:
        assert con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM custody_keys").fetchone() == (0,)
    return {"empty": empty, "schema": schema}


@pytest.mark.parametrize("held", ["empty", "schema"])
@pytest.mark.parametrize("command", READERS.values(), ids=list(READERS))
def test_a_database_with_no_record_is_said_so_and_left_as_it_was(
    command: list[str], held: str, no_record: dict[str, Path], tmp_path: Path
) -> None:
    """Said in a line, exit 2: no "no such table" (the empty file), no "attempt to write a readonly database"
    (the service's key was made and written on opening), no silent exit 0 of ``ledger check`` with nothing
    checked; not a byte written."""
    case = tmp_path / "case"
    case.mkdir()
    copy = case / "copy.db"
    copy.write_bytes(no_record[held].read_bytes())
    before = _digest(copy)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, [*(part.format(out=out) for part in command), "--db", str(copy)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    if held == "empty":
        assert f"{copy} holds no deconflict record: it is empty" in said
    else:
        assert "holds no mechanism" in said or "holds no record" in said, said
    assert "table" not in said and "readonly" not in said and "Traceback" not in said
    assert _digest(copy) == before
    # (SQLite reads a write-ahead-log file, as deconflict's own are, through a -shm and an empty -wal beside it)
    assert {p.name for p in case.iterdir()} <= {"copy.db", "copy.db-shm", "copy.db-wal"}
    assert not any(out.iterdir())


@pytest.mark.parametrize(
    "command",
    [["ledger", "export", "--out", "{out}/record.jsonl"], ["import", "notam", "{out}/n.txt", "--as", "TR"]],
    ids=["ledger export", "import notam"],
)
def test_a_writer_that_makes_no_record_refuses_an_empty_file_untouched(command: list[str], tmp_path: Path) -> None:
    """``ledger export`` (it signs a checkpoint) on an empty file switched it to WAL (4,096 bytes, a -wal and a -shm
    beside it), then said "the database refused: no such table: custody_keys"."""
    empty = tmp_path / "case" / "empty.db"
    empty.parent.mkdir()
    empty.touch()
    out = tmp_path / "out"
    out.mkdir()
    (out / "n.txt").write_text("not read\n", encoding="utf-8")
    result = runner.invoke(app, [*(part.format(out=out) for part in command), "--db", str(empty)])
    assert result.exit_code == 2, result.output
    assert f"{empty} holds no deconflict record: it is empty" in " ".join(result.output.split())
    assert empty.stat().st_size == 0 and sorted(p.name for p in empty.parent.iterdir()) == ["empty.db"]


def test_a_path_with_spaces_and_percent_signs_is_read(tmp_path: Path, evidence: Path) -> None:
    """The read-only open names the file in a URI: a path that needs quoting there is still the same file."""
    folder = tmp_path / "case 7 %20 a%b"
    folder.mkdir()
    copy = folder / "evidence #1?.db"
    copy.write_bytes(evidence.read_bytes())
    before = _digest(copy)
    result = runner.invoke(app, ["ledger", "check", "--db", str(copy)])
    assert result.exit_code == 0, result.output
    assert "entries verify" in result.output
    assert _digest(copy) == before


def test_a_home_relative_path_given_quoted_is_read(
    tmp_path: Path, evidence: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'--db ~/case/evidence.db' quoted (or '--db=~/...'): no shell expands it, and the file was said not to exist."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "evidence.db").write_bytes(evidence.read_bytes())
    result = runner.invoke(app, ["ledger", "check", "--db", "~/case/evidence.db"])
    assert result.exit_code == 0, result.output
    assert "entries verify" in result.output


@pytest.fixture
def read_only_media(tmp_path: Path) -> Iterator[Path]:
    """A folder on a file system mounted read-only, as evidence on a write-blocked disk is (a tmpfs, filled and
    then remounted read-only: needs root, as CI runs)."""
    mount = tmp_path / "media"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a file system here (not root)")
    try:
        yield mount
    finally:
        gc.collect()  # the commands run in this process: their engines closed before the unmount
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_evidence_on_read_only_media_is_read_even_in_write_ahead_log_mode(
    read_only_media: Path, demo: Path, evidence: Path
) -> None:
    """SQLite reads a file in write-ahead-log mode through a shared-memory file beside it, which it cannot make on
    read-only media ("unable to open database file"): such a file is read as the immutable file it is there, unless
    a log beside it holds commits the file does not, which SQLite cannot read there (said, in words)."""
    (read_only_media / "served.db").write_bytes(demo.read_bytes())  # a server's file: its header says WAL
    (read_only_media / "backup.db").write_bytes(evidence.read_bytes())
    (read_only_media / "logged.db").write_bytes(demo.read_bytes())
    (read_only_media / "logged.db-wal").write_bytes(b"commits")
    (read_only_media / "stopped.db").write_bytes(demo.read_bytes())
    (read_only_media / "stopped.db-wal").write_bytes(b"")  # a log that holds nothing
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_media)], check=True)
    for name in ("served.db", "backup.db", "stopped.db"):
        result = runner.invoke(app, ["ledger", "check", "--db", str(read_only_media / name)])
        assert result.exit_code == 0, (name, result.output)
        assert "entries verify" in result.output
        replayed = runner.invoke(app, ["replay", "--at", "2030-01-01T00:00:00Z", "--db", str(read_only_media / name)])
        assert replayed.exit_code == 0, (name, replayed.output)
    refused = runner.invoke(app, ["ledger", "check", "--db", str(read_only_media / "logged.db")])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"error: {read_only_media / 'logged.db'}: it is in write-ahead-log mode and logged.db-wal beside it holds "
        "commits, on a folder this process cannot write (read-only media?), where SQLite cannot read them: copy the "
        "file with its logged.db-wal into a folder you can write, and read the copy"
    )
