"""A picture built after months of operation indexes the activities that may still conflict, not every one
ever notified: nothing sets an activity ended, and indexing 20,000 made the first write after each start
take 4.7 s (growing with the record). It stays exact: a notice judged at an instant the index does not reach
(a clock set right after running ahead) reads the activities left out first."""

from __future__ import annotations

from datetime import timedelta

from support.builders import PALMYRA, T4, M, vol, zone

from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.service.picture import INDEX_REACH_S
from deconflict.store import open_store

DAY = 24 * 3600


def restarted(db: str, clock: FixedClock) -> Service:
    return Service(open_store(db), clock=clock)


def left_out_after_running_ahead(
    db: str, svc: Service, clock: FixedClock, actor: str, kind: str
) -> tuple[str, Service]:
    """``actor``'s notice in two hours, then a restart with the clock a month ahead (the picture built then
    leaves the notice out of its index), then the clock set right: the notice's id and the restarted service."""
    notice = svc.notify(mechanism_id=M, actor=actor, kind=kind, volumes=[vol(T4, clock() + timedelta(hours=2))])
    clock.advance(seconds=30 * DAY)
    later = restarted(db, clock)
    later.conflicts(M)  # any use builds the picture
    assert notice.activity.id not in later._ctx.pictures.get(M).activities
    clock.advance(seconds=-30 * DAY)
    return notice.activity.id, later


def test_a_picture_built_after_months_indexes_what_ended_in_the_last_week_and_later(
    db: str, svc: Service, clock: FixedClock
) -> None:
    for _ in range(30):  # a patrol a day for a month, each over 3 hours after it was notified
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock() + timedelta(hours=1))])
        clock.advance(seconds=DAY)
    live = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock() + timedelta(hours=1))])
    later = restarted(db, clock)
    later.conflicts(M)  # any use builds the picture
    picture = later._ctx.pictures.get(M)
    assert picture.indexed_after == clock() - timedelta(seconds=INDEX_REACH_S)
    assert len(picture.activities) == 8  # the 7 that ended in the last week, and the one to come (31 notified)
    (raised,) = later.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, clock() + timedelta(hours=2))]
    ).raised
    assert raised["kind"] == "separation" and raised["other_activity"] == live.activity.id


def test_a_notice_judged_before_the_index_reaches_reads_the_activities_left_out(
    db: str, svc: Service, clock: FixedClock
) -> None:
    """The service ran with its clock a month ahead, built its picture then, and the clock was set right:
    Türkiye's patrol in two hours was left out of the index (it ends weeks before the index reaches), and
    Israel's sortie over it must still raise the conflict."""
    patrol, later = left_out_after_running_ahead(db, svc, clock, "TR", "uav_patrol")
    sortie = later.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, clock() + timedelta(hours=2))]
    )
    assert [c["other_activity"] for c in sortie.raised] == [patrol]
    assert later._ctx.pictures.get(M).indexed_after is None  # it reads them once, then holds every one
    elsewhere = later.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA, clock() + timedelta(hours=2))]
    )
    assert elsewhere.raised == ()


def test_a_zone_declared_before_the_index_reaches_reads_the_activities_left_out(
    db: str, svc: Service, clock: FixedClock
) -> None:
    """The same for a zone declared then: Israel's exercise in two hours, left out of the index, is caught."""
    exercise, later = left_out_after_running_ahead(db, svc, clock, "IL", "exercise")
    protected = zone("TR-PROT-1", "protected", ["exercise"], T4, 5000, valid_from=clock())
    out = later.declare_zone(mechanism_id=M, actor="TR", zone=protected)
    assert [(c["kind"], c["activity"]) for c in out.raised] == [("zone", exercise)]
