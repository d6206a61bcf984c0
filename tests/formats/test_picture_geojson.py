"""The picture out as RFC 7946 GeoJSON, over real HTTP (``GET .../picture.geojson``) and from the command
line (``deconflict export geojson``), read by independent readers: the ``geojson`` package's validation,
shapely for the rings' winding, pyproj's geodesic for lon/lat order and the circles' radii. Under
conflicts-only another party's notice is not in it, or only as the part that conflicts with the reader's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geojson
import httpx
import pytest
from pyproj import Geod
from shapely.geometry import LinearRing, shape
from support.builders import PALMYRA, T0, T4, A, declared_db, offset, position, syria, vol
from support.live import LiveServer, auth, start_server
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import FixedClock
from deconflict.model import Disclosure

GEOD = Geod(ellps="WGS84")


@pytest.fixture(params=[Disclosure.CONFLICTS_ONLY, Disclosure.FULL], ids=["conflicts-only", "full"])
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, str, dict[str, str]]]:
    """TR's patrol at T4; IL's sortie 12 km east of it (in conflict with it) and IL's sortie 60 km east of
    Palmyra (in conflict with nothing of TR's); a track of each party's, far apart."""
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "g.db", clock, mechanism=syria(disclosure=request.param))
    server = start_server(db, clock)
    svc = server.service
    svc.notify(mechanism_id="tr-il-syria", actor="TR", kind="uav_patrol", volumes=[vol(T4, id="tr")], title="TR")
    near = vol(offset(T4, 90, 12_000), radius_m=8_000, id="near")
    svc.notify(mechanism_id="tr-il-syria", actor="IL", kind="air_sortie", volumes=[near], activity_id="IL-NEAR")
    far = vol(offset(PALMYRA, 90, 60_000), radius_m=5_000, id="far")
    svc.notify(mechanism_id="tr-il-syria", actor="IL", kind="air_sortie", volumes=[far], activity_id="IL-FAR")
    svc.report_tracks(mechanism_id="tr-il-syria", actor="TR", reports=[position("T1", T0, T4, 90)])
    svc.report_tracks(mechanism_id="tr-il-syria", actor="IL", reports=[position("I1", T0, (39.5, 35.6), 0)])
    try:
        yield server, db, server.tokens("TR", "IL")
    finally:
        server.stop()


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    if geometry["type"] == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def _distances(centre: tuple[float, float], ring: list[list[float]]) -> list[float]:
    n = len(ring)
    _, _, dist = GEOD.inv([centre[0]] * n, [centre[1]] * n, [p[0] for p in ring], [p[1] for p in ring])
    return list(dist)


def test_the_picture_is_rfc_7946_and_carries_only_what_the_reader_may_see(
    scene: tuple[LiveServer, str, dict[str, str]],
) -> None:
    server, db, tokens = scene
    r = httpx.get(f"{server.url}{A}/picture.geojson", headers=auth(tokens["TR"]), timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    parsed = geojson.loads(r.text)  # the independent reader's validation
    assert parsed.is_valid, parsed.errors()
    assert doc["type"] == "FeatureCollection" and "crs" not in doc

    for f in doc["features"]:
        rings = _rings(f["geometry"])
        for k, ring in enumerate(rings):
            assert ring[0] == ring[-1]
            # right-hand rule (RFC 7946 3.1.6): exterior rings counterclockwise, holes clockwise
            assert LinearRing(ring).is_ccw == (f["geometry"]["type"] == "MultiPolygon" or k == 0), f["id"]
        if "radius_m" in f["properties"]:  # a circle drawn as its ring: lon, lat order, radius kept
            (ring,) = rings
            assert _distances(tuple(f["properties"]["centre"]), ring) == pytest.approx(
                [f["properties"]["radius_m"]] * len(ring), abs=0.5
            )

    by_activity: dict[str, list[dict[str, Any]]] = {}
    for f in doc["features"]:
        by_activity.setdefault(f["properties"].get("activity", ""), []).append(f)
    (own,) = by_activity["TR-0001"]
    assert own["properties"]["layer"] == "activity" and own["properties"]["centre"] == pytest.approx(list(T4))
    zones = [f for f in doc["features"] if f["properties"]["layer"] == "zone"]
    assert [z["id"] for z in zones] == ["zone/IL-RL-PALMYRA"]

    tracks = {f["properties"]["track"]: f for f in doc["features"] if f["properties"]["layer"] == "track"}
    assert tracks["TR/T1"]["geometry"] == {"type": "Point", "coordinates": pytest.approx(list(T4))}
    conflicts_only = server.service.mechanism("tr-il-syria").rules.disclosure is Disclosure.CONFLICTS_ONLY
    assert ("IL/I1" in tracks) is not conflicts_only  # another party's track in no conflict: only under full
    if conflicts_only:
        assert "IL-FAR" not in by_activity  # no conflict with TR: nothing of it
        (part,) = by_activity["IL-NEAR"]  # in conflict: only the part within the separation of TR's patrol
        assert part["properties"]["layer"] == "overlap" and part["properties"]["partial"] is True
        assert "title" not in part["properties"] and "volume" not in part["properties"]
        il_centre = offset(T4, 90, 12_000)
        for ring in _rings(part["geometry"]):
            assert max(_distances(il_centre, ring)) <= 8_000 * 1.001  # inside IL's own circle
        assert shape(part["geometry"]).area < 0.9 * shape(by_activity["TR-0001"][0]["geometry"]).area
    else:
        assert {f["properties"]["layer"] for f in by_activity["IL-FAR"] + by_activity["IL-NEAR"]} == {"activity"}
        (far,) = by_activity["IL-FAR"]
        assert far["properties"]["radius_m"] == 5_000

    # the command line writes the same document for the same member (tracks aside: the command runs on the
    # system clock, by which the tracks reported at the pinned time are long stale)
    out = CliRunner().invoke(app, ["export", "geojson", "--db", db, "--as", "TR"])
    assert out.exit_code == 0, out.output
    written = json.loads(out.stdout)
    assert [f for f in written["features"] if f["properties"]["layer"] != "track"] == [
        f for f in doc["features"] if f["properties"]["layer"] != "track"
    ]


def test_an_unknown_member_is_named(scene: tuple[LiveServer, str, dict[str, str]]) -> None:
    _, db, _ = scene
    out = CliRunner().invoke(app, ["export", "geojson", "--db", db, "--as", "XX"])
    assert out.exit_code == 2 and "--as: tr-il-syria has no member 'XX'" in out.stderr
