"""Replay snapshots: replay from a snapshot gives exactly the document replay from entry 1 gives, at every
instant of a scripted day; a snapshot that does not hold against the record is skipped and reported; the
duty loop writes them, and they survive a restart, a backup and its restore (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from support.builders import HAMA, PALMYRA, T4, M, vol, zone
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.cli import record as cli_record
from deconflict.clock import FixedClock
from deconflict.service import Service, duty
from deconflict.store import ledger, open_store, snapshots
from deconflict.store.schema import LedgerEntry, ReplaySnapshot

runner = CliRunner()


def scripted_day(svc: Service, clock: FixedClock) -> list[datetime]:
    """A day with every kind of entry (notices, amendments, a cancellation, conflicts acknowledged and
    resolved, zones declared and withdrawn, messages, escalations, line checks); the instants of interest."""
    instants = [clock()]

    def step(seconds: float) -> None:
        clock.advance(seconds=seconds)
        instants.append(clock())

    for i in range(4):
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=3 + i)])
        step(30)
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3 + i)])  # a conflict
        step(30)
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id="C1")
    step(60)
    for _ in range(20):  # the other alerts go unanswered: the ladder climbs, line checks fall due
        svc.tick()
        step(120)
    svc.amend(mechanism_id=M, actor="IL", activity_id="IL-0002", seen_version=1, volumes=[vol(PALMYRA, start_h=6)])
    step(10)
    svc.cancel(mechanism_id=M, actor="TR", activity_id="TR-0003")
    svc.declare_zone(mechanism_id=M, actor="IL", zone=zone("z-hama", "restricted", ["uav_patrol"], HAMA, 15000))
    step(10)
    still_open = [c["id"] for c in svc.conflicts(M) if c["status"] != "resolved"][-1]
    svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": still_open})
    svc.resolve_conflict(mechanism_id=M, actor="AZ", conflict_id=still_open, resolution="escalated", note="talks")
    step(60)
    svc.withdraw_zone(mechanism_id=M, actor="IL", zone_id="z-hama")
    for _ in range(5):
        step(3600)
        svc.tick()
    step(1)
    return instants


def every_instant(svc: Service, instants: list[datetime]) -> list[datetime]:
    """The scripted instants, each entry's own time, and a moment before some of them."""
    times = {datetime.fromisoformat(e["at"]) for e in svc.record(M)}
    out = set(instants) | times | {t - timedelta(microseconds=1) for t in list(times)[::3]}
    return sorted(out)


def test_replay_from_snapshots_is_replay_from_entry_1_at_every_instant(svc: Service, clock: FixedClock) -> None:
    instants = scripted_day(svc, clock)
    head = svc.head(M).seq
    assert head > 60
    written = svc.write_snapshots(M, every=7, budget=1000)
    assert [w.seq for w in written] == list(range(7, head + 1, 7))
    assert all(w.stored < w.size for w in written)  # compressed
    assert svc.write_snapshots(M, every=7) == []  # none due until the record grows
    times = every_instant(svc, instants)
    assert len(times) > 40
    for t in times:
        assert svc.replay_stored(M, t) == svc.replay_stored(M, t, snapshots=False), t
    assert svc.replay(M, None) == svc.replay_stored(M, None, snapshots=False)
    checked, problems = svc.check_snapshots(M)
    assert checked == len(written) and problems == []


def _forge(svc: Service, seq: int) -> None:
    """Edit snapshot ``seq``'s rows (a member's name) and give it the matching content hash: a forgery
    that only a rebuild from entry 1 can catch."""
    with svc.store.transaction() as s:
        row = s.get(ReplaySnapshot, (M, seq))
        assert row is not None
        rows = snapshots.whole(s, M, row)
        rows["members"][0]["name"] += " (forged)"
        row.body, row.content_hash, row.size = snapshots.encode(rows)
        row.delta_body = row.delta_hash = None


def test_a_snapshot_that_does_not_hold_is_skipped_or_found(svc: Service, clock: FixedClock, tmp_path: Path) -> None:
    scripted_day(svc, clock)
    written = [w.seq for w in svc.write_snapshots(M, every=10, budget=1000)]
    a, b, c = written[-3:]
    t_c = svc.entries_after(M, c - 1, limit=1)[0]["at"]
    at = datetime.fromisoformat(t_c) + timedelta(seconds=1)
    reference = svc.replay_stored(M, at, snapshots=False)
    with svc.store.transaction() as s:  # c names another entry's hash; b's body is damaged
        s.execute(update(ReplaySnapshot).where(ReplaySnapshot.seq == c).values(hash="0" * 64))
        damaged = s.get(ReplaySnapshot, (M, b))
        assert damaged is not None
        damaged.body = zlib.compress(b'{"members": []}')
    assert svc.replay_stored(M, at) == reference  # both skipped: replay starts from a
    _forge(svc, a)
    assert svc.replay_stored(M, at) != reference  # a forged snapshot with a consistent hash is used...
    checked, problems = svc.check_snapshots(M)  # ...and the rebuild from entry 1 finds all three
    assert checked == len(written)
    assert [(p.seq, p.problem.split(":")[0]) for p in problems] == [
        (a, "its content hash is not that of the tables rebuilt from entry 1"),
        (b, "its content does not match its hash"),
        (c, "names another hash than the record's entry"),
    ]


def test_the_duty_loop_writes_them_and_they_survive_a_restart(
    svc: Service, clock: FixedClock, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "EVERY", 10)
    instants = scripted_day(svc, clock)  # its ticks write one snapshot each when one is due
    with svc.store.read() as s:
        kept = list(s.scalars(select(ReplaySnapshot.seq).where(ReplaySnapshot.mechanism_id == M)))
    assert kept and kept == list(range(10, 10 * len(kept) + 1, 10))
    while svc.write_snapshots(M):
        pass
    again = Service(open_store(db), clock=clock)  # another process, or the same one restarted
    assert len(again.write_snapshots(M, every=10)) == 0
    for t in instants[::4]:
        assert again.replay(M, t) == svc.replay_stored(M, t, snapshots=False)


def test_snapshots_survive_backup_and_restore_and_the_command_line_checks_them(
    svc: Service, clock: FixedClock, tmp_path: Path, store_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deconflict.store.backup import backup
    from deconflict.store.restore import restore

    if store_kind != "sqlite":
        pytest.skip("backup and restore are tested on SQLite here (the copy is always an SQLite file)")
    instants = scripted_day(svc, clock)
    n = len(svc.write_snapshots(M, every=9, budget=1000))
    db = str(tmp_path / "deconflict.db")
    copy, restored = tmp_path / "copy.db", str(tmp_path / "restored.db")
    backup(db, copy)
    restore(copy, restored)
    back = Service(open_store(restored), clock=clock)
    with back.store.read() as s:
        assert len(s.scalars(select(ReplaySnapshot.seq)).all()) == n
    at = instants[len(instants) // 2]
    assert back.replay(M, at) == svc.replay_stored(M, at, snapshots=False)
    out = runner.invoke(app, ["replay", "--db", restored, "--check-snapshots"])
    assert out.exit_code == 0 and f"{n} replay snapshots compared" in out.stdout and "all hold" in out.stdout
    assert "checked so far" not in out.output  # quick: nothing said on the way
    monkeypatch.setattr(cli_record, "PROGRESS_S", 0.0)  # a long check says how far it has got, on stderr
    out = runner.invoke(app, ["replay", "--db", restored, "--check-snapshots"])
    assert out.exit_code == 0 and "checked so far" not in out.stdout
    said = [line for line in out.stderr.splitlines() if "checked so far" in line]
    assert len(said) == n - 1 and said[0].startswith(f"  1 of {n} snapshots checked so far"), said[:2]
    via_cli = runner.invoke(app, ["replay", "--db", restored, "--at", at.isoformat(), "--json"])
    assert via_cli.exit_code == 0, via_cli.output
    # the same state gives the same bytes, read from a snapshot or rebuilt from entry 1 (an investigator compares
    # copies by their hashes: a snapshot's rows came with their keys sorted, rebuilt ones in the columns' order)
    bare = str(tmp_path / "no-snapshots.db")
    shutil.copyfile(restored, bare)
    with sqlite3.connect(bare) as conn:
        conn.execute("DELETE FROM replay_snapshots")
    from_entry_1 = runner.invoke(app, ["replay", "--db", bare, "--at", at.isoformat(), "--json"])
    assert from_entry_1.exit_code == 0 and from_entry_1.stdout == via_cli.stdout
    # an instant still to come is answered with the record as it stands, and said to be so
    ahead = runner.invoke(app, ["replay", "--db", restored, "--at", "2090-01-01T00:00:00Z"])
    assert ahead.exit_code == 0 and "note: 2090-01-01T00:00:00Z is still to come" in ahead.stdout
    assert "still to come" not in runner.invoke(app, ["replay", "--db", restored, "--at", at.isoformat()]).stdout
    ahead = runner.invoke(app, ["replay", "--db", restored, "--at", "2090-01-01T00:00:00Z", "--json"])
    assert ahead.exit_code == 0 and json.loads(ahead.stdout)["at"] == "2090-01-01T00:00:00Z"  # the note elsewhere:
    assert "note: 2090-01-01T00:00:00Z is still to come" in ahead.stderr
    # --check-snapshots replays at no instant: an instant or a window given with it is refused, not ignored
    both = runner.invoke(app, ["replay", "--db", restored, "--check-snapshots", "--at", at.isoformat()])
    assert both.exit_code == 2 and "drop --at, or replay without --check-snapshots" in both.output
    as_json = runner.invoke(app, ["replay", "--db", restored, "--check-snapshots", "--json"])
    assert as_json.exit_code == 2 and "drop --json, or replay without --check-snapshots" in as_json.output
    damaged = str(tmp_path / "damaged.db")  # a live piece that does not decompress: the snapshot named once
    shutil.copyfile(restored, damaged)
    with sqlite3.connect(damaged) as conn:
        conn.execute("UPDATE replay_snapshots SET live_body = ? WHERE seq = 18", (b"not zlib",))
    out = runner.invoke(app, ["replay", "--db", damaged, "--check-snapshots"])
    assert out.exit_code == 1 and out.stdout.startswith("  snapshot at entry 18: its live piece does not decompress")
    assert "1 does not hold" in out.stdout
    assert "snapshot at entry 18: snapshot at entry" not in out.stdout
    _forge(back, 9)
    out = runner.invoke(app, ["replay", "--db", restored, "--check-snapshots"])
    assert out.exit_code == 1 and "snapshot at entry 9: its content hash" in out.stdout
    assert runner.invoke(app, ["replay", "--db", restored]).exit_code == 2  # no --at


def test_the_first_entry_after_a_snapshot_must_follow_it(svc: Service, clock: FixedClock) -> None:
    scripted_day(svc, clock)
    svc.write_snapshots(M, every=20, budget=1)
    with svc.store.transaction() as s:  # the record's entry 21 rewritten to name another previous hash
        s.execute(
            update(LedgerEntry).where(LedgerEntry.mechanism_id == M, LedgerEntry.seq == 21).values(prev_hash="1" * 64)
        )
    with pytest.raises(ValueError, match="entry 21 does not follow entry 20"):
        svc.replay_stored(M, None)


def test_the_duty_loop_gives_snapshots_a_bounded_share_and_they_catch_up_afterwards(
    svc: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a burst of writes a snapshot falls due every few seconds and each costs about a second: the duty
    loop waits after each for its time divided by its share, so requests come first."""
    monkeypatch.setattr(snapshots, "EVERY", 10)
    monkeypatch.setattr(duty, "SNAPSHOT_SHARE", 1e-9)  # whatever the first one took, the next waits for ages
    scripted_day(svc, clock)  # dozens of ticks, several snapshots due

    def kept() -> list[int]:
        with svc.store.read() as s:
            return list(s.scalars(select(ReplaySnapshot.seq).where(ReplaySnapshot.mechanism_id == M)))

    with svc.store.read() as s:
        head = s.scalar(select(func.max(LedgerEntry.seq)).where(LedgerEntry.mechanism_id == M))
    assert head >= 30 and kept() == [10]
    svc._ctx.snapshot_after.clear()  # the wait is over
    svc.tick()
    assert kept() == [10, 20]


def _stored(svc: Service) -> dict[int, ReplaySnapshot]:
    with svc.store.read() as s:
        rows = s.scalars(select(ReplaySnapshot).where(ReplaySnapshot.mechanism_id == M)).all()
        return {r.seq: r for r in rows}


def test_whole_snapshots_between_full_ones_are_stored_as_what_changed(
    svc: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every whole snapshot stood for the whole state in full, so their total grew with the square of the
    record: only every FULL_EVERY-th is full now, the others hold what changed since the one before."""
    monkeypatch.setattr(snapshots, "FULL_EVERY", 4)
    instants = scripted_day(svc, clock)
    written = svc.write_snapshots(M, every=7, budget=1000)
    stored = _stored(svc)
    full = [seq for seq, r in stored.items() if r.body is not None]
    assert full == [seq for seq in stored if seq == 7 or seq // 7 % 4 == 0]  # the first has no base
    for w in written:
        row = stored[w.seq]
        if row.body is not None:
            assert row.delta_body is None and w.stored == len(row.body)
            continue
        doc = snapshots.decode_delta(row)
        assert (doc["base"], doc["base_hash"]) == (w.seq - 7, stored[w.seq - 7].hash)
        with svc.store.read() as s:
            state = snapshots.whole(s, M, row)
        in_full, digest, size = snapshots.encode(state)
        assert (digest, size, w.rows) == (row.content_hash, row.size, sum(len(t) for t in state.values()))
        assert w.stored == len(row.delta_body or b"") < len(in_full) / 2, w  # what changed, not the whole
    for t in every_instant(svc, instants)[::2]:
        assert svc.replay_stored(M, t) == svc.replay_stored(M, t, snapshots=False), t
    assert svc.check_snapshots(M) == (len(written), [])


def test_a_delta_that_does_not_hold_or_whose_base_does_not_is_skipped_and_found(
    svc: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(snapshots, "FULL_EVERY", 4)
    scripted_day(svc, clock)
    svc.write_snapshots(M, every=7, budget=1000)
    stored = _stored(svc)
    deltas = [seq for seq, r in stored.items() if r.body is None]
    forged, base = deltas[-1], 28  # the newest delta; the second full snapshot, three deltas resting on it
    assert stored[base].body is not None and forged > base + 4 * 7
    after = datetime.fromisoformat(svc.entries_after(M, forged, limit=1)[0]["at"])
    above_base = max(stored[seq].at for seq in (35, 42, 49) if stored[seq].at < stored[56].at)  # one resting on 28
    reference = {t: svc.replay_stored(M, t, snapshots=False) for t in (after, above_base)}
    with svc.store.transaction() as s:
        row = s.get(ReplaySnapshot, (M, forged))  # a member renamed, the delta's own hash made to match
        assert row is not None
        doc = snapshots.decode_delta(row)
        member = snapshots.whole(s, M, row)["members"][0]
        doc["rows"]["members"] = [{**member, "name": member["name"] + " (forged)"}]
        row.delta_body, row.delta_hash = snapshots.encode_delta(doc)
        damaged = s.get(ReplaySnapshot, (M, base))
        assert damaged is not None
        damaged.body = zlib.compress(b'{"members": []}')
    for t in (after, above_base):  # both skipped: an older snapshot, or entry 1
        assert svc.replay_stored(M, t) == reference[t]
    said = caplog.text
    assert f"snapshot at entry {forged}: its deltas do not add up to the content its hash names" in said
    assert f"snapshot at entry {base}: its content does not match its hash" in said
    checked, problems = svc.check_snapshots(M)
    assert checked == len(stored)
    found = {p.seq: p.problem for p in problems}
    above = [seq for seq in deltas if base < seq < base + 4 * 7]  # every delta resting on the damaged one
    assert sorted(found) == sorted([base, forged, *above]) and len(above) == 3
    assert found[forged].startswith("its deltas do not add up to the content its hash names (the full snapshot at")
    with svc.store.transaction() as s:  # a base gone: the deltas on it are skipped, not misread
        s.execute(ReplaySnapshot.__table__.delete().where(ReplaySnapshot.seq == base))
    assert svc.replay_stored(M, above_base) == reference[above_base]
    assert f"the whole snapshot it was made from (entry {base}) is missing or is not the record's" in caplog.text


def test_a_snapshot_that_names_another_time_than_its_entry_is_not_used_before_it(
    svc: Service, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Replay at an instant starts from the newest snapshot whose time is not after it: one whose time was
    moved earlier (by someone with write access to the database) would give, at instants before its entry,
    what was recorded after them. Its time is held against its entry's, as its hash is."""
    instants = scripted_day(svc, clock)
    written = [w.seq for w in svc.write_snapshots(M, every=10, budget=1000)]
    moved = written[len(written) // 2]
    earlier = [t for t in instants if t < datetime.fromisoformat(svc.entries_after(M, moved - 1, limit=1)[0]["at"])]
    t = earlier[len(earlier) // 2]
    reference, around = svc.replay_stored(M, t, snapshots=False), svc.replay_around(M, t, snapshots=False)
    with svc.store.transaction() as s:
        s.execute(update(ReplaySnapshot).where(ReplaySnapshot.seq == moved).values(at=instants[0]))
    assert svc.replay_stored(M, t) == reference
    assert svc.replay_around(M, t) == around
    assert f"snapshot at entry {moved} names another time than the record's entry; skipped" in caplog.text
    assert svc.check_snapshots(M) == (
        len(written),
        [snapshots.Problem(moved, "names another time than the record's entry")],
    )


def test_snapshots_stored_in_full_before_deltas_are_stored_as_deltas_when_nothing_is_due(
    svc: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database upgraded to 0016 keeps the whole snapshots it has, each in full: when no snapshot is due,
    the writer stores one of them at a time as a delta, the same one it would write today."""
    instants = scripted_day(svc, clock)
    monkeypatch.setattr(snapshots, "FULL_EVERY", 1)  # as before 0016: every one in full
    written = [w.seq for w in svc.write_snapshots(M, every=7, budget=1000) if not w.piece]
    in_full = {seq: r.live_body for seq, r in _stored(svc).items()}
    monkeypatch.setattr(snapshots, "FULL_EVERY", 4)
    thinned = []
    while (more := svc.write_snapshots(M, every=7)) and more[0].thinned:
        assert len(more) == 1
        thinned.append(more[0].seq)
    assert more == []  # none left, and none due
    expected = [seq for seq in written if seq > 7 and seq // 7 % 4]
    assert thinned == expected and len(expected) > 5
    stored = _stored(svc)
    assert [seq for seq, r in stored.items() if r.body is None] == expected
    assert all(stored[seq].live_body == in_full[seq] for seq in stored)  # the live pieces untouched
    for t in every_instant(svc, instants)[::3]:
        assert svc.replay_stored(M, t) == svc.replay_stored(M, t, snapshots=False), t
    assert svc.check_snapshots(M) == (len(stored), [])


def test_a_database_not_yet_migrated_is_replayed_from_entry_1_and_its_snapshots_not_checked_until_it_is(
    svc: Service, clock: FixedClock, db: str, store_kind: str
) -> None:
    """The command line opens a database without migrating it: after an upgrade, before the service has run
    on it, ``replay --at`` gives the record's answer (from entry 1) and ``--check-snapshots`` says why it does
    not check yet, where both failed with a traceback on the columns the new release reads."""
    from alembic import command

    from deconflict.store import alembic_config

    if store_kind != "sqlite":
        pytest.skip("the command line's read-only opening is the same on both stores; its file is simplest")
    instants = scripted_day(svc, clock)
    assert svc.write_snapshots(M, every=10, budget=1000)
    at = instants[len(instants) // 2]
    asked = ["replay", "--db", db, "--at", at.isoformat(), "--json"]
    before = runner.invoke(app, asked)
    assert before.exit_code == 0 and json.loads(before.stdout)["head"]["seq"] > 10  # from a snapshot
    cfg = alembic_config()
    with svc.store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0015")
    svc.store.close()
    out = runner.invoke(app, asked)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == json.loads(before.stdout)
    checked = runner.invoke(app, ["replay", "--db", db, "--check-snapshots"])
    assert checked.exit_code == 2 and "not yet migrated to this release's schema" in checked.output
    assert checked.exception is None or isinstance(checked.exception, SystemExit)


def test_the_entries_read_a_page_at_a_time_are_the_record_from_any_entry_up_to_any(
    svc: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay reads the record a page at a time (``snapshots.entries``): with pages of 7, every stretch (after any
    entry, up to any, or to the end) is exactly the record's entries there, as the record's own reading gives
    them, and replay from entry 1 at every instant is what it was when the whole record was read at once."""
    instants = scripted_day(svc, clock)
    with svc.store.read() as s:
        whole = [ledger.entry_doc(row) for row in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
    states = [svc.replay_stored(M, t, snapshots=False) for t in instants[::5]]
    monkeypatch.setattr(snapshots, "ENTRY_PAGE", 7)
    head = len(whole)
    assert head > 60
    with svc.store.read() as s:
        for after in (0, 1, 6, 7, 8, 30, head - 1, head):
            assert list(snapshots.entries(s, M, after=after)) == whole[after:], after
            for upto in (after, after + 1, after + 7, after + 15, head, head + 5):
                assert list(snapshots.entries(s, M, after=after, upto=upto)) == whole[after:upto], (after, upto)
    assert [svc.replay_stored(M, t, snapshots=False) for t in instants[::5]] == states
