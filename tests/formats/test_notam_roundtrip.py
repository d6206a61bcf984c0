"""NOTAM out and in, checked against an independent NOTAM implementation (PyPI ``aviconv-notam``, MIT):
ours → aviconv's parser → aviconv's formatter → ours, then stored through the service, with the same
content within the stated precision:

- the Q-line's centre is the covering circle's, rounded to the minute (at most 0.5' of latitude and of
  longitude away: about 926 m north-south and 926·cos(lat) m east-west), and its radius, in whole NM,
  holds every footprint from that rounded centre and is less than 1 NM more than it needs;
- the Q-line's flight levels and items F/G are the floor rounded down and the ceiling rounded up (to the
  flight level, to the foot);
- items B and C are the first start and last end to the minute; item E gives each volume exactly, so
  what is read back is the notice (centres to 0.01 second, about 0.3 m; radii and levels to 0.1 m).

And NOTAMs written by aviconv's own formatter (not drafted by us) are read by the Q-line, D, F and G; bad
files get an error naming the NOTAM and the item, and store nothing.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aviconv_notam.formatter import format_notam
from aviconv_notam.model import Notam, NotamType, Purpose, QLine, Schedule, Scope, Traffic
from aviconv_notam.parser import parse
from pyproj import Geod
from support.builders import HAMA, PALMYRA, T0, T4, A, M, declared_db, square, syria, vol, zone
from support.live import auth, start_server
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.cli.interop import all_notams, import_notams
from deconflict.clock import FixedClock, iso
from deconflict.errors import DeconflictError, InvalidInput
from deconflict.formats._notam_read import NoticeDraft, ZoneDraft, read_notams
from deconflict.formats.docs import activity_to_doc
from deconflict.formats.notam import ACTIVITY_CODES, ZONE_CODES, activity_notam, zone_notam
from deconflict.geo import circle_ring
from deconflict.model import ALT_MAX_M, ALT_MIN_M, Disclosure
from deconflict.record import signing
from deconflict.service import Service
from deconflict.store import open_store
from deconflict.units import FT_M, NM_M

GEOD = Geod(ellps="WGS84")
HALF_MINUTE_DEG = 0.5 / 60
DMS_DEG = 0.005 / 3600 + 1e-9
"""Item E's positions: to 0.01 second, so within half of it."""


@pytest.fixture
def svc(tmp_path: Path) -> Service:
    clock = FixedClock(T0)
    return Service(open_store(declared_db(tmp_path / "n.db", clock, mechanism=syria())), clock=clock)


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _polygon(geometry: dict[str, Any], **fields: Any) -> dict[str, Any]:
    v = vol(T4, geometry=geometry, **fields)
    del v["radius_m"]
    return v


ACTIVITIES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "circle": ("uav_patrol", [vol(T4, radius_m=10_000, floor_m=1000, ceiling_m=4000, id="v1")]),
    "polygon": ("air_sortie", [_polygon(square(37.9, 34.0, 0.3), floor_m=150.5, ceiling_m=9144, id="P")]),
    "two windows, one across midnight": (
        "exercise",
        [
            vol(HAMA, radius_m=5_000, start=_h(3), hours=2, floor_m=-500, ceiling_m=3000, id="a"),
            vol(HAMA, radius_m=8_000, start=_h(16), hours=5, floor_m=500, ceiling_m=30_000, id="b"),
        ],
    ),
    "air defence, far apart": (
        "air_defence_activation",
        [vol(T4, radius_m=3_000, id="x"), vol((38.9, 35.3), radius_m=4_000, id="y")],
    ),
}


def _footprint_points(v: dict[str, Any]) -> list[tuple[float, float]]:
    if v["geometry"]["type"] == "Point":
        lon, lat = v["geometry"]["coordinates"]
        return [tuple(p) for p in circle_ring(lon, lat, v["radius_m"], 360)]
    return [tuple(p) for p in v["geometry"]["coordinates"][0]]


def _same_volume(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["id"] == want["id"]
    assert (got["floor_m"], got["ceiling_m"]) == (want["floor_m"], want["ceiling_m"])
    assert (got["start"], got["end"]) == (want["start"], want["end"])
    assert got["geometry"]["type"] == want["geometry"]["type"]
    if want["geometry"]["type"] == "Point":
        assert got["radius_m"] == want["radius_m"]
        assert got["geometry"]["coordinates"] == pytest.approx(list(want["geometry"]["coordinates"]), abs=DMS_DEG)
    else:
        got_ring = [tuple(p) for p in got["geometry"]["coordinates"][0]]
        want_ring = [tuple(p) for p in want["geometry"]["coordinates"][0]]
        assert len(got_ring) == len(want_ring)
        for g, w in zip(got_ring, want_ring, strict=True):
            assert g == pytest.approx(w, abs=DMS_DEG)


@pytest.mark.parametrize("case", list(ACTIVITIES))
def test_an_activitys_notam_reads_the_same_in_aviconv_and_back_in_ours(svc: Service, case: str, tmp_path: Path) -> None:
    kind, volumes = ACTIVITIES[case]
    activity = svc.notify(mechanism_id=M, actor="TR", kind=kind, volumes=volumes, title="Route (west) — Şam").activity
    assert activity is not None
    doc = activity_to_doc(activity)
    text = activity_notam(doc)

    theirs = parse(text)  # the independent parser
    q = theirs.q_line
    assert (q.fir, theirs.fir, q.qcode) == ("OSTT", "OSTT", ACTIVITY_CODES[activity.kind])
    assert (q.traffic.value, q.purpose.value, q.scope.value) == ("IV", "BO", "W")
    floor = min(v["floor_m"] for v in doc["volumes"])
    ceiling = max(v["ceiling_m"] for v in doc["volumes"])
    assert q.lower_fl == max(0, math.floor(floor / FT_M / 100))
    assert q.upper_fl == (999 if ceiling >= ALT_MAX_M else math.ceil(ceiling / FT_M / 100))
    assert theirs.lower_limit == ("SFC" if floor <= 0 else f"{math.floor(floor / FT_M)}FT AMSL")
    assert theirs.upper_limit == ("UNL" if ceiling >= ALT_MAX_M else f"{math.ceil(ceiling / FT_M)}FT AMSL")
    assert theirs.effective_from == activity.start and theirs.effective_to == activity.end  # whole minutes here
    assert bool(theirs.schedule.raw) == (len({(v["start"], v["end"]) for v in doc["volumes"]}) > 1)
    # the Q-line's circle holds every footprint, with less than 1 NM to spare
    points = [p for v in doc["volumes"] for p in _footprint_points(v)]
    n = len(points)
    _, _, dist = GEOD.inv([q.centre_lon] * n, [q.centre_lat] * n, [p[0] for p in points], [p[1] for p in points])
    assert max(dist) <= q.radius_nm * NM_M + 1.0
    assert q.radius_nm * NM_M < max(dist) + NM_M
    if len(doc["volumes"]) == 1 and doc["volumes"][0]["geometry"]["type"] == "Point":
        lon, lat = doc["volumes"][0]["geometry"]["coordinates"]
        assert abs(q.centre_lat - lat) <= HALF_MINUTE_DEG and abs(q.centre_lon - lon) <= HALF_MINUTE_DEG

    again = format_notam(theirs)  # aviconv's own canonical text of what it read
    (draft,) = read_notams(again, party="TR")
    assert isinstance(draft, NoticeDraft)
    assert draft.kind == kind and draft.title == "ROUTE WEST - SAM"
    for got, want in zip(draft.volumes, doc["volumes"], strict=True):
        _same_volume(got, want)

    with pytest.raises(DeconflictError, match=f"it is the NOTAM of activity {activity.id}, which the record holds"):
        import_notams(svc, M, svc.member(M, "TR"), again)  # the same activity again: amend it instead
    elsewhere = Service(open_store(declared_db(tmp_path / "fresh.db", FixedClock(T0))), clock=FixedClock(T0))
    (line,) = import_notams(elsewhere, M, elsewhere.member(M, "TR"), again)  # stored through the service's notify
    stored = elsewhere.activity(M, line.split(": ")[1].split()[0])
    for got, want in zip(activity_to_doc(stored)["volumes"], doc["volumes"], strict=True):
        _same_volume(got, want)


def test_a_zones_notam_reads_the_same_in_aviconv_and_back_in_ours(svc: Service, tmp_path: Path) -> None:
    polygon = {
        "id": "TR-R-1",
        "kind": "restricted",
        "name": "Border strip",
        "forbids": ["air_sortie", "uav_patrol"],
        "geometry": square(36.5, 36.4, 0.2),
        "floor_m": 0,
        "ceiling_m": 6000,
        "valid_from": iso(_h(1)),
        "valid_to": iso(_h(49)),
        "applies_to_owner": True,
    }
    svc.declare_zone(mechanism_id=M, actor="TR", zone=polygon)
    svc.declare_zone(mechanism_id=M, actor="TR", zone=zone("TR-AD-2", "air_defence", ["air_sortie"], T4, 12_000))
    fresh = Service(open_store(declared_db(tmp_path / "fresh.db", FixedClock(T0))), clock=FixedClock(T0))
    for z in svc.zones(M):
        if z["owner"] != "TR":
            continue
        theirs = parse(zone_notam(z))
        assert theirs.q_line.qcode == ZONE_CODES[z["kind"]]
        assert theirs.effective_from == datetime.fromisoformat(z["valid_from"])
        assert theirs.effective_to == ("PERM" if z["valid_to"] is None else datetime.fromisoformat(z["valid_to"]))
        (draft,) = read_notams(format_notam(theirs), party="TR")
        assert isinstance(draft, ZoneDraft) and draft.zone["id"] == z["id"]
        import_notams(fresh, M, fresh.member(M, "TR"), format_notam(theirs))
        (back,) = [b for b in fresh.zones(M) if b["id"] == z["id"]]
        for key in ("kind", "name", "forbids", "valid_from", "valid_to", "floor_m", "ceiling_m", "applies_to_owner"):
            assert str(back[key]).upper() == str(z[key]).upper(), key
        _same_volume({**back, "id": "", "start": 0, "end": 0}, {**z, "id": "", "start": 0, "end": 0})


def test_a_notam_written_by_aviconv_is_read_by_its_items(svc: Service) -> None:
    q = QLine(
        fir="OSTT",
        qcode="QWMLW",
        traffic=Traffic.IV,
        purpose=Purpose.BO,
        scope=Scope.W,
        lower_fl=0,
        upper_fl=150,
        centre_lat=34 + 31 / 60,
        centre_lon=37 + 38 / 60,
        radius_nm=10,
        raw="",
    )
    notam = Notam(
        series="A",
        number=123,
        year=2025,
        type=NotamType.NEW,
        q_line=q,
        fir="OSTT",
        effective_from=_h(4),
        effective_to=_h(30),
        schedule=Schedule(raw="APR 09 1000-1200, APR 10 0900-1100"),
        body="MISSILE FIRING WILL TAKE PLACE.",
        lower_limit="SFC",
        upper_limit="FL150",
        source_text="-",
    )
    (draft,) = read_notams(format_notam(notam), party="TR")
    assert isinstance(draft, NoticeDraft) and draft.kind == "air_defence_activation"
    assert [(v["start"], v["end"]) for v in draft.volumes] == [
        (iso(_h(4)), iso(_h(6))),
        (iso(_h(27)), iso(_h(29))),
    ]
    for v in draft.volumes:
        assert v["geometry"]["coordinates"] == pytest.approx([q.centre_lon, q.centre_lat])
        assert v["radius_m"] == 10 * NM_M
        assert (v["floor_m"], v["ceiling_m"]) == (ALT_MIN_M, round(15_000 * FT_M, 1))
    assert "notified" in import_notams(svc, M, svc.member(M, "TR"), format_notam(notam))[0]


GOOD = """A0001/25 NOTAMN
Q) OSTT/QWULW/IV/BO/W/000/100/3431N03738E005
A) OSTT B) 2504091000 C) 2504091200
E) UAV FLIGHTS.
F) SFC G) FL100
"""

BAD: dict[str, tuple[str, str]] = {
    "a bad item C": (GOOD.replace("A0001", "A0002").replace("C) 2504091200", "C) 2504311200"), "NOTAM 2 item C"),
    "C before B": (GOOD.replace("A0001", "A0002").replace("C) 2504091200", "C) 2504090900"), "NOTAM 2 item C"),
    "no Q-line": (
        GOOD.replace("A0001", "A0002").replace("Q) OSTT/QWULW/IV/BO/W/000/100/3431N03738E005\n", ""),
        "NOTAM 2 item Q",
    ),
    "a FIR not known": (GOOD.replace("A0001", "A0002").replace("OSTT", "LTAA"), "NOTAM 2 item A"),
    "lower above upper": (GOOD.replace("A0001", "A0002").replace("/000/100/", "/200/100/"), "NOTAM 2 item Q"),
    "a cancellation": (GOOD.replace("A0001/25 NOTAMN", "A0002/25 NOTAMC A0001/25"), "NOTAM 2 item 1"),
    "a height above ground": (GOOD.replace("A0001", "A0002").replace("G) FL100", "G) 3000FT AGL"), "NOTAM 2 item G"),
    "a code we read nothing from": (GOOD.replace("A0001", "A0002").replace("QWULW", "QMRLC"), "NOTAM 2 item Q"),
    "a window already past (the service's rule)": (
        GOOD.replace("A0001", "A0002").replace("B) 2504091000 C) 2504091200", "B) 2504080800 C) 2504081000"),
        "NOTAM 2 (A0002/25) item C: volume 1 end: every window of this notice has already ended",
    ),
    "a schedule outside B to C": (
        GOOD.replace("A0001", "A0002").replace("E) UAV", "D) APR 09 1300-1400\nE) UAV"),
        "NOTAM 2 item D",
    ),
    "a zone with a schedule": (
        GOOD.replace("A0001", "A0002").replace("QWULW", "QRRCA").replace("E) UAV", "D) APR 09 1000-1100\nE) UAV"),
        "NOTAM 2 item D",
    ),
    "the same zone twice": (
        GOOD.replace("A0001", "A0003").replace("QWULW", "QRRCA")
        + GOOD.replace("A0001", "A0003").replace("QWULW", "QRRCA"),
        "NOTAM 3 (A0003/25) item E",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_file_with_one_bad_notam_stores_nothing_and_names_it(svc: Service, case: str) -> None:
    bad, named = BAD[case]
    before = svc.head(M).seq
    with pytest.raises(DeconflictError) as caught:
        import_notams(svc, M, svc.member(M, "TR"), GOOD + "\n" + bad)
    assert named in caught.value.message, caught.value.message
    assert svc.head(M).seq == before
    assert import_notams(svc, M, svc.member(M, "TR"), GOOD)  # the good one alone is taken: the bad one was refused


def test_the_command_names_the_notam_and_item_on_stderr_and_exits_2(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "c.db", FixedClock(T0))
    path = tmp_path / "notams.txt"
    path.write_text(GOOD + "\n" + BAD["a bad item C"][0], encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "notam", str(path), "--db", db, "--as", "TR"])
    assert result.exit_code == 2
    assert "error: NOTAM 2 item C:" in result.stderr and "Traceback" not in result.output
    # and by its identifier and line, as the officer finds it in a civil authority's file (was: "NOTAM 2" alone)
    assert result.stderr.rstrip().endswith("(NOTAM 2 is A0002/25, from line 7)"), result.stderr
    path.write_text("hello\n" + GOOD, encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "notam", str(path), "--db", db, "--as", "TR"])
    assert result.exit_code == 2 and "line 1: 'hello' is not part of a NOTAM" in result.stderr


def test_a_centre_outside_every_known_fir_is_refused_with_the_list() -> None:
    doc = {
        "id": "TR-0001",
        "party": "TR",
        "kind": "uav_patrol",
        "title": "",
        "version": 1,
        "volumes": [vol((32.85, 39.93), id="v1")],  # Ankara
    }
    with pytest.raises(InvalidInput, match="in no FIR this service knows .*OSTT Damascus"):
        activity_notam(doc)


def test_only_the_whole_notice_gets_a_notam_under_conflicts_only(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    svc = Service(open_store(db), clock=clock)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    near = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)]).activity
    far = svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA, radius_m=2000)]).activity
    assert near is not None and far is not None
    svc.store.close()

    def notam_of(target: str, member: str) -> Any:
        return CliRunner().invoke(app, ["notam", target, "--db", db, "--as", member])

    for hidden in (far.id, "IL-9999"):  # not seen at all, not there: one answer
        result = notam_of(hidden, "TR")
        assert result.exit_code == 2
        assert result.stderr.strip() == f"error: no activity or zone '{hidden}' that you may see"
    part = notam_of(near.id, "TR")  # seen in part (TR's GET shows it so): said why there is none
    assert part.exit_code == 2 and "you see only its part in conflict with yours" in part.stderr
    own = notam_of(far.id, "IL")
    assert own.exit_code == 0 and parse(own.stdout).q_line.qcode == "QRTCA"
    assert "DECONFLICT ZONE IL-RL-PALMYRA" in notam_of("IL-RL-PALMYRA", "TR").stdout  # zones are everyone's


def test_over_http_a_hidden_activitys_notam_is_answered_as_one_that_does_not_exist_and_one_seen_in_part_says_why(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "http.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    server = start_server(db, clock)
    try:
        svc, tokens = server.service, server.tokens("TR", "IL")
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)], activity_id="IL-NEAR")
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA)], activity_id="IL-FAR")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            answers = [
                c.get(f"{A}/activities/{aid}/notam", headers=auth(tokens["TR"]))
                for aid in ("IL-NEAR", "IL-FAR", "IL-NONE")
            ]
            assert [r.status_code for r in answers] == [404, 404, 404]
            # hidden whole (no conflict with TR's): answered as one that does not exist
            assert answers[1].json()["detail"].replace("FAR", "X") == answers[2].json()["detail"].replace("NONE", "X")
            # seen in part (in conflict with TR's, and shown so by its own route): said why there is no NOTAM
            assert c.get(f"{A}/activities/IL-NEAR", headers=auth(tokens["TR"])).json()["partial"] is True
            assert "you see only its part in conflict with yours" in answers[0].json()["detail"]
            for aid, said in (("IL-NEAR", "you see only its part in conflict"), ("IL-FAR", "that you may see")):
                cli = CliRunner().invoke(app, ["notam", aid, "--as", "TR", "--db", db])  # the command line, the same
                assert cli.exit_code == 2 and said in " ".join(cli.output.split()), cli.output
            own = c.get(f"{A}/activities/IL-NEAR/notam", headers=auth(tokens["IL"]))
            assert own.status_code == 200 and own.headers["content-type"].startswith("text/plain")
            assert parse(own.text).q_line.qcode == "QRTCA"
            z = c.get(f"{A}/zones/IL-RL-PALMYRA/notam", headers=auth(tokens["TR"]))
            assert z.status_code == 200 and parse(z.text).effective_to == "PERM"
            assert c.get(f"{A}/zones/NONE/notam", headers=auth(tokens["TR"])).status_code == 404
    finally:
        server.stop()


def test_a_party_that_holds_its_own_key_signs_what_it_imports(tmp_path: Path) -> None:
    key = signing.KeyPair.from_seed(bytes([9]) * 32)
    db = declared_db(tmp_path / "k.db", FixedClock(T0), keys={"TR": key})
    svc = Service(open_store(db), clock=FixedClock(T0))
    before = svc.head(M).seq
    with pytest.raises(DeconflictError, match=r"^NOTAM 1 \(A0001/25\): party TR signs its own entries"):
        import_notams(svc, M, svc.member(M, "TR"), GOOD)
    assert svc.head(M).seq == before
    (line,) = import_notams(svc, M, svc.member(M, "TR"), GOOD, key=key)
    entry = svc.entries_after(M, before, limit=10)[0]
    assert (entry["type"], entry["key_id"]) == ("activity.notified", key.key_id) and "TR-0001 notified" in line
    assert signing.verify(key.public_key, signing.entry_message(entry["hash"]), entry["signature"])


def test_a_window_with_seconds_is_widened_to_whole_minutes(svc: Service) -> None:
    start = T0 + timedelta(hours=2, seconds=30)
    volume = vol(T4, start=start, hours=1, id="s")  # 08:00:30 to 09:00:30
    activity = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[volume]).activity
    assert activity is not None
    theirs = parse(activity_notam(activity_to_doc(activity)))
    assert (theirs.effective_from, theirs.effective_to) == (_h(2), _h(3) + timedelta(minutes=1))
    (draft,) = read_notams(format_notam(theirs), party="TR")
    assert isinstance(draft, NoticeDraft)
    assert (draft.volumes[0]["start"], draft.volumes[0]["end"]) == (iso(_h(2)), iso(_h(3) + timedelta(minutes=1)))


def test_every_notam_a_member_may_see_is_exported_and_read_back(svc: Service, tmp_path: Path) -> None:
    for kind, volumes in ACTIVITIES.values():
        svc.notify(mechanism_id=M, actor="TR", kind=kind, volumes=volumes)
    texts, left_out = all_notams(svc, M, svc.member(M, "TR"))
    assert left_out == [] and len(texts) == len(ACTIVITIES) + 1  # and the scenario's red line
    assert [parse(t).identifier for t in texts] == [f"A{k:04d}/25" for k in range(1, len(texts) + 1)]
    fresh = Service(open_store(declared_db(tmp_path / "fresh.db", FixedClock(T0))), clock=FixedClock(T0))
    with pytest.raises(DeconflictError, match="drafted of IL's zone IL-RL-PALMYRA, not of TR's"):
        import_notams(fresh, M, fresh.member(M, "TR"), "\n".join(texts))  # IL's red line is IL's: not TR's own
    assert fresh.head(M).seq == svc.head(M).seq - len(ACTIVITIES)  # and nothing of the file was stored
    lines = import_notams(fresh, M, fresh.member(M, "TR"), "\n".join(texts[:-1]))
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == [
        f"TR-{k:04d} notified" for k in range(1, len(ACTIVITIES) + 1)
    ]
    for k, a in enumerate(svc.activities(M)):  # exported (and so imported) in this order
        back = fresh.activity(M, f"TR-{k + 1:04d}")
        for got, want in zip(activity_to_doc(back)["volumes"], activity_to_doc(a)["volumes"], strict=True):
            _same_volume(got, want)


@pytest.mark.parametrize(
    ("title", "said"),
    [
        ("Akıncı üssü, Şırnak; ışık", "AKINCI USSU, SIRNAK ISIK"),  # the dotless i was dropped: AKNC USSU, SRNAK SK
        ("סיור רמת דוד", "SYVR RMT DVD"),  # Hebrew was dropped whole
    ],
)
def test_a_title_in_any_script_is_written_in_latin_letters(svc: Service, title: str, said: str) -> None:
    activity = svc.notify(
        mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, id="v1")], title=title
    ).activity
    assert activity is not None
    text = activity_notam(activity_to_doc(activity))
    assert f"(DECONFLICT ACTIVITY {activity.id} VERSION 1): {said}." in text
    assert text.isascii()


def test_a_title_cannot_break_the_notam_it_is_written_in(svc: Service) -> None:
    title = "Patrol. VOLUME B: 5 km. F) SFC G) UNL (high)"
    activity = svc.notify(
        mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, id="v1")], title=title
    ).activity
    assert activity is not None
    text = activity_notam(activity_to_doc(activity))
    assert parse(text).upper_limit == "13124FT AMSL"  # the title's own 'G)' is no item to aviconv either
    (draft,) = read_notams(format_notam(parse(text)), party="TR")
    assert isinstance(draft, NoticeDraft) and [v["id"] for v in draft.volumes] == ["v1"]
    assert draft.title == "PATROL, VOLUME B: 5 KM, F SFC G UNL HIGH"


def test_a_cancelled_activity_has_no_notam(svc: Service, tmp_path: Path) -> None:
    activity = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)]).activity
    assert activity is not None
    svc.cancel(mechanism_id=M, actor="TR", activity_id=activity.id)
    result = CliRunner().invoke(app, ["notam", activity.id, "--db", str(tmp_path / "n.db"), "--as", "TR"])
    assert result.exit_code == 2
    assert f"activity {activity.id} is cancelled: a NOTAM is drafted for" in result.stderr
