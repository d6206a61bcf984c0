"""Replay around an instant (issue 17): what the time bar shows at an instant, read from a snapshot's live
piece and the entries after it, is exactly the whole replay from entry 1 at that instant cut by the same
rules (``replay.live``), at every instant of a scripted record, as each member may see it, on SQLite and
PostgreSQL; rows the piece no longer holds (an old notice amended, an old message acknowledged late) are
taken from the snapshot's whole state; snapshots written before live pieces are skipped safely; and the
live pieces are checked against the record like the rest of a snapshot."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from support.builders import HAMA, PALMYRA, T0, T4, M, declared_db, syria, vol, zone
from typer.testing import CliRunner

from deconflict.api.deps import Caller
from deconflict.api.views import replay_view
from deconflict.cli import app
from deconflict.clock import FixedClock, iso
from deconflict.model import Disclosure, counts_after
from deconflict.record import chain, signing
from deconflict.record.chain import EntryType
from deconflict.service import Service
from deconflict.store import replay, snapshots
from deconflict.store.schema import ReplaySnapshot

runner = CliRunner()
BOTH = pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])


@pytest.fixture
def db(store_url: str, clock: FixedClock, party_keys: dict[str, signing.KeyPair]) -> str:
    """The Syria mechanism under conflicts-only disclosure: another party's notice is seen in part, drawn
    from the conflicts, so the cut must keep those too."""
    return declared_db(store_url, clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY), keys=party_keys)


def scripted_days(svc: Service, clock: FixedClock) -> list[datetime]:
    """Three days: notices, conflicts acknowledged and resolved, alerts climbing the ladder, line checks,
    amendments, a cancellation, a zone declared and withdrawn, messages; then, days later, notices again,
    an old conflict acknowledged and another resolved. The instants of interest."""
    instants = [clock()]

    def step(seconds: float) -> None:
        clock.advance(seconds=seconds)
        instants.append(clock())

    for i in range(4):
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=3 + i)])
        step(30)
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3 + i)])
        step(30)
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id="C1")
    step(60)
    for _ in range(12):
        svc.tick()
        step(300)
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
    for _ in range(6):  # a day and more passes: day one's notices end, its messages age out of the window
        step(6 * 3600)
        svc.tick()
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=40)])
    step(30)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=40)])
    step(30)
    old = [c["id"] for c in svc.conflicts(M) if c["status"] == "open"]
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id=old[0])
    step(30)
    svc.resolve_conflict(mechanism_id=M, actor="AZ", conflict_id=old[-1], resolution="escalated", note="late")
    for _ in range(4):
        step(3 * 3600)
        svc.tick()
    step(1)
    return instants


def every_instant(svc: Service, instants: list[datetime]) -> list[datetime]:
    times = {datetime.fromisoformat(e["at"]) for e in svc.record(M)}
    out = set(instants) | times | {t - timedelta(microseconds=1) for t in list(times)[::3]}
    return sorted(out)


def views(svc: Service, state: dict[str, Any]) -> dict[str, Any]:
    """The replayed state as each member's page receives it (replay_view's disclosure rules)."""
    return {m.id: replay_view(svc, Caller(M, m), state) for m in svc.mechanism(M).members}


@BOTH
def test_replay_around_an_instant_is_replay_from_entry_1_cut_the_same_way(svc: Service, clock: FixedClock) -> None:
    instants = scripted_days(svc, clock)
    head = svc.head(M).seq
    assert head > 60
    written = svc.write_snapshots(M, every=7, budget=1000)
    assert [w.seq for w in written] == list(range(7, head + 1, 7))
    times = every_instant(svc, instants)
    assert len(times) > 40
    shown_old = acknowledged_left = 0
    for t in times[::2]:  # every other instant (each replays from entry 1 twice): the suite's time
        fast = svc.replay_around(M, t)
        reference = svc.replay_around(M, t, snapshots=False)
        assert fast == reference, t
        whole = svc.replay_stored(M, t, snapshots=False)
        assert fast == replay.cut(whole), t  # the same cut of the whole state
        assert views(svc, fast) == views(svc, reference), t
        # the conflicts acknowledged and never resolved as the live picture counts them (after the window's
        # start), or of a notice kept; every other unresolved one
        since, kept = t - replay.WINDOW, {c["id"] for c in fast["conflicts"]}
        versions = {a["id"]: a["version"] for a in fast["activities"]}
        for c in whole["conflicts"]:
            counts = counts_after(c["doc"].get("end"), c["detected_at"], c["acknowledged"], since)
            of_kept = any(
                versions.get(c[k] or "") == c["doc"].get(v)
                for k, v in (("activity", "activity_version"), ("other_activity", "other_version"))
            )
            if c["status"] == "open" or (c["status"] == "acknowledged" and (counts or of_kept)):
                assert c["id"] in kept, (t, c["id"])
            elif c["status"] == "acknowledged":
                assert c["id"] not in kept, (t, c["id"])
                acknowledged_left += 1
        # what the page draws from it is what it draws from the whole state: every open conflict, every
        # zone, every message awaiting an answer, every notice in force or to come
        cut, full = views(svc, fast), views(svc, whole)
        for member, view in cut.items():
            page = full[member]
            assert [c for c in view["conflicts"] if c["status"] == "open"] == [
                c for c in page["conflicts"] if c["status"] == "open"
            ]
            assert view["zones"] == page["zones"]
            awaited = [m for m in page["messages"] if m.get("needs_ack") and not m.get("acknowledged_at")]
            assert all(m in view["messages"] for m in awaited if not m.get("closed_at"))
            current = [a for a in page["activities"] if a["phase"] in ("in_force", "planned", "between")]
            assert all(a in view["activities"] for a in current)
            shown_old += len(page["activities"]) - len(view["activities"])
    assert shown_old > 0  # the window did leave old notices out somewhere
    assert acknowledged_left > 0  # and conflicts acknowledged long before
    # at a late instant the cut is much smaller than the whole state
    late = svc.replay_around(M, times[-1])
    whole = svc.replay_stored(M, times[-1])
    assert sum(len(late[k]) for k in ("activities", "messages")) < sum(
        len(whole[k]) for k in ("activities", "messages")
    )
    assert late["window"] == {"since": iso(times[-1] - replay.WINDOW), "hours": 24.0}
    for hours in (1, 6, 48):  # other windows, up to the pieces' own
        w = timedelta(hours=hours)
        for t in times[::9]:
            assert svc.replay_around(M, t, window=w) == svc.replay_around(M, t, window=w, snapshots=False), (t, w)


@BOTH
def test_snapshots_without_a_live_piece_are_skipped_and_pieces_are_checked(
    svc: Service, clock: FixedClock, db: str
) -> None:
    instants = scripted_days(svc, clock)
    svc.write_snapshots(M, every=10, budget=1000)
    times = every_instant(svc, instants)[::4]
    # snapshots as written before 0012: no live piece; replay around an instant cuts the whole state
    with svc.store.transaction() as s:
        s.execute(
            update(ReplaySnapshot)
            .where(ReplaySnapshot.seq <= 40)
            .values(live_body=None, live_hash=None, live_rows=None)
        )
    for t in times:
        assert svc.replay_around(M, t) == svc.replay_around(M, t, snapshots=False), t
    assert svc.check_snapshots(M)[1] == []
    # a live piece that does not hold: skipped when read, found by the check
    with svc.store.transaction() as s:
        row = s.get(ReplaySnapshot, (M, 50))
        assert row is not None and row.live_body is not None
        keep, rows, _ = snapshots.decode_piece(50, row.live_body, row.live_hash or "")
        rows["messages"] = rows["messages"][1:]
        row.live_body, row.live_hash = snapshots.encode_piece(rows, keep)
    for t in times:
        assert svc.replay_around(M, t) == svc.replay_around(M, t, snapshots=False), t
    checked, problems = svc.check_snapshots(M)
    assert [(p.seq, p.problem) for p in problems] == [
        (50, "its live piece differs from the tables rebuilt from entry 1")
    ]
    result = runner.invoke(app, ["replay", "--db", db, "--check-snapshots"])
    assert result.exit_code != 0 and "50" in result.output, result.output


# --- the store alone: a synthetic record whose late entries touch rows long out of every window --------


def synthetic() -> list[dict[str, Any]]:
    """Entry documents of a record in which notices, conflicts and messages come and go over days, and old
    rows are changed long after they left the window: a notice amended and another cancelled days after
    they ended, a message acknowledged and an old conflict acknowledged a week late."""
    at = T0
    head = chain.Head(0, chain.GENESIS_HASH)
    out: list[dict[str, Any]] = []

    def add(actor: str, kind: EntryType, payload: dict[str, Any], *, hours: float = 1) -> None:
        nonlocal at, head
        at += timedelta(hours=hours)
        row = chain.draft(mechanism=M, actor=actor, type=kind.value, payload=payload, at=at, after=head)
        head = chain.Head(head.seq + 1, row["hash"])
        out.append({**row, "at": iso(at), "payload": payload})

    def notice(n: int, version: int, start_h: float) -> dict[str, Any]:
        start, end = iso(at + timedelta(hours=start_h)), iso(at + timedelta(hours=start_h + 2))
        v = {"id": "v1", "geometry": {"type": "Point", "coordinates": [37.6, 34.5]}, "radius_m": 5000.0}
        volume = {**v, "floor_m": 0.0, "ceiling_m": 3000.0, "start": start, "end": end}
        doc = {"id": f"A{n}", "party": "IL" if n % 2 else "TR", "kind": "uav_patrol", "state": "notified"}
        state = "cancelled" if version < 0 else "amended" if version > 1 else "notified"
        return {**doc, "state": state, "version": abs(version), "title": "", "notified_at": iso(at),
                "first_notified_at": iso(at), "start": start, "end": end, "volumes": [volume]}  # fmt: skip

    members = [{"id": p, "party": p, "role": "party", "name": p, "language": "en"} for p in ("IL", "TR")]
    add("operator", EntryType.MECHANISM_DECLARED, {"id": M, "name": "m", "members": members})
    for n in range(1, 31):
        add("IL", EntryType.ACTIVITY_NOTIFIED, notice(n, 1, 1))
        if n % 2 == 0:
            conflict = {"id": f"C{n}", "kind": "separation", "activity": f"A{n - 1}", "activity_version": 1,
                        "other_activity": f"A{n}", "other_version": 1, "parties": ["IL", "TR"],
                        "awaiting": ["IL", "TR"], "deadline": iso(at + timedelta(hours=1)),
                        "distance_m": 0.0}  # fmt: skip
            add("system", EntryType.CONFLICT_DETECTED, conflict, hours=0.1)
        message = {"id": f"M{n}", "type": "notice" if n % 3 else "alert", "to": ["TR"], "from_party": "IL",
                   "needs_ack": n % 3 == 0, "text": "x"}  # fmt: skip
        add("IL", EntryType.MESSAGE_SENT, message, hours=3)
        if n % 4 == 0:
            add("system", EntryType.CONFLICT_RESOLVED, {"id": f"C{n}", "resolution": "accepted", "messages": []})
        if n % 6 == 0:
            add("TR", EntryType.MESSAGE_ACKNOWLEDGED, {"id": f"M{n}", "party": "TR"}, hours=0.5)
        if n == 20:  # days after they ended: A3 amended, A5 cancelled, M1 (needing none) acknowledged, C2 acknowledged
            add("IL", EntryType.ACTIVITY_AMENDED, notice(3, 2, 5))
            add("IL", EntryType.ACTIVITY_CANCELLED, notice(5, -2, 1))
            add("TR", EntryType.MESSAGE_ACKNOWLEDGED, {"id": "M1", "party": "TR"})
            add("TR", EntryType.CONFLICT_ACKNOWLEDGED, {"id": "C2", "party": "TR", "messages": ["M3"]})
            add("IL", EntryType.MESSAGE_SENT, {"id": "S1", "type": "response", "to": ["TR"], "from_party": "IL",
                                              "needs_ack": False, "text": "y",
                                              "settles": {"conflicts": ["C6"], "messages": ["M9"]}})  # fmt: skip
    return out


@pytest.mark.parametrize("keep_h", [1, 48])
def test_a_piece_misses_rows_changed_late_and_history_supplies_them(keep_h: int) -> None:
    entries = synthetic()
    keep = timedelta(hours=keep_h)
    times = sorted({datetime.fromisoformat(e["at"]) for e in entries})
    asked = 0
    references: dict[tuple[datetime, timedelta], dict[str, Any]] = {}

    def reference(t: datetime, window: timedelta) -> dict[str, Any]:
        if (t, window) not in references:
            references[t, window] = replay.around(entries, mechanism=M, at=t, window=window)
            assert references[t, window] == replay.cut(replay.replay(entries, mechanism=M, at=t), window=window)
        return references[t, window]

    for s in range(5, len(entries), 9):
        head, rows = replay.rebuild(entries, mechanism=M, upto=s)
        s_at = datetime.fromisoformat(entries[s - 1]["at"])
        piece = replay.Piece(head.seq, head.hash, s_at, keep, replay.live(rows, at=s_at, window=keep))

        def history(rows: dict[str, list[dict[str, Any]]] = rows) -> dict[str, list[dict[str, Any]]]:
            nonlocal asked
            asked += 1
            return rows

        later = [t for t in times if s_at <= t < s_at + timedelta(hours=30)]
        for t in later[:: max(1, len(later) // 6)] + [t + timedelta(minutes=1) for t in later[-1:]]:
            for window in {keep, timedelta(hours=1)}:
                if window > keep:
                    continue
                fast = replay.around(entries, mechanism=M, at=t, window=window, piece=piece, history=history)
                assert fast == reference(t, window), (s, t, window)
    assert asked > 0  # the late changes did need the history
    with pytest.raises(ValueError, match="does not serve"):
        replay.around(entries, mechanism=M, at=T0, piece=piece)


@BOTH
def test_live_pieces_alone_between_whole_snapshots_and_old_snapshots_get_theirs(
    svc: Service, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:  # the duty loop writes none meanwhile
        m.setattr(snapshots, "PIECE_EVERY", 10**9)
        instants = scripted_days(svc, clock)
    head = svc.head(M).seq
    written = snapshots.write_due(svc.store, M, clock(), every=28, piece_every=7, budget=1000)
    whole = [w.seq for w in written if not w.piece]
    alone = [w.seq for w in written if w.piece]
    assert whole == list(range(28, head + 1, 28))
    assert alone == [g for g in range(7, head + 1, 7) if g % 28]  # a whole snapshot carries its own
    assert all(w.size == 0 and w.rows > 0 for w in written if w.piece)
    times = every_instant(svc, instants)[::5]
    for t in times:
        assert svc.replay_around(M, t) == svc.replay_around(M, t, snapshots=False), t
        assert svc.replay_stored(M, t) == svc.replay_stored(M, t, snapshots=False), t  # pieces alone are skipped
    assert svc.check_snapshots(M) == (len(written), [])
    # whole snapshots written before 0012 (no piece) are given one; pieces alone are not written again
    with svc.store.transaction() as s:
        whole_state = ReplaySnapshot.content_hash.is_not(None)  # in full or as a delta (0016)
        s.execute(update(ReplaySnapshot).where(whole_state).values(live_body=None, live_hash=None))
        s.execute(ReplaySnapshot.__table__.delete().where(~whole_state, ReplaySnapshot.seq > 60))
    again = snapshots.write_due(svc.store, M, clock(), every=28, piece_every=7, budget=1000)
    assert [(w.seq, w.piece) for w in again] == [(g, True) for g in range(56, head + 1, 7)]
    assert svc.check_snapshots(M)[1] == []
    for t in times:
        assert svc.replay_around(M, t) == svc.replay_around(M, t, snapshots=False), t


def test_an_activity_cancelled_within_the_window_is_in_the_state_around_an_instant(
    svc: Service, clock: FixedClock
) -> None:
    """The time bar just after a cancellation listed the conflicts it resolved, naming TR-0001, and not TR-0001
    itself: the cut kept no cancelled activity. It is kept while its cancellation is within the window; a live
    piece cut by the rule before (1) is still checked by that rule, still answers (without it, as before), and
    is never the start of a new piece."""
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=3)])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, start_h=3)])  # C1
    clock.advance(seconds=600)
    svc.cancel(mechanism_id=M, actor="TR", activity_id="TR-0001")
    cancelled_at = clock()
    clock.advance(seconds=60)
    svc.tick()
    soon, later = cancelled_at + timedelta(minutes=30), cancelled_at + replay.WINDOW + timedelta(minutes=1)
    around = svc.replay_around(M, soon)
    (tr,) = [a for a in around["activities"] if a["id"] == "TR-0001"]
    assert tr["state"] == "cancelled" and [c["resolution"] for c in around["conflicts"]] == ["cancelled"]
    assert "TR-0001" not in {a["id"] for a in svc.replay_around(M, later)["activities"]}
    assert around == svc.replay_around(M, soon, snapshots=False)

    written = svc.write_snapshots(M, every=3, budget=100)
    assert written and svc.check_snapshots(M)[1] == []
    with svc.store.transaction() as s:  # every piece as the rule before cut it
        for row in s.query(ReplaySnapshot).filter(ReplaySnapshot.live_body.is_not(None)):
            keep, _, _ = snapshots.decode_piece(row.seq, row.live_body, row.live_hash or "")
            old = replay.live(snapshots.whole_at(s, M, row.seq), at=row.at, window=keep, rule=1)
            row.live_body, row.live_hash = snapshots.encode_piece(old, keep, rule=1)
    assert svc.check_snapshots(M)[1] == []  # each checked by its own rule
    with svc.store.read() as s:
        assert snapshots.usable_piece(s, M, at=soon, window=replay.KEEP) is not None  # answers
        assert snapshots.usable_piece(s, M, at=soon, window=replay.KEEP, rule=replay.LIVE_RULE) is None
