"""``GET .../picture.kml`` and ``.kmz`` over real HTTP on loopback, under ``conflicts-only``: Israel's picture
carries of Türkiye's notices only the overlap the rules allow (tests/support/leaks: the two footprints grown
by the separation minimum, the overlapping band and window), nothing of a notice that conflicts with none
of Israel's, and no volume id, title or own window end of Türkiye's; Türkiye's own picture has its notices
whole. The KML is read with lxml and XPath alone (not our reader), and is valid OGC KML 2.2."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from shapely.geometry import Polygon, mapping
from support.builders import HAMA, T0, T4, A, declared_db, syria, vol
from support.leaks import Envelope, breaches, circle
from support.live import auth, start_server

from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.model import Disclosure

NS = {"k": "http://www.opengis.net/kml/2.2"}
K = "{http://www.opengis.net/kml/2.2}"
SCHEMA = Path(__file__).parents[1] / "vendor" / "kml" / "ogckml22.xsd"
SEP, VSEP = 9260.0, 305.0
IL_AT, IL_R, TR_R = (37.90, 34.52), 10_000.0, 20_000.0
H = timedelta(hours=1)
TR_NEAR = vol(T4, start_h=2, hours=4, radius_m=TR_R, floor_m=1000, ceiling_m=9000, id="tr-secret-a")
TR_FAR = vol(HAMA, start_h=2.5, hours=1, radius_m=5000, floor_m=200, ceiling_m=900, id="tr-secret-b")
IL_OWN = vol(IL_AT, start_h=3, hours=2, radius_m=IL_R, floor_m=3000, ceiling_m=5000, id="il-own")
SEPARATION = Envelope(
    region=(circle(T4, TR_R) & circle(IL_AT, IL_R + SEP)) | (circle(IL_AT, IL_R) & circle(T4, TR_R + SEP)),
    band=(3000 - VSEP, 5000 + VSEP),
    window=(T0 + 3 * H, T0 + 5 * H),
)
WHOLE = [iso(T0 + 2 * H), iso(T0 + 6 * H), "tr-secret", "Tiyas secret patrol", "HAMA run"]
WHOLE += [(T0 + 2 * H).isoformat(), (T0 + 6 * H).isoformat()]  # as TimeSpan writes them (+00:00)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    clock = FixedClock(T0)
    db = declared_db(
        tmp_path_factory.mktemp("kmlco") / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY)
    )
    server = start_server(db, clock)
    tok = server.tokens()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for who, body in (
                ("TR", {"kind": "uav_patrol", "title": "Tiyas secret patrol", "volumes": [TR_NEAR]}),
                ("TR", {"kind": "uav_patrol", "title": "HAMA run", "volumes": [TR_FAR]}),
                ("IL", {"kind": "air_sortie", "volumes": [IL_OWN]}),
            ):
                assert c.post(f"{A}/activities", json=body, headers=auth(tok[who])).status_code == 201
            got = {who: c.get(f"{A}/picture.kml", headers=auth(tok[who])) for who in ("IL", "TR", "AZ")}
            got["kmz"] = c.get(f"{A}/picture.kmz", headers=auth(tok["IL"]))
            got["anonymous"] = c.get(f"{A}/picture.kml")
            yield got
    finally:
        server.stop()


def _docs(text: bytes) -> list[dict[str, Any]]:
    """Each Placemark as a document: its ExtendedData, its TimeSpan, and each horizontal face (a polygon
    whose positions share one altitude) or point, read with XPath only."""
    root = etree.fromstring(text)
    out = []
    for pm in root.xpath("//k:Placemark", namespaces=NS):
        doc: dict[str, Any] = {d.get("name"): d.findtext(f"{K}value") for d in pm.xpath(".//k:Data", namespaces=NS)}
        doc["start"] = pm.findtext(f".//{K}TimeSpan/{K}begin")
        doc["end"] = pm.findtext(f".//{K}TimeSpan/{K}end")
        faces = []
        for ring in pm.xpath(".//k:Polygon/k:outerBoundaryIs/k:LinearRing/k:coordinates/text()", namespaces=NS):
            pts = [tuple(float(x) for x in p.split(",")) for p in ring.split()]
            if len({p[2] for p in pts}) == 1:
                faces.append({"geometry": mapping(Polygon([p[:2] for p in pts])), "floor_m": pts[0][2]})
        for point in pm.xpath(".//k:Point/k:coordinates/text()", namespaces=NS):
            lon, lat = (float(x) for x in point.split(",")[:2])
            faces.append({"geometry": {"type": "Point", "coordinates": [lon, lat]}})
        doc["faces"] = faces
        out.append(doc)
    return out


def _t(text: str) -> datetime:
    return parse_utc(text, field="time")


def test_the_routes_answer_kml_and_kmz_to_members_only(pictures: dict[str, Any]) -> None:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    for who in ("IL", "TR", "AZ"):
        r = pictures[who]
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.google-earth.kml+xml"
        assert schema.validate(etree.fromstring(r.content)), schema.error_log
    kmz = pictures["kmz"]
    assert kmz.headers["content-type"] == "application/vnd.google-earth.kmz"
    with zipfile.ZipFile(io.BytesIO(kmz.content)) as z:
        assert z.namelist() == ["doc.kml"]
        assert _docs(z.read("doc.kml")) == _docs(pictures["IL"].content)
    assert pictures["anonymous"].status_code == 401 and "detail" in pictures["anonymous"].json()


def test_israel_sees_of_turkiyes_notice_only_the_overlap(pictures: dict[str, Any]) -> None:
    text = pictures["IL"].content
    docs = _docs(text)
    parts = [d for d in docs if d.get("activity") == "TR-0001" and d.get("partial") == "true"]
    assert parts and all(d["faces"] for d in parts)  # something is shown, so the check below has teeth
    assert breaches(docs, "TR-0001", SEPARATION) == []
    assert not any("TR-0002" in str(d.values()) for d in docs)  # conflicts with nothing of IL's: not there at all
    for secret in WHOLE:
        assert secret not in text.decode()
    (own,) = [d for d in docs if d.get("activity") == "IL-0001" and "volume" in d]
    assert (_t(own["start"]), _t(own["end"]), own["volume"]) == (T0 + 3 * H, T0 + 5 * H, "il-own")


def test_turkiye_sees_its_own_notices_whole_and_the_facilitator_only_overlaps(pictures: dict[str, Any]) -> None:
    tr = {d["activity"]: d for d in _docs(pictures["TR"].content) if "volume" in d}
    assert all(secret in pictures["TR"].text for secret in WHOLE)  # what IL must not read is there to leak
    assert tr["TR-0001"]["volume"] == "tr-secret-a" and tr["TR-0001"]["title"] == "Tiyas secret patrol"
    assert (_t(tr["TR-0002"]["start"]), _t(tr["TR-0002"]["end"])) == (T0 + 2.5 * H, T0 + 3.5 * H)
    az = _docs(pictures["AZ"].content)
    assert breaches(az, "TR-0001", SEPARATION) == []
    assert not any(d.get("activity") == "TR-0002" for d in az)
