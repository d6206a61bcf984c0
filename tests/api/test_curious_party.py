"""A curious party under ``conflicts-only`` (issue 14): IL probes TR's notice with a blanket notice, a grid
of previews, list filters and many small notices, then reads every route. Everything it received about
TR's notice lies within the overlaps its own notices and previews allow (TR's footprint within each probe
grown by the separation minimum, and its own parts), checked with shapely; TR's own window, band and
volume ids never reach it; TR's other notice is never named. TR, the facilitator and the observer see
that IL's previews reached TR's notice, and how often."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import shapely
from support.builders import HAMA, T0, T4, A, declared_db, offset, syria, vol, zone
from support.leaks import Envelope, breaches, circle, read_all
from support.live import auth, start_server

from deconflict.clock import FixedClock, iso
from deconflict.model import Disclosure, Rules

SEP, VSEP = 9260.0, 305.0
TR_R = 20_000.0
PROBE_R = 3_000.0
H = timedelta(hours=1)
PROBE_BAND = (3000.0, 4000.0)
ALLOWANCE = Rules(0, 0, 0, 0, 0, ()).previews_per_hour


def _probe(centre: Any, **extra: Any) -> dict[str, Any]:
    v = vol(centre, start_h=3, hours=1, radius_m=PROBE_R, floor_m=PROBE_BAND[0], ceiling_m=PROBE_BAND[1], **extra)
    return {"kind": "air_sortie", "volumes": [v]}


def test_a_curious_party_learns_only_the_overlaps_and_is_seen_probing(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    server = start_server(
        declared_db(tmp_path / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY)), clock
    )
    tok = server.tokens()
    tr, il = auth(tok["TR"]), auth(tok["IL"])
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            secret = vol(T4, start_h=2, hours=4, radius_m=TR_R, floor_m=1000, ceiling_m=9000, id="tr-secret-a")
            assert c.post(f"{A}/activities", json={"kind": "uav_patrol", "volumes": [secret]}, headers=tr).is_success
            far = vol(HAMA, start_h=2, hours=4, radius_m=5000, id="tr-secret-b")
            assert c.post(f"{A}/activities", json={"kind": "uav_patrol", "volumes": [far]}, headers=tr).is_success
            head = server.service.entries_after("tr-il-syria", 0)[-1]["seq"]
            received: list[Any] = []
            probes: list[Any] = []

            # 1. a blanket notice, too wide, too deep, too long: refused, nothing recorded
            blankets = {
                "geometry": vol(T4, radius_m=60_000),
                "ceiling_m": vol(T4, floor_m=-500, ceiling_m=30_000),
                "end": vol(T4, hours=30 * 24),
            }
            for field, blanket in blankets.items():
                for route in ("activities", "activities/preview"):
                    r = c.post(f"{A}/{route}", json={"kind": "air_sortie", "volumes": [blanket]}, headers=il)
                    assert r.status_code == 422 and r.json()["field"] == field, r.text
                    assert "conflicts-only" in r.json()["detail"]
                    received.append(r.json())
            assert server.service.entries_after("tr-il-syria", 0)[-1]["seq"] == head

            # 2. a grid of small previews over TR's notice, until the hour's allowance runs out
            grid = [
                offset(offset(T4, 0, dy), 90, dx) for dy in range(-20_000, 20_001, 8000) for dx in (-20_000, 0, 20_000)
            ]
            grid += [offset(T4, b, d) for d in (24_000, 12_000) for b in range(0, 360, 15)] + [
                offset(T4, 45, 10_000)
            ] * 4
            answers = []
            for centre in grid:
                r = c.post(f"{A}/activities/preview", json=_probe(centre), headers=il)
                if r.status_code == 429:
                    break
                assert r.status_code == 200, r.text
                probes.append(centre)
                answers.append(r.json())
            assert len(answers) == ALLOWANCE - 3 and r.status_code == 429  # 3 previews were the refused blankets
            assert int(r.headers["Retry-After"]) > 0 and r.json()["field"] == "previews_per_hour"
            reached = [a for a in answers if a["conflicts"]]
            assert reached and all(set(x) >= {"overlap", "start", "end"} for a in reached for x in a["conflicts"])
            assert all("other_activity" not in x and "distance_m" not in x for a in answers for x in a["conflicts"])
            received += answers

            # 3. list filters over TR's notice away from anything of IL's
            for dx in (-15_000, 0, 15_000):
                p = offset(T4, 90, dx)
                box = f"{p[0] - 0.05},{p[1] - 0.05},{p[0] + 0.05},{p[1] + 0.05}"
                seen = c.get(f"{A}/activities", params={"bbox": box}, headers=il).json()
                assert seen == []  # IL has no notice yet: it sees nothing of TR's
                received.append(seen)

            # 4. many small notices around TR's notice, each a real, recorded commitment
            for b in range(0, 360, 45):
                centre = offset(T4, b, 26_000)
                r = c.post(f"{A}/activities", json=_probe(centre), headers=il)
                assert r.status_code == 201, r.text
                probes.append(centre)
                received.append(r.json())
            for dx in (-8000, 8000):  # now the filters again, away from the overlaps (they begin 13.7 km out)
                p = offset(T4, 90, dx)
                box = f"{p[0] - 0.02},{p[1] - 0.02},{p[0] + 0.02},{p[1] + 0.02}"
                assert c.get(f"{A}/activities", params={"bbox": box}, headers=il).json() == []

            # 5. everything IL can read
            received.append(read_all(c, tok["IL"], at=T0))
            # a NOTAM carries the whole notice: none for IL of TR-0001, which IL sees in part (said so: "no such
            # activity" contradicted what IL's GET of it showed), and the one answer for TR-0002, hidden whole
            assert c.get(f"{A}/activities/TR-0001", headers=il).json()["partial"] is True
            part = c.get(f"{A}/activities/TR-0001/notam", headers=il)
            assert part.status_code == 404 and "you see only its part in conflict with yours" in part.json()["detail"]
            hidden = c.get(f"{A}/activities/TR-0002/notam", headers=il)
            nothing = c.get(f"{A}/activities/TR-9999/notam", headers=il)
            assert hidden.status_code == nothing.status_code == 404
            assert hidden.json()["detail"] == nothing.json()["detail"].replace("TR-9999", "TR-0002")
            received.append(part.json())  # (the refusal names the id asked: TR-0002 is not in what IL learns)

            # what the rules allow IL to learn of TR-0001: TR's footprint within each probe grown by the minimum
            # (and IL's own parts: each probe within TR's footprint grown)
            tr_area = circle(T4, TR_R)
            allowed = shapely.union_all(
                [tr_area & circle(p, PROBE_R + SEP) for p in probes]
                + [circle(p, PROBE_R) & circle(T4, TR_R + SEP) for p in probes]
            )
            envelope = Envelope(
                region=allowed,
                band=(PROBE_BAND[0] - VSEP, PROBE_BAND[1] + VSEP),
                window=(T0 + 3 * H, T0 + 4 * H),
            )
            assert breaches(received, "TR-0001", envelope) == []
            for answer in answers:
                for x in answer["conflicts"]:
                    assert envelope.why_not(x) == [] and all(envelope.why_not(p) == [] for p in x["overlap"])
            text = json.dumps(received)
            for whole in ("tr-secret", "TR-0002", iso(T0 + 2 * H), iso(T0 + 6 * H)):
                assert whole not in text, whole

            # 6. TR, the facilitator and the observer see that IL probed TR
            def counts(member: str) -> dict[str, Any]:
                rows = c.get(f"{A}/previews", headers=auth(tok[member])).json()["previews"]
                return {row["member"]: row for row in rows}

            for_tr = counts("TR")["IL"]
            assert for_tr["reached"] == {"TR": len(reached)} and "previews" not in for_tr
            assert for_tr["last_reached_at"]["TR"] == iso(T0)
            for member in ("AZ", "US"):
                assert counts(member)["IL"]["previews"] == ALLOWANCE and counts(member)["IL"]["reached"] == {
                    "TR": len(reached)
                }
            assert counts("IL")["IL"]["previews"] == ALLOWANCE
            assert "TR" not in counts("IL")  # TR previewed nothing

            # the hour passes: IL may preview again
            clock.advance(seconds=3601)
            assert c.post(f"{A}/activities/preview", json=_probe(probes[0]), headers=il).status_code == 200
    finally:
        server.stop()


def test_a_zone_over_the_theatre_is_refused_and_shows_no_notice(tmp_path: Path) -> None:
    """Under ``conflicts-only`` a zone's conflicts show its owner the part of each other party's notice inside
    it: IL declaring a zone of 450 km radius read every notice of TR's whole (and kept them after withdrawing
    it). A zone a party declares is held to a notice's area cap: refused naming ``radius_m`` (or ``geometry``
    for a polygon), nothing recorded, nothing of TR's shown; one of the size a protected area has is declared
    and shows only what lies inside it. Under ``full`` (everything shown anyway) the cap does not apply, nor
    to the zones of the agreed mechanism file (here a cap of 2,000 km² and IL's red line of about 5,000)."""
    clock = FixedClock(T0)
    agreed = syria(disclosure=Disclosure.CONFLICTS_ONLY)
    agreed = dataclasses.replace(agreed, rules=dataclasses.replace(agreed.rules, max_notice_area_km2=2000.0))
    server = start_server(declared_db(tmp_path / "co.db", clock, mechanism=agreed), clock)
    tok = server.tokens()
    tr, il = auth(tok["TR"]), auth(tok["IL"])
    forbids = ["air_sortie", "uav_patrol", "ground_movement", "deployment", "exercise"]
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for centre in (T4, HAMA):
                notice = {"kind": "uav_patrol", "volumes": [vol(centre, radius_m=10_000)]}
                assert c.post(f"{A}/activities", json=notice, headers=tr).is_success
            zones = {z["id"] for z in c.get(f"{A}/zones", headers=il).json()}
            assert zones == {z.id for z in agreed.zones} == {"IL-RL-PALMYRA"}  # the file's, declared
            head = server.service.entries_after("tr-il-syria", 0)[-1]["seq"]
            big = zone("IL-BIG", "restricted", forbids, (38.5, 35.0), 450_000)
            square = [[36.0, 33.0], [40.0, 33.0], [40.0, 36.5], [36.0, 36.5], [36.0, 33.0]]
            wide = zone("IL-WIDE", "restricted", forbids, T4, 0)
            wide["geometry"] = {"type": "Polygon", "coordinates": [square]}
            del wide["radius_m"]
            # a comb of twenty strips 20 m wide, 14 km apart: 80 km² covered, a country reached (it was declared,
            # and cut a slice from every notice of TR's with its whole window and band)
            comb = zone("IL-COMB", "restricted", forbids, T4, 0)
            strips = [
                [[[37.0 + 0.15 * i, 34.0], [37.0002 + 0.15 * i, 34.0], [37.0002 + 0.15 * i, 36.0],
                  [37.0 + 0.15 * i, 36.0], [37.0 + 0.15 * i, 34.0]]]
                for i in range(20)
            ]  # fmt: skip
            comb["geometry"] = {"type": "MultiPolygon", "coordinates": strips}
            del comb["radius_m"]
            for declared, field in ((big, "radius_m"), (wide, "geometry"), (comb, "geometry")):
                r = c.post(f"{A}/zones", json=declared, headers=il)
                assert r.status_code == 422 and r.json()["field"] == field, r.text
                assert "conflicts-only" in r.json()["detail"] and "km²" in r.json()["detail"]
            assert "reaches" in r.json()["detail"]  # the comb: by the ground it reaches
            assert server.service.entries_after("tr-il-syria", 0)[-1]["seq"] == head
            assert c.get(f"{A}/activities", headers=il).json() == []
            small = zone("IL-PROT", "protected", forbids, offset(T4, 90, 5_000), 3_000)
            r = c.post(f"{A}/zones", json=small, headers=il)
            assert r.status_code == 201, r.text
            (seen,) = c.get(f"{A}/activities", headers=il).json()  # TR's notice at T4, only its part in the zone
            assert seen["partial"] is True and seen["party"] == "TR"
            part = shapely.geometry.shape(seen["overlap"][0]["geometry"])
            assert part.within(circle(offset(T4, 90, 5_000), 3_000 + SEP).buffer(1e-6))
    finally:
        server.stop()
    clock = FixedClock(T0)
    server = start_server(declared_db(tmp_path / "full.db", clock), clock)
    try:
        r = httpx.post(
            f"{server.url}{A}/zones",
            json=zone("IL-BIG", "restricted", ["uav_patrol"], (38.5, 35.0), 450_000),
            headers=auth(server.tokens()["IL"]),
            timeout=10,
        )
        assert r.status_code == 201, r.text
    finally:
        server.stop()
