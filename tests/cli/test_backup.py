"""``deconflict backup`` and ``restore``: a backup taken under load restores into a database whose record
verifies, whose tables are the source's at the backup's head, and that a server serves; a backup edited
in its record or in its tables is refused by name; bad input gets one worded error and changes nothing."""

from __future__ import annotations

import io
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import T4, A, M, declared_db, declared_service, vol
from support.live import LiveServer, auth, start_server, wait_until
from typer.testing import CliRunner

from deconflict.api.settings import Settings
from deconflict.cli import app
from deconflict.clock import FixedClock, iso
from deconflict.service import Service
from deconflict.store import open_store
from deconflict.store.replay import TABLES, replay, state

runner = CliRunner()
EXE = Path(sys.executable).parent / "deconflict"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process (so that it runs beside the server, not inside it)."""
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=600, check=False)


# --- a backup taken under load -------------------------------------------------------------------


class Load:
    """Writers posting notices (TR and IL, near T4: they conflict) and hotline messages to a live server
    until stopped; every 2xx is counted."""

    def __init__(self, url: str, tokens: dict[str, str], clock: FixedClock) -> None:
        self.url, self.tokens, self.clock = url, tokens, clock
        self.accepted = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(party, kind), daemon=True)
            for party, kind in (("TR", "notice"), ("IL", "notice"), ("TR", "message"), ("IL", "message"))
        ]

    def _run(self, party: str, kind: str) -> None:
        rng = random.Random(f"{party}{kind}")
        with httpx.Client(base_url=self.url, headers=auth(self.tokens[party]), timeout=60) as c:
            n = 0
            while not self._stop.is_set():
                n += 1
                if kind == "notice":
                    centre = (T4[0] + rng.uniform(-0.3, 0.3), T4[1] + rng.uniform(-0.3, 0.3))
                    body: dict[str, Any] = {
                        "kind": "uav_patrol",
                        "volumes": [vol(centre, self.clock() + timedelta(hours=2))],
                    }
                    r = c.post(f"{A}/activities", json=body)
                else:
                    r = c.post(f"{A}/messages", json={"text": f"{party} message {n}"})
                with self._lock:
                    if r.status_code in (200, 201):
                        self.accepted += 1
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")

    def count(self) -> int:
        with self._lock:
            return self.accepted

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)
        assert not self.failures, self.failures[:5]


def test_a_backup_taken_under_load_restores_verified_and_serves(tmp_path: Path, clock: FixedClock) -> None:
    source = declared_db(tmp_path / "live.db", clock)
    # the writers' pace is the machine's: no per-member write limit (its window would never move on a pinned clock)
    settings = Settings(db=source, clock=clock, tick_s=0.0, writes_per_member=0)
    server = LiveServer(Service(open_store(source), clock=clock), settings).start()
    tokens = server.tokens()
    load = Load(server.url, tokens, clock).start()
    try:
        wait_until(lambda: load.count() >= 40, "the load did not get going (40 writes accepted)")
        server.service.checkpoint(M)  # a signed checkpoint in the backup, held against the restored chain
        before = load.count()
        made = _cli("backup", "--db", source, "--out", str(tmp_path / "live.backup"))
        during = load.count() - before
        wait_until(lambda: load.count() > before + during + 10, "the load stopped after the backup")
    finally:
        load.stop()
        server.stop()
    assert made.returncode == 0, made.stderr
    assert during > 0, "nothing was written while the backup ran"
    assert "SQLite online backup" in made.stdout

    done = _cli("restore", "--from", str(tmp_path / "live.backup"), "--db", str(tmp_path / "restored.db"))
    assert done.returncode == 0, done.stderr
    assert "ready to serve" in done.stdout and "equal to the backup's" in done.stdout
    # both hold the service's signing seed and the tokens' hashes: readable by their owner only
    assert (tmp_path / "live.backup").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "restored.db").stat().st_mode & 0o777 == 0o600

    original = Service(open_store(source), clock=clock)
    restored = Service(open_store(str(tmp_path / "restored.db")), clock=clock)
    try:
        assert restored.verify(M).ok
        head = restored.head(M)
        live_head = original.head(M)
        assert 40 < head.seq < live_head.seq  # the copy is a moment of a record that went on growing
        assert f"{M}: record to entry {head.seq} " in made.stdout
        entries = original.entries_after(M, 0, limit=100_000)
        assert restored.entries_after(M, 0, limit=100_000) == entries[: head.seq]
        # the source at the backup's head, rebuilt from its record alone, is what the restored tables hold
        then = replay(entries[: head.seq], mechanism=M, at=None)
        with restored.store.read() as s:
            now = state(s, M)
        assert {name: now[name] for name in TABLES} == {name: then[name] for name in TABLES}
        assert then["conflicts"] and len(then["messages"]) > 20
        assert {a.id for a in restored.activities(M)} == {a["id"] for a in then["activities"]}
        assert {c["id"] for c in restored.conflicts(M)} == {c["id"] for c in then["conflicts"]}
        assert restored.checkpoints(M) == original.checkpoints(M)
        for who in ("TR", "IL", "AZ"):  # nothing was acknowledged under the load: what the source said up to the
            reader = original.member(M, who)  # backup's head stands as it was, and the restored service says it
            said = [m for m in original.messages(M, reader=reader, limit=100_000) if m["seq"] <= head.seq]
            assert restored.messages(M, reader=restored.member(M, who), limit=100_000) == said
    finally:
        original.store.close()
        restored.store.close()

    served = start_server(str(tmp_path / "restored.db"), clock)  # the members' tokens came with it
    try:
        with httpx.Client(base_url=served.url, headers=auth(tokens["IL"]), timeout=30) as c:
            seen = c.get(f"{A}/messages", params={"limit": 5000})
            assert seen.status_code == 200 and seen.json()
            assert {m["id"] for m in seen.json()} <= {m["id"] for m in then["messages"]}
            assert c.get(f"{A}/activities").status_code == 200
            sent = c.post(f"{A}/messages", json={"text": "after the restore"})
            assert sent.status_code == 201, sent.text
        assert served.service.head(M).seq == head.seq + 1 and served.service.verify(M).ok
    finally:
        served.stop()


# --- a damaged backup is refused -----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of the scripted demo's database (notices, conflicts, alerts, escalations, a checkpoint,
    tracks), taken through the command line."""
    from rich.console import Console

    from deconflict.demo import run_script

    folder = tmp_path_factory.mktemp("demo")
    db = folder / "demo.db"
    run_script(Console(file=io.StringIO()), db=str(db), start=datetime(2026, 12, 2, 6, 0, tzinfo=UTC)).store.close()
    result = runner.invoke(app, ["backup", "--db", str(db), "--out", str(folder / "demo.backup")])
    assert result.exit_code == 0, result.output
    return folder / "demo.backup"


def _edited(demo_backup: Path, folder: Path, sql: str) -> Path:
    copy = folder / "edited.backup"
    shutil.copyfile(demo_backup, copy)
    with sqlite3.connect(copy) as con:
        assert con.execute(sql).rowcount == 1
    return copy


def _refused(backup: Path, folder: Path) -> str:
    before = sorted(p.name for p in folder.iterdir())
    result = runner.invoke(app, ["restore", "--from", str(backup), "--db", str(folder / "new.db")])
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing half-written, nothing left aside
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {backup} refused, nothing written"), last
    return last


def test_the_demo_backup_restores(demo_backup: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["restore", "--from", str(demo_backup), "--db", str(tmp_path / "new.db")])
    assert result.exit_code == 0, result.output
    assert "backup taken " in result.stdout and "(SQLite online backup)" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]  # one self-contained file


def test_a_backup_of_a_backup_is_a_backup(demo_backup: Path, tmp_path: Path) -> None:
    """A backup file is a database too: backing it up again (a copy kept off site from the copy) ended in a
    traceback ("table deconflict_backup already exists"). The second copy says when it was taken, and restores."""
    again = tmp_path / "again.backup"
    result = runner.invoke(app, ["backup", "--db", str(demo_backup), "--out", str(again)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(again) as con:
        taken = dict(con.execute("SELECT key, value FROM deconflict_backup").fetchall())
    with sqlite3.connect(demo_backup) as con:
        first = dict(con.execute("SELECT key, value FROM deconflict_backup").fetchall())
    assert taken["heads"] == first["heads"] and taken["taken_at"] >= first["taken_at"]
    restored = runner.invoke(app, ["restore", "--from", str(again), "--db", str(tmp_path / "new.db")])
    assert restored.exit_code == 0, restored.output


def _first_notice(backup: Path) -> int:
    with sqlite3.connect(backup) as con:
        return int(con.execute("SELECT min(seq) FROM ledger WHERE type = 'activity.notified'").fetchone()[0])


def test_an_edited_entry_is_refused_by_its_number(demo_backup: Path, tmp_path: Path) -> None:
    seq = _first_notice(demo_backup)
    edit = """replace(payload, '"title":"', '"title":"Edited: ')"""
    sql = f"UPDATE ledger SET payload = {edit} WHERE seq = {seq}"
    said = _refused(_edited(demo_backup, tmp_path, sql), tmp_path)
    assert f"tr-il-syria: the backup's record does not verify: entry {seq}: payload does not match its hash" in said


def test_an_entry_that_cannot_be_projected_is_refused_by_its_number(demo_backup: Path, tmp_path: Path) -> None:
    seq = _first_notice(demo_backup)
    said = _refused(_edited(demo_backup, tmp_path, f"UPDATE ledger SET payload = '{{}}' WHERE seq = {seq}"), tmp_path)
    assert f"tr-il-syria: entry {seq} (activity.notified) cannot be rebuilt into the tables" in said


def test_an_edited_table_is_refused_by_table_row_and_column(demo_backup: Path, tmp_path: Path) -> None:
    sql = "UPDATE conflicts SET status = 'open', resolution = NULL WHERE id = 'C1' AND status = 'resolved'"
    said = _refused(_edited(demo_backup, tmp_path, sql), tmp_path)
    assert "table conflicts: row (tr-il-syria, C1) differs from its record in column status" in said


def test_a_row_added_to_a_table_without_the_record_is_refused(demo_backup: Path, tmp_path: Path) -> None:
    sql = (
        "INSERT INTO members (mechanism_id, id, name, role, party, language, added_at) "
        "VALUES ('tr-il-syria', 'TR-9', 'Not in the record', 'party', 'TR', 'en', '2026-12-02 06:00:00')"
    )
    said = _refused(_edited(demo_backup, tmp_path, sql), tmp_path)
    assert "table members: row (tr-il-syria, TR-9) is in the backup's table but not in its record" in said


def test_a_token_of_a_member_the_record_never_added_is_refused(demo_backup: Path, tmp_path: Path) -> None:
    sql = (
        "INSERT INTO tokens (token_hash, mechanism_id, member_id, label, created_at) "
        "VALUES ('00', 'tr-il-syria', 'TR-9', 'planted', '2026-12-02 06:00:00')"
    )
    said = _refused(_edited(demo_backup, tmp_path, sql), tmp_path)
    assert "table tokens: its rows do not fit the tables rebuilt from the record" in said


def test_a_rewritten_checkpoint_is_refused(demo_backup: Path, tmp_path: Path) -> None:
    first = "(SELECT min(seq) FROM checkpoints)"
    flipped = "CASE substr(hash, 1, 1) WHEN '0' THEN '1' ELSE '0' END || substr(hash, 2)"  # one digit, surely changed
    said = _refused(
        _edited(demo_backup, tmp_path, f"UPDATE checkpoints SET hash = {flipped} WHERE seq = {first}"), tmp_path
    )
    assert "tr-il-syria: the backup's record does not verify: " in said and "checkpoint" in said


# --- bad input -----------------------------------------------------------------------------------


def _bad(args: list[str], folder: Path, needle: str) -> None:
    before = sorted(p.name for p in folder.iterdir())
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in folder.iterdir()) == before


def test_restore_refuses_bad_input_with_one_line(demo_backup: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a backup\n")
    empty = tmp_path / "other.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    shutil.copyfile(demo_backup, tmp_path / "existing.db")
    new = str(tmp_path / "new.db")
    _bad(["restore", "--from", str(tmp_path / "missing.backup"), "--db", new], tmp_path, "missing.backup: no such file")
    _bad(["restore", "--from", str(tmp_path / "notes.txt"), "--db", new], tmp_path, "is not a deconflict backup")
    _bad(["restore", "--from", str(empty), "--db", new], tmp_path, "is not a deconflict database or backup")
    _bad(["restore", "--from", str(tmp_path), "--db", new], tmp_path, "is not a file")
    existing = ["restore", "--from", str(demo_backup), "--db", str(tmp_path / "existing.db")]
    _bad(existing, tmp_path, "existing.db already exists; give a new file, or --force")
    itself = ["restore", "--from", str(tmp_path / "existing.db"), "--db", str(tmp_path / "existing.db"), "--force"]
    _bad(itself, tmp_path, "is the backup itself")
    assert runner.invoke(app, [*existing, "--force"]).exit_code == 0
    assert Service(open_store(str(tmp_path / "existing.db"))).verify(M).ok


def test_backup_refuses_bad_input_with_one_line(tmp_path: Path, clock: FixedClock) -> None:
    db = declared_db(tmp_path / "d.db", clock)
    (tmp_path / "taken.backup").write_text("an earlier backup\n")
    _bad(["backup", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path / "b")], tmp_path, "no such database")
    _bad(["backup", "--db", db, "--out", str(tmp_path / "taken.backup")], tmp_path, "already exists")
    _bad(["backup", "--db", db, "--out", str(tmp_path / "no" / "b")], tmp_path, "does not exist")
    _bad(
        ["backup", "--db", str(tmp_path / "taken.backup"), "--out", str(tmp_path / "b")],
        tmp_path,
        "file is not a database",
    )
    _bad(["backup", "--db", db, "--out", db, "--force"], tmp_path, "is the database itself")


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_a_postgresql_backup_restores_onto_both_stores(pg_databases: Any, tmp_path: Path, clock: FixedClock) -> None:
    url = pg_databases.create()
    target = pg_databases.create()
    try:
        service = declared_service(url, clock)
        for i in range(3):
            volume = vol(T4, clock() + timedelta(hours=2), end=iso(clock() + timedelta(hours=4)))
            for party in ("TR", "IL"):
                service.notify(mechanism_id=M, actor=party, kind="uav_patrol", volumes=[volume])
            clock.advance(seconds=60 * i + 60)
        service.checkpoint(M)
        head = service.head(M)
        service.store.close()
        made = runner.invoke(app, ["backup", "--db", url, "--out", str(tmp_path / "pg.backup")])
        assert made.exit_code == 0, made.output
        assert "PostgreSQL logical export" in made.stdout
        for db in (str(tmp_path / "restored.db"), target):
            done = runner.invoke(app, ["restore", "--from", str(tmp_path / "pg.backup"), "--db", db])
            assert done.exit_code == 0, done.output
            restored = Service(open_store(db), clock=clock)
            try:
                assert restored.head(M) == head and restored.verify(M).ok
                assert len(restored.conflicts(M)) >= 3
            finally:
                restored.store.close()
        again = runner.invoke(app, ["restore", "--from", str(tmp_path / "pg.backup"), "--db", target])
        assert again.exit_code == 2 and "already holds a record" in again.stderr
    finally:
        pg_databases.drop(url)
        pg_databases.drop(target)


@pytest.mark.parametrize("name", ["live.db", "a%20b?#.db"])
def test_restore_refuses_to_replace_a_file_a_server_runs_on(demo_backup: Path, tmp_path: Path, name: str) -> None:
    """``restore --force`` onto the file of a running server replaced it under the server: the writes it answered
    meanwhile were lost and the record broke (an engineer's walk-through: entries 1637-1646 gone, one of them
    answered 2xx). A running server holds the duty lease, renewed each second: while it does, restore refuses.
    Whatever the file's name: the lease was looked for in the file a name holding '%', '?' or '#' does not name
    (a review: restore replaced a served 'a%20b.db')."""
    from deconflict.service import ticker

    live = tmp_path / name
    assert runner.invoke(app, ["restore", "--from", str(demo_backup), "--db", str(live)]).exit_code == 0
    store = open_store(str(live))
    holder = ticker.holder_name()
    assert ticker.hold(store, holder, datetime.now(UTC), lease_s=120)  # as a running server does
    before = live.read_bytes()
    refused = runner.invoke(app, ["restore", "--from", str(demo_backup), "--db", str(live), "--force"])
    assert refused.exit_code == 2, refused.output
    assert f"--db: {live} is in use: a server (process {holder.split(':')[1]} on " in refused.stderr
    assert "stop it first" in refused.stderr
    assert live.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # nothing left aside
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(name)) == []  # nor made beside it
    assert ticker.release(store, holder, datetime.now(UTC))  # the server stopped cleanly
    store.close()
    done = runner.invoke(app, ["restore", "--from", str(demo_backup), "--db", str(live), "--force"])
    assert done.exit_code == 0, done.output
