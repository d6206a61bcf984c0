"""KML out (formats/kml): the picture a member may see, valid against the OGC KML 2.2 schema (vendored,
tests/vendor/kml), read back by two readers we did not write (fastkml's object model, and lxml with XPath
on the raw XML) and by our own import (formats/kml_read): the same coordinates within 1e-7 degree, the
same altitudes and windows exactly.

Precision stated by formats/kml: coordinates are written with 7 decimals (half a unit of the last place,
5e-8 degree, is about 6 mm); a circle is drawn as its 64 vertices on the geodesic circle (each at the
radius, to a millimetre, by pyproj's own geodesic inverse) and read back as the circle itself."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pyproj import Geod
from support.builders import HAMA, T0, T4, M, declared_service, position, square, vol, zone

import deconflict
from deconflict.clock import FixedClock, iso
from deconflict.formats.kml import PARTY_COLOURS, picture_kml, to_kmz
from deconflict.formats.kml_read import read_kml, volume_docs, zone_docs
from deconflict.service import Service

KML = "{http://www.opengis.net/kml/2.2}"
NS = {"k": "http://www.opengis.net/kml/2.2"}
SCHEMA = Path(__file__).parents[1] / "vendor" / "kml" / "ogckml22.xsd"
DEG = 1e-7
"""Coordinates agree to this (7 decimals written)."""
H = timedelta(hours=1)
POLYGON = square(37.70, 34.45, 0.1)
ZONE = zone(
    "IL-Z1",
    "restricted",
    ["uav_patrol", "deployment"],
    HAMA,
    8_000,
    valid_to=T0 + 48 * H,
    floor_m=0,
    ceiling_m=6000,
    name='Hama <field> & "approach"',
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Service, str]:
    clock = FixedClock(T0)
    svc = declared_service(tmp_path_factory.mktemp("kml") / "kml.db", clock)
    svc.declare_zone(mechanism_id=M, actor="IL", zone=ZONE)
    tr = svc.notify(
        mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, radius_m=12_000, id="v1")], title="T4 patrol"
    )
    il = svc.notify(
        mechanism_id=M,
        actor="IL",
        kind="air_sortie",
        volumes=[vol(geometry=POLYGON, radius_m=None, floor_m=3000, ceiling_m=3500, id="north")],
    )
    assert tr.activity and il.activity and il.raised
    svc.report_tracks(mechanism_id=M, actor="TR", reports=[position("UAV-1", T0, T4, 90, alt_ft=9000)])
    member = svc.member(M, "TR")
    text = picture_kml(
        mechanism_id=M,
        reader=member,
        disclosure=svc.mechanism(M).rules.disclosure,
        activities=svc.activities(M),
        zones=svc.zones(M),
        conflicts=svc.conflicts(M),
        tracks=svc.tracks(M, reader=member),
        at=clock(),
    )
    return svc, text


def _placemarks(root: Any, folder: str) -> list[Any]:
    return root.xpath(f"//k:Folder[k:name='{folder}']/k:Placemark", namespaces=NS)


def _data(pm: Any) -> dict[str, str]:
    return {d.get("name"): d.findtext(f"{KML}value") for d in pm.xpath(".//k:Data", namespaces=NS)}


def _faces(pm: Any) -> list[list[tuple[float, ...]]]:
    """Each polygon's outer ring, read from the raw text of <coordinates> (lon,lat,alt tuples)."""
    rings = pm.xpath(".//k:Polygon/k:outerBoundaryIs/k:LinearRing/k:coordinates/text()", namespaces=NS)
    return [[tuple(float(x) for x in p.split(",")) for p in ring.split()] for ring in rings]


def test_the_picture_is_valid_ogc_kml_22_and_the_kmz_holds_the_same(scene: tuple[Service, str]) -> None:
    _, text = scene
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    doc = etree.fromstring(text.encode())
    assert schema.validate(doc), schema.error_log
    with zipfile.ZipFile(io.BytesIO(to_kmz(text))) as kmz:
        assert kmz.namelist()[0] == "doc.kml"
        assert kmz.read("doc.kml").decode() == text
    # the schema is not a formality: a style's children out of the schema's order are refused
    broken = etree.fromstring(text.encode())
    style = broken.find(f".//{KML}Style")
    style.append(style[0])  # LineStyle after PolyStyle
    assert not schema.validate(broken)


def test_every_marker_style_carries_its_icon_and_colour(scene: tuple[Service, str]) -> None:
    """A viewer draws a point in its style's colour only from an IconStyle; fastkml writes none without an Icon."""
    _, text = scene
    root = etree.fromstring(text.encode())
    styles = {s.get("id"): s for s in root.iter(f"{KML}Style")}
    marks = [sid for sid in styles if sid.startswith(("track-", "conflict-"))]
    assert {"track-IL", "track-TR", "conflict-open", "conflict-acknowledged", "conflict-resolved"} <= set(marks)
    for sid in marks:
        (icon_style,) = styles[sid].findall(f"{KML}IconStyle")
        assert icon_style.findtext(f"{KML}color") and icon_style.findtext(f"{KML}Icon/{KML}href", "").startswith(
            "http://maps.google.com/mapfiles/kml/shapes/"
        )
    # TR's track blue as the page draws TR (second party by code: #38bdf8), in KML's aabbggrr order
    assert styles["track-TR"].findtext(f"{KML}IconStyle/{KML}color") == "fff8bd38"
    assert styles["conflict-open"].findtext(f"{KML}IconStyle/{KML}color") == "ff2827d6"


def test_the_kml_party_colours_are_the_pages_palette() -> None:
    main_js = Path(deconflict.__file__).parent / "web" / "js" / "main.js"
    (palette,) = re.findall(r"const PALETTE = \[([^\]]*)\]", main_js.read_text(encoding="utf-8"))
    page = [c.strip().strip("'\"").lstrip("#").lower() for c in palette.split(",") if c.strip()]
    assert list(PARTY_COLOURS) == page


def test_fastkml_reads_back_every_folder_window_and_style(scene: tuple[Service, str]) -> None:
    from fastkml import KML as FastKML

    svc, text = scene
    parsed = FastKML.from_string(text.encode())
    (document,) = parsed.features
    folders = {f.name: f.features for f in document.features}
    assert list(folders) == ["Zones", "Activities", "Conflicts", "Tracks"]
    # the scenario's red line and IL-Z1; TR's patrol and IL's sortie; their separation conflict and the
    # conformance conflict of TR's track (it flies before its patrol's window); TR's track
    assert [len(folders[n]) for n in folders] == [2, 2, 2, 1]
    styles = {s.id for s in document.styles}
    for features in folders.values():
        for pm in features:
            assert pm.style_url.url[1:] in styles
    windows = {pm.name: (pm.times.begin.dt, pm.times.end.dt) for pm in folders["Activities"]}
    for a in svc.activities(M):
        (v,) = a.volumes
        assert windows[f"{a.id} {a.kind.value} {v.id}"] == (v.start, v.end)
    zone_pm = folders["Zones"][1]
    assert zone_pm.name == f"{ZONE['name']} (IL-Z1)"  # markup in names is text, escaped, not lost
    assert (zone_pm.times.begin.dt, zone_pm.times.end.dt) == (T0, T0 + 48 * H)
    conflict = next(c for c in svc.conflicts(M) if c["kind"] == "separation")
    conflict_pm = next(pm for pm in folders["Conflicts"] if pm.name.startswith(f"{conflict['id']} "))
    assert conflict_pm.name == f"{conflict['id']} separation (open)"
    assert iso(conflict_pm.times.begin.dt) == conflict["start"] and iso(conflict_pm.times.end.dt) == conflict["end"]
    (track,) = folders["Tracks"]
    assert track.times.timestamp.dt == T0
    assert track.kml_geometry.geometry.coords[0] == pytest.approx((T4[0], T4[1], 9000 * 0.3048), abs=0.1)


def test_xpath_on_the_raw_xml_finds_the_same_coordinates_altitudes_and_circles(scene: tuple[Service, str]) -> None:
    svc, text = scene
    root = etree.fromstring(text.encode())
    geod = Geod(ellps="WGS84")
    by_activity = {_data(pm)["activity"]: pm for pm in _placemarks(root, "Activities")}
    for a in svc.activities(M):
        (v,) = a.volumes
        pm = by_activity[a.id]
        assert pm.xpath("string(.//k:altitudeMode)", namespaces=NS) == "absolute"
        (ceiling,) = _faces(pm)  # the footprint at the ceiling, extruded; the floor in ExtendedData
        assert {p[2] for p in ceiling} == {v.ceiling_m}
        assert pm.xpath("string(.//k:Polygon/k:extrude)", namespaces=NS) == "1"
        assert (float(_data(pm)["floor_m"]), float(_data(pm)["ceiling_m"])) == (v.floor_m, v.ceiling_m)
        if v.footprint.is_circle:
            centre = v.footprint.geometry
            lons, lats = [p[0] for p in ceiling], [p[1] for p in ceiling]
            _, _, dist = geod.inv([centre.x] * len(lons), [centre.y] * len(lats), lons, lats)
            assert max(abs(d - v.footprint.radius_m) for d in dist) < 0.02  # 7 decimals: within 2 cm
            assert len(ceiling) == 65
            assert _data(pm)["radius_m"] == f"{v.footprint.radius_m}"
        else:
            expected = POLYGON["coordinates"][0]
            assert [x for p in ceiling for x in p[:2]] == pytest.approx([x for c in expected for x in c], abs=DEG)
    from shapely.geometry import LinearRing

    for ring in root.xpath("//k:outerBoundaryIs/k:LinearRing/k:coordinates/text()", namespaces=NS):
        assert LinearRing([tuple(float(x) for x in p.split(",")[:2]) for p in ring.split()]).is_ccw  # right-hand rule
    zone_pm = _placemarks(root, "Zones")[1]
    assert _data(zone_pm)["id"] == "IL-Z1"
    assert _data(zone_pm)["forbids"] == "deployment,uav_patrol"
    assert zone_pm.xpath("string(.//k:styleUrl)", namespaces=NS) == "#zone-restricted"


def test_our_import_reads_back_the_zones_and_volumes_we_wrote(scene: tuple[Service, str]) -> None:
    svc, text = scene
    m = svc.mechanism(M)
    marks = read_kml(text.encode(), source="picture", folder="Zones")
    backs = zone_docs(marks, mechanism=M, party="IL", parties=m.parties(), defaults={})
    assert [b["id"] for b in backs] == ["IL-RL-PALMYRA", "IL-Z1"]
    for back, orig in zip(backs, svc.zones(M), strict=True):
        _same_zone(back, orig)
    marks = read_kml(text.encode(), source="picture", folder="Activities")
    docs = {d["id"]: d for d in volume_docs(marks, party="TR", defaults={})}
    for a in svc.activities(M):
        (v,) = a.volumes
        got = docs[v.id]
        assert (got["floor_m"], got["ceiling_m"], got["start"], got["end"]) == (
            v.floor_m,
            v.ceiling_m,
            iso(v.start),
            iso(v.end),  # type: ignore[arg-type]
        )
        if v.footprint.is_circle:
            assert got["radius_m"] == v.footprint.radius_m
            assert got["geometry"]["coordinates"] == pytest.approx(list(T4), abs=DEG)
        else:
            from shapely.geometry import shape

            assert shape(got["geometry"]).symmetric_difference(shape(POLYGON)).area < 1e-12


def _same_zone(back: dict[str, Any], orig: dict[str, Any]) -> None:
    assert back["geometry"]["coordinates"] == pytest.approx(orig["geometry"]["coordinates"], abs=DEG)
    assert back["radius_m"] == orig["radius_m"]
    for key in ("id", "kind", "name", "forbids", "valid_from", "valid_to", "floor_m", "ceiling_m", "applies_to_owner"):
        assert back[key] == orig[key], key


def test_names_holding_control_characters_still_make_valid_xml(tmp_path: Path) -> None:
    svc = declared_service(tmp_path / "c.db", FixedClock(T0))
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)], title="patrol\x1b[2J\x00 end")
    member = svc.member(M, "TR")
    text = picture_kml(
        mechanism_id=M,
        reader=member,
        disclosure=svc.mechanism(M).rules.disclosure,
        activities=svc.activities(M),
        zones=[],
        conflicts=[],
        at=T0,
    )
    doc = etree.fromstring(text.encode())
    assert "patrol\ufffd[2J\ufffd end" in _data(_placemarks(doc, "Activities")[0]).values()


@pytest.mark.parametrize("module", ["formats.kml", "formats.kml_read", "formats.ed269"])
def test_the_format_modules_import_no_framework(module: str) -> None:
    """Domain modules (README, "How it works"): no database, web or CLI framework, even once used."""
    import subprocess
    import sys

    frameworks = ("sqlalchemy", "alembic", "fastapi", "starlette", "typer", "uvicorn")
    code = f"import sys, deconflict.{module}; print([n for n in {frameworks!r} if n in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
