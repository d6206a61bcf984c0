"""What the live picture reads stays small however long the mechanism has run.

The page asks for the open conflicts and those acknowledged that still count (``conflicts?start=``) at
sign-in and at each reload, at least once a second under traffic; the picture exports and the TAK bridge
ask for the same, and a list of notices under conflicts-only reads the conflicts that show another party's
notice in part. Each read every conflict the mechanism ever had and chose in Python: after 14 months
(5,966 conflicts) the acknowledged ones took 0.3 s of the server a reload. These tests count the conflicts
read from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.builders import HAMA, PALMYRA, T0, T4, M, declared_service, syria, vol

from deconflict.api.deps import Caller
from deconflict.api.views import activities_view
from deconflict.clock import FixedClock
from deconflict.model import Disclosure
from deconflict.service import Service, queries

DAY = 24 * 3600


def old_conflicts(svc: Service, clock: FixedClock, days: int) -> list[str]:
    """A conflict a day for ``days`` days, each acknowledged by the party it awaits and never resolved; then
    the clock a day after the last one ended."""
    ids = []
    for _ in range(days):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock() + timedelta(hours=1))])
        notice = svc.notify(
            mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, clock() + timedelta(hours=1))]
        )
        for c in notice.raised:
            for party in c["awaiting"]:
                svc.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=c["id"])
            ids.append(c["id"])
        clock.advance(seconds=DAY)
    clock.advance(seconds=DAY)  # the last one ended over a day ago too
    return ids


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ids of the conflicts read from the database (each row made into a document) from now on."""
    seen: list[str] = []
    made = queries.conflict_doc

    def counted(row: queries.ConflictRow) -> dict[str, object]:
        seen.append(row.id)
        return made(row)

    monkeypatch.setattr(queries, "conflict_doc", counted)
    yield seen


def test_the_page_and_the_picture_exports_read_the_live_conflicts_not_every_one_ever(
    svc: Service, clock: FixedClock, read: list[str]
) -> None:
    old = old_conflicts(svc, clock, 12)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(PALMYRA, clock() + timedelta(hours=1))])
    (new,) = svc.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA, clock() + timedelta(hours=1))]
    ).raised
    read.clear()
    day_ago = clock() - timedelta(seconds=DAY)
    assert [c["id"] for c in svc.conflicts(M, status="acknowledged", ending_after=day_ago)] == []
    assert [c["id"] for c in svc.conflicts(M, status="open", ending_after=day_ago)] == [new["id"]]
    assert read == [new["id"]]
    read.clear()
    activities, conflicts = svc.live_picture(M, svc.member(M, "TR"))
    assert [c["id"] for c in conflicts] == [new["id"]] and len(activities) == 2
    assert read == [new["id"]]
    assert len(svc.conflicts(M)) == len(old) + 1  # all of them are still there for who asks for all


def test_a_list_under_conflicts_only_reads_the_conflicts_of_the_notices_seen_in_part(
    tmp_path: Path, read: list[str]
) -> None:
    clock = FixedClock(T0)
    svc = declared_service(tmp_path / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    old_conflicts(svc, clock, 8)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, clock() + timedelta(hours=1))])
    sortie = svc.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, clock() + timedelta(hours=1))]
    )
    read.clear()
    caller = Caller(M, svc.member(M, "TR"))
    (seen,) = activities_view(svc, caller, [sortie.activity])
    assert seen["partial"] and seen["overlap"] and read == [c["id"] for c in sortie.raised]
