"""The live tracks a process keeps between reports (service.tracks._Live): equal to the stored tracks
whichever process stored them, on real SQLite (and PostgreSQL when the tests have it), two services on
one database standing for two server processes; concurrent batches stored together, none lost."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite as sqlite_dialect
from support.builders import T4, M, offset, position, vol

from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.service import tracks as tracks_module
from deconflict.store import open_store
from deconflict.store.schema import TrackReportRow, TrackRow

at = partial(offset, T4)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def covered(svc: Service, clock: FixedClock) -> None:
    """Both parties notified a wide volume around T4; the clock is inside its window."""
    for party, kind in (("TR", "uav_patrol"), ("IL", "air_sortie")):
        volume = vol(T4, clock() + timedelta(hours=2), hours=6, radius_m=80_000, floor_m=0, ceiling_m=12_000)
        svc.notify(mechanism_id=M, actor=party, kind=kind, volumes=[volume])
    clock.advance(seconds=3 * 3600)


def stored(svc: Service) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The tracks in the picture as stored: (party, id) → (at, lat, lon, alt_m, gs_mps, trk_deg, vs_mps)."""
    picture = svc._ctx.pictures.get(M)
    since = svc._ctx.clock() - timedelta(seconds=picture.mechanism.rules.track_stale_s)
    with svc.store.read() as s:
        rows = s.query(TrackRow).filter(TrackRow.mechanism_id == M, TrackRow.at >= since).all()
        return {(r.party, r.id): (r.at, r.lat, r.lon, r.alt_m, r.gs_mps, r.trk_deg, r.vs_mps) for r in rows}


def held(svc: Service) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The same, as the service's copy holds it once brought up to date (as a check would see it)."""
    ctx = svc._ctx
    picture = ctx.pictures.get(M)
    now = ctx.clock()
    with ctx.lock, ctx.store.read() as s:
        live = tracks_module._live(ctx, s, picture, now)
        idx = live.fresh(now - timedelta(seconds=picture.mechanism.rules.track_stale_s)).tolist()
        return {
            (live.party[i], live.ids[i]): (live.at[i], *(float(live.cols[k][i]) for k in tracks_module._FIELDS))
            for i in idx
        }


def test_two_processes_see_each_others_tracks_and_raise_once(db: str, clock: FixedClock) -> None:
    a = Service(open_store(db), clock=clock)
    b = Service(open_store(db), clock=lambda: clock() - timedelta(seconds=1))  # its clock a second behind
    covered(a, clock)
    a.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), at(270, 30_000), 90)])
    out = b.report_tracks(
        mechanism_id=M, actor="IL", reports=[position("F16-2", clock() - timedelta(seconds=1), at(90, 30_000), 270)]
    )
    (c,) = [x for x in out["raised"] if x["kind"] == "tracks"]  # B saw A's track
    assert (c["activity"], c["other_activity"]) == ("IL/F16-2", "TR/UAV-1")
    with a.store.read() as s:
        stamps = sorted((r.received_at, r.party) for r in s.query(TrackRow))
    assert [p for _, p in stamps] == ["TR", "IL"]  # B's stamp is after A's, whatever B's clock says
    # A's copy learns B's track: A's next report raises nothing new, and A's tick keeps the conflict
    clock.advance(seconds=5)
    again = a.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), at(270, 29_000), 90)])
    assert [x for x in again["raised"] if x["kind"] == "tracks"] == []
    assert held(a) == stored(a) == held(b)
    # B turns the Turkish track away (B reports for TR now): A's tick sees it and clears the conflict
    b2 = Service(open_store(db), clock=clock)
    b2.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), at(270, 29_000), 270)])
    a.tick()
    (done,) = [x for x in a.conflicts(M) if x["kind"] == "tracks"]
    assert done["status"] == "resolved" and done["resolution"] == "cleared"
    # a late report (older than the stored state) changes neither the store nor the copies
    before = stored(a)
    late = position("UAV-1", clock() - timedelta(seconds=3), at(270, 10_000), 90)
    assert b.report_tracks(mechanism_id=M, actor="TR", reports=[late])["stored"] == 1
    assert stored(a) == before == held(a) == held(b)


def test_the_copies_stay_equal_to_the_store_through_interleaved_batches(db: str, clock: FixedClock) -> None:
    """Random batches (new tracks, updates, late reports, tracks going stale and coming back) from two
    services in turn; after each, both copies equal the stored tracks, and each conflict the check
    raised is raised once."""
    services = [Service(open_store(db), clock=clock) for _ in range(2)]
    covered(services[0], clock)
    rng = random.Random(7)
    ids = [f"T{k}" for k in range(12)]
    for step in range(30):
        svc = services[step % 2]
        party = rng.choice(["TR", "IL"])
        chosen = rng.sample(ids, rng.randint(1, 6))
        reports = []
        for tid in chosen:
            when = clock() - timedelta(seconds=rng.choice([0, 0, 0, 2, 20]))
            reports.append(
                position(tid, when, at(rng.uniform(0, 360), rng.uniform(0, 40_000)), rng.uniform(0, 359), gs_kt=300)
            )
        svc.report_tracks(mechanism_id=M, actor=party, reports=reports)
        if step % 7 == 6:
            services[1 - step % 2].tick()
        assert held(services[0]) == stored(services[0]) == held(services[1])
        clock.advance(seconds=rng.choice([1, 1, 5, 40]))
    opened = [
        (c["kind"], c["activity"], c.get("other_activity"))
        for c in services[0].conflicts(M)
        if c["status"] != "resolved" and c["kind"] in ("tracks", "conformance", "intrusion")
    ]
    assert len(opened) == len(set(opened))  # never two open conflicts for one situation


def test_concurrent_batches_are_all_stored_and_each_answered(svc: Service, clock: FixedClock) -> None:
    """Six feeders post at once (the batches queue behind the gate, and are stored together): every
    report stored, every batch answered; TR below 5 km and IL above 6 km, each in its own volume."""
    for party, kind, floor, ceiling in (("TR", "uav_patrol", 0, 5_000), ("IL", "air_sortie", 6_000, 12_000)):
        volume = vol(T4, clock() + timedelta(hours=2), hours=6, radius_m=80_000, floor_m=floor, ceiling_m=ceiling)
        svc.notify(mechanism_id=M, actor=party, kind=kind, volumes=[volume])
    clock.advance(seconds=3 * 3600)
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def feed(party: str, n: int) -> None:
        alt_ft = 9_000 if party == "TR" else 25_000
        for k in range(5):
            reports = [
                position(f"{n}-{k}-{j}", clock(), at(10 * j, 5_000 + 100 * n), 0, alt_ft=alt_ft) for j in range(20)
            ]
            out = svc.report_tracks(mechanism_id=M, actor=party, reports=reports)
            with lock:
                answers.append(out)

    threads = [threading.Thread(target=feed, args=("TR" if n % 2 else "IL", n)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 30 and all(a["stored"] == 20 for a in answers)
    assert all(a["raised"] == [] for a in answers)
    with svc.store.read() as s:
        assert s.query(TrackReportRow).count() == 600 and s.query(TrackRow).count() == 600
    assert held(svc) == stored(svc)


def test_the_tick_checks_a_track_that_stopped_reporting(svc: Service, clock: FixedClock) -> None:
    """A report checks its track's conformance; a track that then stops reporting is checked at each
    tick, flown on: out of its volume (beyond the 1 NM tolerance) it raises its conflict there."""
    volume = vol(T4, clock() + timedelta(hours=2), hours=6, radius_m=20_000, floor_m=0, ceiling_m=12_000)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[volume])
    clock.advance(seconds=3 * 3600)
    out = svc.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), at(0, 19_000), 0)])
    assert out["raised"] == []  # inside, 1 km from the edge, flying out at 200 kt
    clock.advance(seconds=10)
    svc.tick()
    assert [c for c in svc.conflicts(M) if c["kind"] == "conformance"] == []  # 1.9 km out: within 1 NM
    clock.advance(seconds=25)
    svc.tick()
    (c,) = [c for c in svc.conflicts(M) if c["kind"] == "conformance"]  # 4.5 km out
    assert c["activity"] == "TR/UAV-1" and c["status"] != "resolved"


def test_the_tick_leaves_a_fresh_picture_alone_and_sees_time_move_it_on(svc: Service, clock: FixedClock) -> None:
    """Two aircraft head-on whose loss of separation starts just beyond the look-ahead when both report:
    a tick less than PAIRS_FRESH_S after the reports' check raises nothing, even though the pair has come
    into the look-ahead by then; nor does one after it while both tracks were checked less than RECHECK_S
    ago (a track reporting every second is never due); the first tick after that checks them again and
    raises the conflict."""
    covered(svc, clock)
    rules = svc._ctx.pictures.get(M).mechanism.rules
    closing = 2 * 200 * 1852 / 3600  # both at 200 kt
    gap = rules.separation_m + closing * (rules.track_lookahead_s + 0.2)  # in at the look-ahead + 0.2 s
    svc.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), at(270, gap / 2), 90)])
    out = svc.report_tracks(mechanism_id=M, actor="IL", reports=[position("F16-2", clock(), at(90, gap / 2), 270)])
    assert [c for c in out["raised"] if c["kind"] == "tracks"] == []
    clock.advance(seconds=0.45)  # in the look-ahead now (0.25 s to spare), the check 0.45 s old
    svc.tick()
    assert [c for c in svc.conflicts(M) if c["kind"] == "tracks"] == []
    due = tracks_module.RECHECK_S
    clock.advance(seconds=due - 0.5)  # the check older than PAIRS_FRESH_S, but neither track due yet
    svc.tick()
    assert [c for c in svc.conflicts(M) if c["kind"] == "tracks"] == []
    clock.advance(seconds=0.1)  # both due: the tick checks them, each against every other track
    svc.tick()
    (c,) = [c for c in svc.conflicts(M) if c["kind"] == "tracks"]
    assert (c["activity"], c["other_activity"]) == ("IL/F16-2", "TR/UAV-1")
    # in at the look-ahead + 0.2 s when reported, RECHECK_S + 0.05 s on
    assert c["t_in_s"] == pytest.approx(rules.track_lookahead_s + 0.2 - due - 0.05, abs=0.1)  # rounded to 0.1 s
    assert (tracks_module.PAIRS_FRESH_S, tracks_module.RECHECK_S) == (0.5, 2.0)


def open_pairs(svc: Service) -> set[tuple[str, str]]:
    return {
        (c["activity"], c["other_activity"])
        for c in svc.conflicts(M)
        if c["kind"] == "tracks" and c["status"] != "resolved"
    }


def test_a_report_checks_its_tracks_against_all_and_leaves_other_pairs_as_they_are(
    svc: Service, clock: FixedClock
) -> None:
    """A report checks the pairs its tracks are in (the other track need not report); a pair of two other
    tracks keeps its conflict open whatever the report says, until one of its tracks is checked again; and
    a pair whose tracks left the picture stays open (contact lost is not a resolution)."""
    covered(svc, clock)
    stale_s = svc._ctx.pictures.get(M).mechanism.rules.track_stale_s
    svc.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), at(270, 30_000), 90)])
    out = svc.report_tracks(mechanism_id=M, actor="IL", reports=[position("F16-2", clock(), at(90, 30_000), 270)])
    (first,) = [c for c in out["raised"] if c["kind"] == "tracks"]
    # a third aircraft, far south, on a course into UAV-1's: only its report is checked, and finds that pair
    out = svc.report_tracks(mechanism_id=M, actor="IL", reports=[position("F35-3", clock(), at(180, 30_000), 0)])
    assert [(c["activity"], c["other_activity"]) for c in out["raised"] if c["kind"] == "tracks"] == [
        ("IL/F35-3", "TR/UAV-1")
    ]
    assert out["cleared"] == []  # UAV-1/F16-2 was not checked now (neither reported): it stays open
    # F16-2 turns away and reports: its pair with UAV-1 is checked and ends; F35-3's stays
    clock.advance(seconds=0.5)
    out = svc.report_tracks(mechanism_id=M, actor="IL", reports=[position("F16-2", clock(), at(90, 30_000), 90)])
    assert out["cleared"] == [first["id"]]
    assert open_pairs(svc) == {("IL/F35-3", "TR/UAV-1")}
    # UAV-1 and F35-3 stop reporting: once both have left the picture, their pair stays open all the same
    for k in range(int(stale_s) + 2):
        clock.advance(seconds=1)
        svc.report_tracks(mechanism_id=M, actor="IL", reports=[position("F16-2", clock(), at(90, 30_000 + k), 90)])
        svc.tick()
    assert open_pairs(svc) == {("IL/F35-3", "TR/UAV-1")}


FIRST, LAST = datetime(1000, 1, 2), datetime(9998, 12, 30)  # noqa: DTZ001 (hypothesis takes naive bounds)


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(
        min_value=FIRST,
        max_value=LAST,
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5, minutes=-30))]),
    )
)
def test_report_times_are_written_as_the_column_type_writes_them(when: datetime) -> None:
    """The SQLite writer's own time conversion is bit for bit the column type's (UTCDateTime, then
    SQLAlchemy's SQLite DATETIME), for any aware time, whole seconds or not."""
    dialect = sqlite_dialect.dialect()
    processor = TrackRow.__table__.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    assert tracks_module.sqlite_stamp(when) == processor(when)


def copy_state(live: tracks_module._Live) -> tuple[Any, ...]:
    n = len(live)
    cols = {k: v[:n].tolist() for k, v in live.cols.items()}
    return live.index, live.party, live.ids, live.names, live.at, cols, live.marker


REPORT = st.tuples(
    st.sampled_from(["A", "B", "C", "D"]),  # a few track ids: batches repeat them, and name one twice
    st.integers(0, 5),  # seconds: reports late and early
    st.floats(-90, 90),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["TR", "IL"]), st.lists(REPORT, max_size=6)), max_size=6))
def test_a_batch_is_applied_as_report_by_report(batches: list[tuple[str, list[tuple[str, int, float]]]]) -> None:
    """``_Live.apply`` (the batch at once) holds what ``_put`` report by report holds: a late report
    never replaces a newer state, a new track is added, a track named twice goes in the batch's order."""
    t0 = datetime(2025, 4, 9, 9, tzinfo=UTC)
    whole, one_by_one = tracks_module._Live(), tracks_module._Live()
    for k, (party, reports) in enumerate(batches):
        states = [
            {"id": tid, "at": t0 + timedelta(seconds=s), "lat": lat, "lon": lat / 2, "alt_m": 1.0 * s}
            | {"gs_mps": 100.0, "trk_deg": float(k), "vs_mps": -lat}
            for tid, s, lat in reports
        ]
        received = t0 + timedelta(minutes=k)
        whole.apply(party, states, received)
        for state in states:
            one_by_one._put(party, state["id"], state["at"], [state[f] for f in tracks_module._FIELDS], force=False)
        one_by_one.marker = received
        assert copy_state(whole) == copy_state(one_by_one)
