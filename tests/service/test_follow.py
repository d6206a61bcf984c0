"""A process's picture follows what another process writes (issue 15), on an SQLite file and on PostgreSQL
(``db``): it catches up on the entries it missed (notices, amendments, cancellations, conflicts, messages)
and ends where a picture built from scratch would be, without being rebuilt; an entry that changes the
members or zones is the one case that rebuilds it. And the follower hears another process's commit."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from support.builders import HAMA, PALMYRA, T0, T4, M, offset, vol, zone

from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.service.picture import Picture, build_picture
from deconflict.store import open_store


def _same(picture: Picture, built: Picture) -> None:
    assert picture.head == built.head and picture.last_at == built.last_at
    assert picture.activities == built.activities
    assert picture.activity_ids == built.activity_ids and picture.party_counts == built.party_counts
    assert (picture.conflict_count, picture.message_count) == (built.conflict_count, built.message_count)
    assert len(picture.index) == len(built.index)
    for aid, live in built.activities.items():
        assert all(picture.index.slot((aid, vid)) is not None for vid in live.volume_ids), aid


def test_a_picture_catches_up_on_another_process_writes_as_if_built_afresh(db: str, clock: FixedClock) -> None:
    a = Service(open_store(db), clock=clock)
    b = Service(open_store(db), clock=clock)
    b.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, T0 + timedelta(hours=3))])
    before = b.context.pictures.peek(M)
    assert before is not None

    # a (another process) notifies, amends, cancels and talks; b hears nothing of it until it looks again
    near = a.notify(
        mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(offset(HAMA, 90, 2000), T0 + timedelta(hours=3))]
    )
    assert near.raised  # a saw b's notice: a separation conflict
    other = a.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, T0 + timedelta(hours=5))])
    assert other.activity is not None
    a.amend(
        mechanism_id=M,
        actor="TR",
        activity_id=other.activity.id,
        seen_version=1,
        volumes=[vol(PALMYRA, T0 + timedelta(hours=6))],
    )
    gone = a.notify(mechanism_id=M, actor="TR", kind="exercise", volumes=[vol(T4, T0 + timedelta(hours=8))])
    assert gone.activity is not None
    a.cancel(mechanism_id=M, actor="TR", activity_id=gone.activity.id, seen_version=1)
    a.send_message(mechanism_id=M, actor="TR", text="patrol west of Hama at 0900")

    b.context.pictures.expire(M)
    with b.context.exclusive(M) as picture:
        assert picture is before  # caught up, not rebuilt
        with b.store.read() as s:
            _same(picture, build_picture(s, M))

    # and b's next write works out its conflicts against a's notices, and numbers after a's conflicts
    out = b.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA, T0 + timedelta(hours=6))])
    assert [c["other_activity"] for c in out.raised] == [other.activity.id]
    assert out.raised[0]["id"] == f"C{len(near.raised) + 1}"
    assert b.verify(M).ok


def test_a_zone_declared_by_another_process_rebuilds_the_picture(db: str, clock: FixedClock) -> None:
    a = Service(open_store(db), clock=clock)
    b = Service(open_store(db), clock=clock)
    before = b.context.pictures.get(M)
    a.declare_zone(mechanism_id=M, actor="TR", zone=zone("TR-RZ-T4", "restricted", ["uav_patrol"], T4, 5000))
    b.context.pictures.expire(M)
    with b.context.exclusive(M) as picture:
        assert picture is not before and "TR-RZ-T4" in picture.zones


def test_the_follower_hears_another_process_commit(db: str, clock: FixedClock) -> None:
    a = Service(open_store(db), clock=clock)
    b = Service(open_store(db), clock=clock)
    heard: list[tuple[str, int]] = []
    got = threading.Event()

    def listener(mechanism: str, seq: int) -> None:
        heard.append((mechanism, seq))
        got.set()

    b.listeners.append(listener)
    follower = b.follow()
    try:
        assert follower.connected.wait(30)
        got.clear()
        heard.clear()
        sent = a.send_message(mechanism_id=M, actor="TR", text="heard across processes")
        assert got.wait(30), "b's follower heard nothing of a's commit"
        # a notice of an earlier head may come first (PostgreSQL's, as the follower started): wait for a's
        head, end = a.head(M).seq, time.monotonic() + 30
        while not any(m == M and s >= head for m, s in list(heard)) and time.monotonic() < end:
            got.clear()
            got.wait(0.5)
        assert (M, head) in heard or any(m == M and s >= head for m, s in heard), (heard, sent)
    finally:
        b.unfollow()
