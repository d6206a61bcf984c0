"""The use cases on a real SQLite file: notify, amend, cancel, zones, conflicts, the record."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod
from sqlalchemy import func, select, text
from support.builders import BAKU, PALMYRA, T0, T4, M, offset, vol, zone

from deconflict.clock import FixedClock, iso
from deconflict.errors import DeconflictError, Forbidden, InvalidInput, InvalidState, NotFound, StaleVersion
from deconflict.service import Service
from deconflict.service.recheck import recheck
from deconflict.store import open_store
from deconflict.store.schema import ActivityRow, ConflictRow, LedgerEntry

EAST = 90.0


def counts(svc: Service) -> tuple[int, int, int]:
    with svc.store.read() as s:
        return (
            s.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
            s.scalar(select(func.count()).select_from(ActivityRow)) or 0,
            s.scalar(select(func.count()).select_from(ConflictRow)) or 0,
        )


def test_separation_conflict_is_raised_with_measured_distance(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, radius_m=10_000)])
    # centres 25 km apart, radii 10 km + 10 km: 5 km between the circles, under 9.26 km
    out = svc.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(offset(T4, EAST, 25_000), radius_m=10_000)]
    )
    assert [c["kind"] for c in out.raised] == ["separation"]
    c = out.raised[0]
    assert c["distance_m"] == pytest.approx(5_000, abs=10)
    assert c["parties"] == ["IL", "TR"] and c["awaiting"] == ["TR"]
    assert c["other_activity"] == "TR-0001"
    assert c["deadline"] == "2025-04-09T06:10:00Z"
    assert (c["floor_m"], c["ceiling_m"]) == (1000, 4000)
    listed = svc.conflicts(M)
    assert [x["id"] for x in listed] == [c["id"]] and listed[0]["status"] == "open"


@pytest.mark.parametrize(
    ("offset_m", "expected"),
    [(29_000, 1), (29_300, 0)],  # gap 9,000 m conflicts; gap 9,300 m is beyond 9,260 m
)
def test_separation_threshold(svc: Service, offset_m: float, expected: int) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    out = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(offset(T4, EAST, offset_m))])
    assert len(out.raised) == expected


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        ({"start_h": 4}, 0),  # starts when the first ends: windows touch, no overlap
        ({"start_h": 3.9}, 1),
        ({"floor_m": 4305, "ceiling_m": 6000}, 0),  # exactly the vertical separation above
        ({"floor_m": 4300, "ceiling_m": 6000}, 1),
    ],
)
def test_time_and_altitude_rules(svc: Service, other: dict[str, Any], expected: int) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    out = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, **other)])
    assert len(out.raised) == expected


def test_same_party_never_conflicts(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    assert svc.notify(mechanism_id=M, actor="TR", kind="air_sortie", volumes=[vol(T4)]).raised == ()


def test_one_conflict_per_pair_of_activities(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4), vol(offset(T4, EAST, 5000), id="b")])
    out = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4), vol(T4, id="x", start_h=2.5)])
    assert len(out.raised) == 1
    assert len(out.raised[0]["volume_pairs"]) == 4


def test_red_line_binds_other_parties_not_its_owner(svc: Service) -> None:
    tr = svc.notify(
        mechanism_id=M,
        actor="TR",
        kind="deployment",
        volumes=[vol(PALMYRA, radius_m=3000, floor_m=0, ceiling_m=100, start_h=24, hours=240)],
    )
    assert [(c["kind"], c["zone"], c["awaiting"]) for c in tr.raised] == [("zone", "IL-RL-PALMYRA", ["IL"])]
    il = svc.notify(
        mechanism_id=M,
        actor="IL",
        kind="deployment",
        volumes=[vol(PALMYRA, radius_m=3000, floor_m=0, ceiling_m=100, start_h=24, hours=240)],
    )
    assert all(c["kind"] != "zone" for c in il.raised)
    # a kind the red line does not forbid
    sortie = svc.notify(
        mechanism_id=M,
        actor="TR",
        kind="air_sortie",
        volumes=[vol(PALMYRA, radius_m=3000, floor_m=0, ceiling_m=100, start_h=500, hours=1)],
    )
    assert sortie.raised == ()


def test_a_zone_wholly_outside_the_area_is_refused_and_one_across_its_edge_kept(svc: Service) -> None:
    """T4's positions read latitude first (a file that wrote them so) put a zone in central Türkiye, declared, and
    T4 left unprotected (an interop walk-through). A zone that reaches into the area is kept whole."""
    lon, lat = T4
    before = svc.head(M).seq
    with pytest.raises(InvalidInput) as e:
        svc.declare_zone(
            mechanism_id=M, actor="TR", zone=zone("TR-SWAPPED", "protected", ["exercise"], (lat, lon), 5000)
        )
    assert e.value.message.startswith(
        "geometry: zone 'TR-SWAPPED' lies wholly outside the mechanism's area of responsibility, "
    )
    assert "are its positions longitude first" in e.value.message and e.value.field == "geometry"
    assert "(or within 12 NM, 22.2 km, of it)" in e.value.message  # the scenario's margin (was "22.224 km")
    assert svc.head(M).seq == before and "TR-SWAPPED" not in {z["id"] for z in svc.zones(M)}
    # 55 km north of the border at Kilis, 80 km across: it reaches into the area
    across = zone("TR-KILIS", "protected", ["exercise"], (37.1, 37.2), 80_000)
    svc.declare_zone(mechanism_id=M, actor="TR", zone=across)
    assert "TR-KILIS" in {z["id"] for z in svc.zones(M)}


def test_zone_declared_later_catches_existing_activity_and_withdrawal_stops_it(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="IL", kind="exercise", volumes=[vol(T4)])
    zone = {
        "id": "TR-PROT-1",
        "kind": "protected",
        "name": "Aid convoy route",
        "forbids": ["exercise", "air_sortie"],
        "centre": list(offset(T4, EAST, 12_000)),
        "radius_m": 5000,
        "valid_from": iso(T0),
    }
    out = svc.declare_zone(mechanism_id=M, actor="TR", zone=zone)
    assert [(c["kind"], c["activity"]) for c in out.raised] == [("zone", "IL-0001")]
    assert out.seq == svc.head(M).seq  # where the record stands: after the conflict's alerts
    withdrawn = svc.withdraw_zone(mechanism_id=M, actor="TR", zone_id="TR-PROT-1")
    assert withdrawn.resolved and withdrawn.seq == svc.head(M).seq
    later = svc.notify(mechanism_id=M, actor="IL", kind="exercise", volumes=[vol(T4, start_h=5)])
    assert later.raised == ()
    with pytest.raises(Forbidden):
        svc.withdraw_zone(mechanism_id=M, actor="TR", zone_id="IL-RL-PALMYRA")


def test_short_notice_measures_the_lead_time(svc: Service, clock: FixedClock) -> None:
    out = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=0.25)])
    assert [c["kind"] for c in out.raised] == ["short_notice"]
    assert out.raised[0]["lead_time_s"] == 900 and out.raised[0]["min_notice_s"] == 3600
    assert out.raised[0]["awaiting"] == ["TR"]
    assert svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=1)]).raised == ()


def test_amend_supersedes_conflicts_and_detects_again(svc: Service) -> None:
    tr = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    il = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    first = il.raised[0]["id"]
    assert il.seq == svc.head(M).seq  # the last entry written (the conflict's alerts follow its own)
    assert tr.activity is not None
    moved = svc.amend(
        mechanism_id=M, actor="TR", activity_id=tr.activity.id, seen_version=1, volumes=[vol(offset(T4, EAST, 100_000))]
    )
    assert moved.resolved == (first,) and moved.raised == ()
    assert svc.conflict(M, first)["status"] == "resolved" and svc.conflict(M, first)["resolution"] == "amended"
    back = svc.amend(mechanism_id=M, actor="TR", activity_id=tr.activity.id, seen_version=2, volumes=[vol(T4)])
    assert [c["other_activity"] for c in back.raised] == ["IL-0001"] and back.seq == svc.head(M).seq
    history = svc.activity_history(M, tr.activity.id)
    assert [h["version"] for h in history] == [1, 2, 3]
    assert history[1]["activity"]["volumes"][0]["geometry"]["coordinates"][0] > 38.0


def test_cancel_closes_conflicts_and_frees_the_space(svc: Service) -> None:
    tr = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    il = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    assert tr.activity is not None
    out = svc.cancel(mechanism_id=M, actor="TR", activity_id=tr.activity.id, seen_version=1)
    assert out.resolved == (il.raised[0]["id"],) and out.seq == svc.head(M).seq
    assert svc.activity(M, tr.activity.id).state.value == "cancelled"
    assert svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)]).raised == ()
    with pytest.raises(InvalidState):
        svc.amend(mechanism_id=M, actor="TR", activity_id=tr.activity.id, seen_version=2)


def test_acknowledge_and_resolve(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    cid = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)]).raised[0]["id"]
    with pytest.raises(Forbidden):
        svc.acknowledge_conflict(mechanism_id=M, actor="US", conflict_id=cid)
    with pytest.raises(Forbidden, match="awaits the acknowledgement of TR, not of IL .you were sent an information"):
        svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id=cid)  # IL's notice caused it
    acked = svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=cid)
    assert acked["status"] == "acknowledged" and set(acked["acknowledged"]) == {"TR"}
    # once TR has answered, IL is not told that the conflict still awaits TR (a helper read it so)
    with pytest.raises(Forbidden, match="awaited the acknowledgement of TR, not of IL, and has it .you were sent"):
        svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id=cid)
    with pytest.raises(InvalidState):
        svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=cid)
    with pytest.raises(Forbidden):
        svc.resolve_conflict(mechanism_id=M, actor="US", conflict_id=cid, resolution="accepted")
    with pytest.raises(InvalidInput, match="resolution"):
        svc.resolve_conflict(mechanism_id=M, actor="AZ", conflict_id=cid, resolution="ignored")
    done = svc.resolve_conflict(mechanism_id=M, actor="AZ", conflict_id=cid, resolution="escalated", note="to talks")
    assert (done["status"], done["resolution"], done["resolved_by"]) == ("resolved", "escalated", "AZ")
    assert [c["id"] for c in svc.conflicts(M, status="unresolved")] == []


def test_conflicts_still_counting_after_an_instant_are_chosen_to_the_microsecond(svc: Service) -> None:
    """``ending_after`` reads the conflicts whose stored end, to the second, is not before the instant's (on
    either store), then keeps those that end after it exactly: a window that ends half a second past the
    instant counts, one that ends at it does not; the open ones are chosen the same way."""
    end = T0 + timedelta(hours=4, microseconds=500_000)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, end=iso(end))])
    (c1,) = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, hours=3)]).raised
    whole = T0 + timedelta(hours=7)  # C2: a window that ends on a whole second
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(PALMYRA, start_h=5, hours=2)])
    (c2,) = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA, start_h=5)]).raised
    assert (c1["end"], c2["end"]) == (iso(end), iso(whole))
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id=c1["id"])

    def ids(at: datetime, status: str) -> list[str]:
        return [c["id"] for c in svc.conflicts(M, status=status, ending_after=at)]

    us = timedelta(microseconds=1)
    assert ids(end - timedelta(seconds=1), "acknowledged") == [c1["id"]]
    assert ids(end - us, "acknowledged") == [c1["id"]]
    assert ids(T0 + timedelta(hours=4), "acknowledged") == [c1["id"]]  # "…00.5Z" sorts before "…00Z" as text
    assert ids(end, "acknowledged") == [] == ids(end + timedelta(milliseconds=200), "acknowledged")
    assert ids(whole - us, "open") == [c2["id"]]
    assert ids(whole, "open") == [] == ids(whole + timedelta(seconds=1), "open")
    assert ids(end - us, "unresolved") == [c1["id"], c2["id"]]


def test_a_notice_breaking_two_zones_after_a_restart_is_numbered_as_ledger_verify_expects(
    db: str, svc: Service, clock: FixedClock
) -> None:
    """A restarted service holds the zones in the order they were declared, as one that kept running does:
    a notice that breaks two gets its conflicts in that order, and ``ledger verify`` finds nothing wrong. Read
    in id order after a restart, C1 and C2 swapped zones and verify named both, and their alerts, as wrong."""
    for zone_id in ("TR-PROT-B", "TR-PROT-A"):  # declared B first
        clock.advance(seconds=60)
        svc.declare_zone(
            mechanism_id=M, actor="TR", zone=zone(zone_id, "protected", ["air_sortie"], T4, 20_000, valid_from=clock())
        )
    restarted = Service(open_store(db), clock=clock)
    out = restarted.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    assert [(c["id"], c["zone"]) for c in out.raised] == [("C1", "TR-PROT-B"), ("C2", "TR-PROT-A")]
    assert recheck(restarted.entries_after(M, 0), mechanism=M).problems == []


BAD_NOTICES: list[tuple[str, dict[str, Any], type[DeconflictError], str]] = [
    ("unknown kind", {"kind": "strike"}, InvalidInput, "kind"),
    ("no volumes", {"volumes": []}, InvalidInput, "volumes"),
    ("end not after start", {"volumes": [vol(start_h=2, hours=0)]}, InvalidInput, "end"),
    ("floor above ceiling", {"volumes": [vol(floor_m=5000, ceiling_m=4000)]}, InvalidInput, "floor_m"),
    ("floor below -500 m", {"volumes": [vol(floor_m=-600)]}, InvalidInput, "floor_m"),
    ("ceiling above 30 km", {"volumes": [vol(ceiling_m=30_001)]}, InvalidInput, "ceiling_m"),
    ("radius zero", {"volumes": [vol(radius_m=0)]}, InvalidInput, "radius_m"),
    ("radius over 500 km", {"volumes": [vol(radius_m=500_001)]}, InvalidInput, "radius_m"),
    ("latitude out of range", {"volumes": [vol((37.6, 95.0))]}, InvalidInput, "latitude"),
    ("outside the area", {"volumes": [vol(BAKU)]}, InvalidInput, "area of responsibility"),
    ("naive time", {"volumes": [{**vol(), "start": "2025-04-09T08:00:00"}]}, InvalidInput, "timezone"),
    (
        "ring not closed",
        {
            "volumes": [
                {
                    **vol(),
                    "radius_m": None,
                    "geometry": {"type": "Polygon", "coordinates": [[[37, 34], [38, 34], [38, 35], [37, 35]]]},
                }
            ]
        },
        InvalidInput,
        "not closed",
    ),
    (
        "self-intersecting ring",
        {
            "volumes": [
                {
                    **vol(),
                    "radius_m": None,
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[37, 34], [38, 35], [38, 34], [37, 35], [37, 34]]],
                    },
                }
            ]
        },
        InvalidInput,
        "cross",
    ),
    ("duplicate volume ids", {"volumes": [vol(id="a"), vol(id="a")]}, InvalidInput, "twice"),
    ("unknown member", {"actor": "RU"}, NotFound, "RU"),
    ("observer may not notify", {"actor": "US"}, Forbidden, "observer"),
]


@pytest.mark.parametrize(("case", "change", "error", "words"), BAD_NOTICES, ids=[c[0] for c in BAD_NOTICES])
def test_bad_notice_is_refused_and_changes_nothing(
    svc: Service, case: str, change: dict[str, Any], error: type[DeconflictError], words: str
) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    before = counts(svc)
    request = {"mechanism_id": M, "actor": "IL", "kind": "air_sortie", "volumes": [vol()], **change}
    with pytest.raises(error) as info:
        svc.notify(**request)
    assert words in str(info.value)
    assert counts(svc) == before
    # the index did not take the refused notice either
    assert len(svc.notify(mechanism_id=M, actor="TR", kind="air_sortie", volumes=[vol()]).raised) == 0


def test_duplicate_activity_id_and_stale_version(svc: Service) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], activity_id="TR-A")
    before = counts(svc)
    with pytest.raises(InvalidState, match="already exists"):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], activity_id="TR-A")
    svc.amend(mechanism_id=M, actor="TR", activity_id="TR-A", seen_version=1, title="v2")
    before = counts(svc)
    with pytest.raises(StaleVersion, match="version 2.*version 1"):
        svc.amend(mechanism_id=M, actor="TR", activity_id="TR-A", seen_version=1, title="late")
    with pytest.raises(Forbidden):
        svc.amend(mechanism_id=M, actor="IL", activity_id="TR-A", seen_version=2, title="not yours")
    assert counts(svc) == before


def test_restart_keeps_state_and_index(db: str, svc: Service, clock: FixedClock) -> None:
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    svc.store.close()
    again = Service(open_store(db), clock=clock)
    out = again.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    assert [c["other_activity"] for c in out.raised] == ["TR-0001"]
    assert again.verify(M).ok


def test_record_pages_are_the_stored_entries_in_order(svc: Service) -> None:
    """``entries_after`` (what the event streams and ``GET .../record`` read) pages through the stored record
    exactly: each page the next entries, as documents of the stored rows, none skipped or repeated."""
    from deconflict.store import ledger

    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    with svc.store.read() as s:
        stored = [ledger.entry_doc(r) for r in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
    assert len(stored) > 10 and [d["seq"] for d in stored] == list(range(1, len(stored) + 1))
    paged: list[dict[str, Any]] = []
    while page := svc.entries_after(M, paged[-1]["seq"] if paged else 0, limit=4):
        assert len(page) <= 4
        paged += page
    assert paged == stored
    assert svc.entries_after(M, 3, limit=2) == stored[3:5]
    assert svc.entries_after(M, len(stored), limit=5) == []


def test_tables_are_a_projection_of_the_record(svc: Service, tmp_path: Path) -> None:
    """Re-applying the record to an empty database gives the same tables."""
    from deconflict.store import projection
    from deconflict.store.schema import Base

    svc.notify(
        mechanism_id=M,
        actor="TR",
        kind="deployment",
        volumes=[vol(PALMYRA, radius_m=3000, floor_m=0, ceiling_m=100, start_h=24, hours=240)],
    )
    svc.notify(
        mechanism_id=M,
        actor="IL",
        kind="air_sortie",
        volumes=[vol(PALMYRA, radius_m=3000, floor_m=0, ceiling_m=100, start_h=0.2, hours=1)],
    )
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id="C1")
    svc.amend(mechanism_id=M, actor="TR", activity_id="TR-0001", seen_version=1, volumes=[vol(T4)])
    copy = open_store(str(tmp_path / "replayed.db"))
    with svc.store.read() as s, copy.transaction() as c:
        for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)):
            import json

            projection.apply(
                c, mechanism=M, type=e.type, payload=json.loads(e.payload), at=e.at, seq=e.seq, actor=e.actor
            )
    for table in Base.metadata.sorted_tables:
        if table.name in ("ledger", "custody_keys", "checkpoints"):  # not projections: keys held, heads signed
            continue
        with svc.store.engine.connect() as a, copy.engine.connect() as b:
            rows_a = sorted(map(tuple, a.execute(table.select())), key=repr)
            rows_b = sorted(map(tuple, b.execute(table.select())), key=repr)
        assert rows_a == rows_b, table.name


def test_tampering_with_the_record_is_caught(svc: Service) -> None:
    seq = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)]).seq
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    assert svc.verify(M).ok
    with svc.store.engine.begin() as con:  # behind the service's back, on whichever store it runs
        payload = con.execute(text("select payload from ledger where seq = :seq"), {"seq": seq}).scalar_one()
        tampered = payload.replace("uav_patrol", "air_sortie")
        con.execute(text("update ledger set payload = :p where seq = :seq"), {"p": tampered, "seq": seq})
    report = svc.verify(M)
    assert not report.ok and report.first_bad_seq == seq and "payload" in (report.problem or "")


def test_reported_distance_matches_geodesic(svc: Service) -> None:
    """Circle to polygon over Syria: the reported distance agrees with pyproj.Geod within 10 m."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, radius_m=3000)])
    ring = [[37.70, 34.40], [37.72, 34.40], [37.72, 34.60], [37.70, 34.60], [37.70, 34.40]]
    out = svc.notify(
        mechanism_id=M,
        actor="IL",
        kind="air_sortie",
        volumes=[{**vol(), "radius_m": None, "geometry": {"type": "Polygon", "coordinates": [ring]}}],
    )
    geod = Geod(ellps="WGS84")
    # the nearest point of the meridian edge lon=37.70 to the centre: sample the edge finely
    lats = [34.40 + i * 0.0001 for i in range(2001)]
    _, _, d = geod.inv([T4[0]] * len(lats), [T4[1]] * len(lats), [37.70] * len(lats), lats)
    expected = min(d) - 3000
    assert out.raised[0]["distance_m"] == pytest.approx(expected, abs=10)


def test_unknown_mechanism(svc: Service) -> None:
    with pytest.raises(NotFound, match="mechanism"):
        svc.notify(mechanism_id="nope", actor="TR", kind="uav_patrol", volumes=[vol()])


def test_a_write_from_another_process_is_seen_and_the_chain_stays_whole(
    db: str, svc: Service, clock: FixedClock
) -> None:
    """Two services on one file (as two processes): the second's cached picture goes stale and is rebuilt."""
    other = Service(open_store(db), clock=clock)
    other.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(offset(T4, EAST, 60_000))])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])  # svc's picture is now stale
    out = other.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    assert [c["other_activity"] for c in out.raised] == ["TR-0001"]
    assert out.activity is not None and out.activity.id == "IL-0002"
    assert svc.verify(M).ok and svc.verify(M).entries == counts(svc)[0]
    other.add_member(mechanism_id=M, member={"id": "TR-2", "name": "Duty officer", "role": "party", "party": "TR"})
    assert svc.member(M, "TR-2").party == "TR"


@pytest.mark.parametrize("radius_m", [5e-324, 1e-300, 1e-9])
def test_a_circle_too_small_to_draw_is_judged_by_its_centre(svc: Service, radius_m: float) -> None:
    """A radius so small that the circle's ring has no two distinct points (5e-324 m) is a point: inside the area
    where its centre is (it was refused as reaching outside the area), outside it where its centre is."""
    out = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, radius_m=radius_m)])
    assert out.activity is not None and out.activity.volumes[0].footprint.radius_m == radius_m
    with pytest.raises(InvalidInput, match="outside the mechanism's area of responsibility") as refused:
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(BAKU, radius_m=radius_m)])
    assert refused.value.field == "geometry"
