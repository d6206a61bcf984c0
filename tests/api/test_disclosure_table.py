"""docs/disclosure.md as a table-driven test over HTTP: under ``conflicts-only``, for each reading route and
each kind of conflict, what IL can read of TR's notice, and that nothing it reads of that notice lies
outside the overlap the rules allow (the two footprints grown by the separation minimum, the overlapping
band and window; for short notice the fact and the lead time only).

One scenario on a live server, built once: TR-0001 meets IL-0001 (separation), TR-0002 is notified late
far from anything of IL's (short notice), TR-0003 reaches into IL's zone (zone). Every time, band and
vertex of TR's notices differs from the overlap's, so a leak of the whole notice shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import HAMA, PALMYRA, T0, T4, A, declared_db, offset, syria, vol, zone
from support.leaks import Envelope, breaches, circle, mentions, read_all, walk
from support.live import LiveServer, auth, start_server

from deconflict.clock import FixedClock, iso
from deconflict.mechanisms import CAPS
from deconflict.model import Disclosure, Rules

SEP, VSEP = 9260.0, 305.0
IL_AT, IL_R = (37.90, 34.52), 10_000.0
TR_R = 20_000.0
ZONE_AT, ZONE_R = offset(PALMYRA, 90, 12_000), 6_000.0
H = timedelta(hours=1)


def _notice(kind: str, centre: Any, vid: str, start_h: float, hours: float, r: float, band: tuple[float, float]) -> Any:
    volume = vol(centre, start_h=start_h, hours=hours, radius_m=r, floor_m=band[0], ceiling_m=band[1], id=vid)
    return {"kind": kind, "volumes": [volume]}


NOTICES = [  # (who, body)
    ("TR", _notice("uav_patrol", T4, "tr-secret-a", 2, 4, TR_R, (1000, 9000))),
    ("TR", _notice("uav_patrol", HAMA, "tr-secret-b", 0.5, 1, 5000, (200, 900))),
    ("TR", _notice("uav_patrol", PALMYRA, "tr-secret-c", 2.5, 2, 10_000, (500, 2500))),
    ("IL", _notice("air_sortie", IL_AT, "il-own", 3, 2, IL_R, (3000, 5000))),
]

ENVELOPES = {
    # separation: TR-0001 within IL-0001 grown by the minimum, and IL-0001 within TR-0001 grown (IL's own)
    "separation": (
        "TR-0001",
        Envelope(
            region=(circle(T4, TR_R) & circle(IL_AT, IL_R + SEP)) | (circle(IL_AT, IL_R) & circle(T4, TR_R + SEP)),
            band=(3000 - VSEP, 5000 + VSEP),
            window=(T0 + 3 * H, T0 + 5 * H),
        ),
    ),
    # zone: TR-0003 inside IL's zone, during the zone's validity (it ends at T0 + 3.5 h)
    "zone": (
        "TR-0003",
        Envelope(
            region=circle(PALMYRA, 10_000) & circle(ZONE_AT, ZONE_R),
            band=(500, 2500),
            window=(T0 + 2.5 * H, T0 + 3.5 * H),
        ),
    ),
    # short notice: the fact and the lead time: when it was notified and when it starts; no where, no band, no end
    "short_notice": ("TR-0002", Envelope(region=None, band=None, window=(T0, T0 + 0.5 * H))),
}
WHOLE = [iso(T0 + 2 * H), iso(T0 + 6 * H), iso(T0 + 1.5 * H), iso(T0 + 4.5 * H), "tr-secret"]
"""TR's own window ends and starts that are no overlap's, and TR's volume ids: never in what IL reads."""

# What IL can read of TR's notice, by route and kind (docs/disclosure.md): "overlap" (the parts within the
# envelope), "fact" (the conflict, no geometry), "none" (nothing names it).
TABLE: dict[str, dict[str, str]] = {
    "conflicts": {"separation": "overlap", "zone": "overlap", "short_notice": "fact"},
    "conflict": {"separation": "overlap", "zone": "overlap", "short_notice": "fact"},
    "activities": {"separation": "overlap", "zone": "overlap", "short_notice": "none"},
    "activity": {"separation": "overlap", "zone": "overlap", "short_notice": "none"},
    "record": {"separation": "overlap", "zone": "overlap", "short_notice": "fact"},
    "events": {"separation": "overlap", "zone": "overlap", "short_notice": "fact"},
    "replay": {"separation": "overlap", "zone": "overlap", "short_notice": "fact"},
    "notify_201": {"separation": "overlap", "zone": "none", "short_notice": "none"},
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str], dict[str, Any]]]:
    clock = FixedClock(T0)
    db = declared_db(
        tmp_path_factory.mktemp("co") / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY)
    )
    server = start_server(db, clock)
    tok = server.tokens()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        z = zone("il-zone", "restricted", ["uav_patrol"], ZONE_AT, ZONE_R, valid_to=iso(T0 + 3.5 * H))
        assert c.post(f"{A}/zones", json=z, headers=auth(tok["IL"])).status_code == 201
        answers = []
        for who, body in NOTICES:
            r = c.post(f"{A}/activities", json=body, headers=auth(tok[who]))
            assert r.status_code == 201, r.text
            answers.append(r.json())
        kinds = {x["kind"] for a in answers for x in a["raised"]}
        assert kinds == {"separation", "zone", "short_notice"}
        got = read_all(c, tok["IL"], at=T0)
        got["notify_201"] = answers[-1]
        yield server, tok, got
    server.stop()


@pytest.mark.parametrize("route", sorted(TABLE))
@pytest.mark.parametrize("kind", sorted(ENVELOPES))
def test_what_il_reads_of_trs_notice(scene: Any, route: str, kind: str) -> None:
    _, _, got = scene
    activity, envelope = ENVELOPES[kind]
    received = got[route]
    text = json.dumps(received)
    expected = TABLE[route][kind]
    named = activity in text
    assert named == (expected != "none"), f"{route}/{kind}: expected {expected}"
    assert breaches(received, activity, envelope) == []
    for whole in WHOLE:
        assert whole not in text, f"{route} discloses {whole}"
    if expected == "overlap":
        parts = [
            p
            for d in _docs_naming(received, activity)
            for p in d.get("overlap", []) + d.get("overlap_a", []) + d.get("overlap_b", [])
        ]
        assert parts, f"{route}/{kind}: no overlap part"
        assert all("volume" not in p for p in parts)


def _docs_naming(received: Any, activity: str) -> list[dict[str, Any]]:
    return [d for d in walk(received) if mentions(d, activity)]


def test_a_short_notice_conflict_carries_the_fact_and_the_lead_time(scene: Any) -> None:
    _, _, got = scene
    (short,) = [c for c in got["conflicts"] if c["kind"] == "short_notice"]
    assert short["activity"] == "TR-0002" and short["awaiting"] == ["IL"]
    assert short["lead_time_s"] == 1800 and short["min_notice_s"] == 3600
    assert not {"start", "end", "floor_m", "ceiling_m", "volumes", "overlap_a"} & set(short)


def test_list_filters_answer_for_the_overlap_only(scene: Any) -> None:
    server, tok, _ = scene
    h = auth(tok["IL"])
    with httpx.Client(base_url=server.url, timeout=10) as c:

        def listed(**params: str) -> set[str]:
            return {a["id"] for a in c.get(f"{A}/activities", params=params, headers=h).json()}

        assert "TR-0001" in listed()
        # a box over TR-0001's far side (15 km west of T4): it touches the notice, not the overlap
        west = offset(T4, 270, 15_000)
        assert "TR-0001" not in listed(bbox=f"{west[0] - 0.02},{west[1] - 0.02},{west[0] + 0.02},{west[1] + 0.02}")
        east = offset(IL_AT, 270, IL_R + 2000)
        assert "TR-0001" in listed(bbox=f"{east[0] - 0.02},{east[1] - 0.02},{east[0] + 0.02},{east[1] + 0.02}")
        # after the overlap's window but inside TR's own; before it likewise
        assert "TR-0001" not in listed(start=iso(T0 + 5.5 * H))
        assert "TR-0001" not in listed(end=iso(T0 + 2.5 * H))
        assert "TR-0001" in listed(start=iso(T0 + 4.5 * H), end=iso(T0 + 4.6 * H))


def test_hidden_and_absent_read_alike(scene: Any) -> None:
    server, tok, _ = scene
    with httpx.Client(base_url=server.url, timeout=10) as c:
        hidden = c.get(f"{A}/activities/TR-0002", headers=auth(tok["IL"]))
        absent = c.get(f"{A}/activities/TR-0099", headers=auth(tok["IL"]))
    assert hidden.status_code == absent.status_code == 404
    if hidden.json()["detail"].replace("TR-0002", "X") != absent.json()["detail"].replace("TR-0099", "X"):
        pytest.xfail("the wording of 'not found' is the errors helper's part of issue 14")


def test_the_rules_record_the_caps(scene: Any, tmp_path: Path) -> None:
    server, tok, _ = scene
    with httpx.Client(base_url=server.url, timeout=10) as c:
        first = c.get(f"{A}/record", params={"limit": 1}, headers=auth(tok["IL"])).json()["entries"][0]
    rules = first["payload"]["rules"]
    assert rules["max_notice_area_km2"] == 10_000 and rules["max_notice_band_m"] == 10_000
    assert rules["max_notice_hours"] == 168 and rules["previews_per_hour"] == 60


def test_the_docs_show_the_caps_the_rules_hold() -> None:
    text = (Path(__file__).parents[2] / "docs" / "disclosure.md").read_text(encoding="utf-8")
    default = Rules(0, 0, 0, 0, 0, ())
    for name in CAPS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        shown = float(row.split("|")[2].split("(")[0].replace(",", ""))
        assert shown == getattr(default, name), name


def test_replay_around_an_instant_keeps_another_partys_notice_by_what_il_sees_of_it(scene: Any) -> None:
    """``GET .../replay?at=&window_h=`` keeps TR's notice seen in part while the parts IL sees end within the
    window, never by TR's own end; and the short-notice conflict IL acknowledged by when IL last saw it,
    never by the hidden end of the notice it is about. Both were kept until the hidden end: replaying at
    instants a second apart told it to the second."""
    server, tok, _ = scene
    with httpx.Client(base_url=server.url, timeout=10) as c:
        (short,) = [x for x in c.get(f"{A}/conflicts", headers=auth(tok["IL"])).json() if x["kind"] == "short_notice"]
        assert c.post(f"{A}/conflicts/{short['id']}/acknowledge", headers=auth(tok["IL"])).status_code == 200

        def around(at: Any) -> tuple[set[str], set[str]]:
            params = {"at": iso(at), "window_h": "24"}
            state = c.get(f"{A}/replay", params=params, headers=auth(tok["IL"])).json()
            return {a["id"] for a in state["activities"]}, {x["id"] for x in state["conflicts"]}

        day = timedelta(hours=24)
        # the overlap IL sees ends at T0 + 5 h; TR's notice at T0 + 6 h
        assert "TR-0001" in around(T0 + 5 * H + day - timedelta(minutes=1))[0]
        assert "TR-0001" not in around(T0 + 5 * H + day + timedelta(minutes=1))[0]
        # acknowledged at T0; the notice it is about ends at T0 + 1.5 h, which IL is never told
        assert short["id"] in around(T0 + day - timedelta(minutes=1))[1]
        assert short["id"] not in around(T0 + day + timedelta(minutes=1))[1]
