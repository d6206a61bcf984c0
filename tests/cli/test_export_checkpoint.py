"""``ledger export --db`` on a database no server runs on (the demo after its script, a stopped service, a copy)
vouches for the head as it stood when its duty loop last ran, not now.

It signed its checkpoint at the moment of export. The bundle's verifier holds a checkpoint's time to every
escalation due before it, and nothing had checked the deadlines since the service stopped: the README's own
"try it on the demo" (``demo --script``, then ``ledger export``, then ``ledger verify``) said DOES NOT HOLD,
"the escalation of M59 ... fell due ... and the record has none of it", once a quarter of an hour had passed
between the script and the export. A server that runs on the database (its duty lease held) still has the
head signed as it stands now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.builders import T4, M, declared_service, vol
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import FixedClock
from deconflict.service.ticker import hold
from deconflict.store import open_store

runner = CliRunner()
HELD_BY_OPERATOR = 3  # it verifies; the service holds the parties' keys (the builders' custody)


def _stopped_two_hours_ago(path: Path) -> tuple[str, datetime]:
    """A record whose last entries are two alerts awaiting an answer, written two hours ago by a service that
    then stopped: their escalations fell due long since, and nothing recorded them."""
    written = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    clock = FixedClock(written)
    service = declared_service(path, clock)
    service.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock(), start_h=3)])
    service.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, clock(), start_h=3)])
    assert any(c["status"] == "open" for c in service.conflicts(M))  # alerts with deadlines, unanswered
    service.store.close()
    return str(path), written


def _checkpoint_at(bundle: Path) -> str:
    head = json.loads(bundle.read_text().splitlines()[0])
    return str(head["checkpoints"][-1]["at"])


def test_a_stopped_services_record_is_vouched_for_as_it_stood_and_verifies(tmp_path: Path) -> None:
    db, written = _stopped_two_hours_ago(tmp_path / "stopped.db")
    out = tmp_path / "record.jsonl"
    exported = runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "no server is running on" in exported.stderr and "not now" in exported.stderr
    assert _checkpoint_at(out) == written.isoformat().replace("+00:00", "Z")  # the last entry's time
    verified = runner.invoke(app, ["ledger", "verify", str(out)])
    assert verified.exit_code == HELD_BY_OPERATOR, verified.output
    assert "DOES NOT HOLD" not in verified.output and "missing" not in verified.output


def test_a_served_databases_head_is_vouched_for_now(tmp_path: Path) -> None:
    """The duty lease held (a server's loop runs on it): the head as it stands now, which the verifier holds to
    every escalation fallen due, so a server that let them pass is caught."""
    db, written = _stopped_two_hours_ago(tmp_path / "served.db")
    store = open_store(db)
    assert hold(store, "host:1:live", datetime.now(UTC), lease_s=120)
    store.close()
    out = tmp_path / "record.jsonl"
    exported = runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "no server is running" not in exported.stderr
    assert datetime.fromisoformat(_checkpoint_at(out)) > written + timedelta(hours=1)
    verified = runner.invoke(app, ["ledger", "verify", str(out)])
    assert verified.exit_code == 1 and "missing at the end of the record" in verified.output, verified.output


def test_a_command_that_writes_to_a_stopped_record_first_records_what_fell_due(tmp_path: Path) -> None:
    """``member add`` on a record no server runs on (the demo's, ten minutes after its script): the member's entry
    came after the deadlines its alerts had passed, with their escalations missing before it, and the record
    failed ``ledger verify`` for good ("missing before entry N"), serve it as one might afterwards. Now the
    command records what fell due first, as a server does when it starts."""
    db, written = _stopped_two_hours_ago(tmp_path / "stopped.db")
    added = runner.invoke(
        app, ["member", "add", "--db", db, "--mechanism", M, "--party", "TR", "--role", "party", "--name", "late"]
    )
    assert added.exit_code == 0, added.output
    out = tmp_path / "record.jsonl"
    assert runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)]).exit_code == 0
    entries = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    types = [e["type"] for e in entries]
    assert types[-1] == "member.added" and "message.escalated" in types[types.index("conflict.detected") :]
    verified = runner.invoke(app, ["ledger", "verify", str(out)])
    assert verified.exit_code == HELD_BY_OPERATOR, verified.output
    assert "DOES NOT HOLD" not in verified.output
    store = open_store(db)  # and it did not keep the duty lease: a server started now takes it at once
    from deconflict.service.ticker import lease

    held = lease(store)
    store.close()
    assert held is None or held[1] <= datetime.now(UTC)


def test_a_member_refused_on_a_stopped_record_changes_nothing(tmp_path: Path) -> None:
    """The catch-up comes after the member's checks: a role that is not one (bad input) leaves the record as it
    was, the overdue escalations for the next write that is taken."""
    import sqlite3
    from contextlib import closing

    db, _ = _stopped_two_hours_ago(tmp_path / "stopped.db")

    def rows() -> list[tuple[int, str]]:
        with closing(sqlite3.connect(db)) as conn:
            return list(conn.execute("SELECT seq, type FROM ledger ORDER BY seq"))

    before = rows()
    refused = runner.invoke(
        app, ["member", "add", "--db", db, "--mechanism", M, "--party", "TR", "--role", "bogus", "--name", "x"]
    )
    assert refused.exit_code == 2 and "role" in refused.stderr, refused.output
    assert rows() == before


def test_a_quiet_record_whose_line_checks_fell_due_is_caught_up_too(tmp_path: Path) -> None:
    """Every message answered, the record stopped longer than a line-check interval and the grace: the verifier
    requires the line checks due since the last ones, and a write without them failed it for good ("a line check
    of IL fell due ... and the record has none")."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    clock = FixedClock(started)
    service = declared_service(tmp_path / "quiet.db", clock)
    service.tick(snapshots=False)  # the first line checks, as a server sends them when it starts
    service.release_duty()
    for party in ("TR", "IL"):
        for m in service.messages(M, reader=service.member(M, party), awaiting=True):
            service.acknowledge_message(mechanism_id=M, actor=party, message_id=m["id"])
    assert not any(service.messages(M, reader=service.member(M, p), awaiting=True) for p in ("TR", "IL"))
    service.store.close()
    db = str(tmp_path / "quiet.db")
    added = runner.invoke(
        app, ["member", "add", "--db", db, "--mechanism", M, "--party", "TR", "--role", "party", "--name", "late"]
    )
    assert added.exit_code == 0, added.output
    out = tmp_path / "record.jsonl"
    assert runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)]).exit_code == 0
    verified = runner.invoke(app, ["ledger", "verify", str(out)])
    assert verified.exit_code == HELD_BY_OPERATOR, verified.output


def test_a_key_refused_on_a_stopped_record_changes_nothing(tmp_path: Path) -> None:
    """``keys register --with-key`` with another party's key, or a key not in force: refused before the catch-up
    writes anything (it did: four entries before the refusal)."""
    import sqlite3
    from contextlib import closing

    db, _ = _stopped_two_hours_ago(tmp_path / "stopped.db")

    def rows() -> list[tuple[int, str]]:
        with closing(sqlite3.connect(db)) as conn:
            return list(conn.execute("SELECT seq, type FROM ledger ORDER BY seq"))

    keys = {}
    for name, party in (("tr2", "TR"), ("tr3", "TR"), ("il", "IL")):
        keys[name] = tmp_path / f"{name}.key"
        assert runner.invoke(app, ["keys", "generate", "--party", party, "--out", str(keys[name])]).exit_code == 0
    before = rows()
    for authorising, words in (("il", "is a key of IL, not of TR"), ("tr3", "")):
        refused = runner.invoke(
            app,
            [
                *("keys", "register", "--db", db, "--mechanism", M, "--party", "TR"),
                *("--public-key", str(keys["tr2"]), "--with-key", str(keys[authorising])),
            ],
        )
        assert refused.exit_code == 2 and words in refused.stderr, refused.output
        assert rows() == before
    # the operator's registration (no --with-key) is checked whole before the catch-up too
    zz = tmp_path / "zz.key"
    assert runner.invoke(app, ["keys", "generate", "--party", "ZZ", "--out", str(zz)]).exit_code == 0
    refused = runner.invoke(app, ["keys", "register", "--db", db, "--party", "ZZ", "--public-key", str(zz)])
    assert refused.exit_code == 2 and "'ZZ' has no member" in refused.stderr, refused.output
    assert rows() == before


def test_replay_after_the_duty_loop_last_ran_says_that_nothing_checked_the_deadlines_since(tmp_path: Path) -> None:
    """An investigator replaying a stopped record (or its bundle) an hour after it stopped saw its alerts
    "overdue, 0 escalation steps" and nothing more: the ladder seemingly failed, where the service was not
    running. Said in a note, from when; not said of an instant before it, nor of a served database."""
    db, written = _stopped_two_hours_ago(tmp_path / "stopped.db")
    out = tmp_path / "record.jsonl"
    assert runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)]).exit_code == 0
    stamp = written.isoformat().replace("+00:00", "Z")
    later = (written + timedelta(hours=1)).isoformat()
    for source in (["--db", db], ["--bundle", str(out)]):
        shown = runner.invoke(app, ["replay", *source, "--at", later])
        assert shown.exit_code == 0, shown.output
        said = " ".join(shown.output.split())
        assert f"note: nothing checked the deadlines after {stamp}" in said, said
        assert "without the escalation steps a running service would have recorded" in said
        assert "(overdue)" in said  # the alerts it is about
        then = runner.invoke(app, ["replay", *source, "--at", written.isoformat()])
        assert then.exit_code == 0 and "nothing checked" not in then.output, then.output
    store = open_store(db)
    assert hold(store, "host:1:live", datetime.now(UTC), lease_s=120)  # a server's duty loop runs on it now
    store.close()
    served = runner.invoke(app, ["replay", "--db", db, "--at", later])
    assert served.exit_code == 0 and "nothing checked" not in served.output


def test_replay_inside_a_record_says_nothing_of_deadlines_the_record_goes_on_past(tmp_path: Path) -> None:
    """Replay of a bundle at an instant in the middle of its record said that nothing had checked the deadlines
    since (it looked for a checkpoint of the entry in force at the instant, not of the record's head); the service
    ran on past it, and the record holds what it did."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    clock = FixedClock(start)
    service = declared_service(tmp_path / "long.db", clock)
    service.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock(), start_h=3)])
    service.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, clock(), start_h=3)])
    assert service.checkpoint(M) is not None  # a checkpoint of the head as it stood then, which the bundle carries
    clock.advance(seconds=90 * 60)
    service.tick()  # the duty loop ran on: the escalations fallen due are in the record
    service.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock(), start_h=3)])
    service.store.close()
    db, out = str(tmp_path / "long.db"), tmp_path / "long.jsonl"
    assert runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)]).exit_code == 0
    middle = (start + timedelta(minutes=60)).isoformat()
    for source in (["--db", db], ["--bundle", str(out)]):
        shown = runner.invoke(app, ["replay", *source, "--at", middle])
        assert shown.exit_code == 0, shown.output
        assert "nothing checked" not in shown.output, (source, shown.output)
