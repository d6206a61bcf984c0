"""KML in (formats/kml_read, ``deconflict import kml``): zones and one activity's footprints from KML or
KMZ through the service's own use cases; a bad file gets one line naming the Placemark (number and name)
and what is wrong, exit code 2, and nothing is stored (the record's length and the zones unchanged)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from shapely.geometry import shape
from support.builders import HAMA, T4, M
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.formats.kml_read import read_kml
from deconflict.service import Service

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
TAIL = "</Document></kml>"


def ring(lon: float, lat: float, size: float, z: float | None = None) -> str:
    pts = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat)]
    return " ".join(f"{x},{y}" + (f",{z}" if z is not None else "") for x, y in pts)


def polygon(coords: str, mode: str = "") -> str:
    alt = f"<altitudeMode>{mode}</altitudeMode>" if mode else ""
    boundary = f"<outerBoundaryIs><LinearRing><coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs>"
    return f"<Polygon>{alt}{boundary}</Polygon>"


def placemark(name: str, geometry: str, data: dict[str, str] | None = None, span: tuple[str, str] | None = None) -> str:
    ext = "".join(f'<Data name="{k}"><value>{v}</value></Data>' for k, v in (data or {}).items())
    times = f"<TimeSpan><begin>{span[0]}</begin><end>{span[1]}</end></TimeSpan>" if span else ""
    return (
        f"<Placemark><name>{name}</name>{times}"
        + (f"<ExtendedData>{ext}</ExtendedData>" if ext else "")
        + geometry
        + "</Placemark>"
    )


def kml(*marks: str) -> bytes:
    return (HEAD + "".join(marks) + TAIL).encode()


GOOD_ZONES = kml(
    placemark(
        "two fields",
        "<MultiGeometry>" + polygon(ring(37.0, 34.0, 0.05)) + polygon(ring(37.2, 34.0, 0.05)) + "</MultiGeometry>",
    ),
    placemark(
        "Hama circle",
        f"<Point><coordinates>{HAMA[0]},{HAMA[1]}</coordinates></Point>",
        {"radius_m": "4000", "forbids": "deployment"},
    ),
    placemark(
        "high box",
        polygon(ring(38.0, 34.0, 0.1, 1500), "absolute") + "",
        span=("2026-12-24T00:00:00Z", "2026-12-31T00:00:00Z"),
    ),
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"not xml at all", "not well-formed XML at line 1"),
        (b"<foo/>", "the root element is 'foo', not a KML 2.2 <kml>"),
        (b'<!DOCTYPE kml [<!ENTITY a "aaaa">]><kml xmlns="http://www.opengis.net/kml/2.2"/>', "DOCTYPE or entity"),
        (kml(), "no Placemark in the document"),
        (
            kml(placemark("A", polygon(ring(37, 34, 0.1))), placemark("B", polygon("37,34 37.1,abc 37.1,34.1 37,34"))),
            "Placemark 2 ('B') coordinates: position 2, '37.1,abc', is not longitude,latitude or longitude,latitude,",
        ),
        # fastkml's words were Python's: "Point.__init__() takes from 3 to 4 positional arguments but 5 were given"
        (
            kml(placemark("four", polygon("37,34,0,1 37.1,34,0 37.1,34.1,0 37,34,0"))),
            "Placemark 1 ('four') coordinates: position 1, '37,34,0,1', is not longitude,latitude or",
        ),
        (
            kml(placemark("road", "<LineString><coordinates>37,34 38,35</coordinates></LineString>")),
            "Placemark 1 ('road') LineString: encloses no area",
        ),
        (
            kml(placemark("pin", "<Point><coordinates>37,34</coordinates></Point>")),
            "Placemark 1 ('pin') Point: a point needs radius_m",
        ),
        (
            kml(placemark("pin", "<Point><coordinates>37,34</coordinates></Point>", {"radius_m": "wide"})),
            "Placemark 1 ('pin') ExtendedData radius_m: 'wide' is not a number",
        ),
        (
            kml(placemark("flat", polygon("37,34 38,34 37,34 37,34"))),
            "Placemark 1 ('flat') Polygon: its outer ring encloses no area",
        ),
        (kml(placemark("", "")), "Placemark 1: has no geometry"),
        (
            kml(placemark("late", polygon(ring(37, 34, 0.1)), span=("2026-12-24T00:00:00Z", "soon"))),
            "Placemark 1 ('late'): Error parsing",
        ),
        (b"PK\x03\x04 broken", "not a readable KMZ (ZIP) file"),
        # a time of day without its zone was taken for UTC without a word (an interop walk-through)
        (
            kml(placemark("local", polygon(ring(37, 34, 0.1)), span=("2026-12-08T10:00:00", "2026-12-08T12:00:00Z"))),
            "Placemark 1 ('local') TimeSpan begin: '2026-12-08T10:00:00' is not a time with its zone as KML writes it",
        ),
        (  # fastkml's own words came through for these
            kml(placemark("z", polygon(ring(37, 34, 0.1)), span=("2026-12-08T10:00:00z", "2026-12-08T12:00:00Z"))),
            "TimeSpan begin: '2026-12-08T10:00:00z' is not a time with its zone as KML writes it; write it like",
        ),
        (
            kml(placemark("o", polygon(ring(37, 34, 0.1)), span=("2026-12-08T10:00:00+0300", "2026-12-08T12:00:00Z"))),
            "or 2026-12-02T11:00:00+03:00",
        ),
        (
            kml(placemark("local", polygon(ring(37, 34, 0.1)), span=("2026-12-08T10:00:00Z", "2026-12-08T12:00"))),
            "Placemark 1 ('local') TimeSpan end: '2026-12-08T12:00' is not a time with its zone",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_file_is_refused_naming_the_placemark(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidInput) as e:
        read_kml(data, source="bad.kml")
    assert expected in e.value.message


def test_a_time_with_its_offset_is_that_instant() -> None:
    (mark,) = read_kml(
        kml(placemark("east", polygon(ring(37, 34, 0.1)), span=("2026-12-08T10:00:00+03:00", "2026-12-08T12:00:00Z"))),
        source="k.kml",
    )
    assert (mark.start, mark.end) == (datetime(2026, 12, 8, 7, tzinfo=UTC), datetime(2026, 12, 8, 12, tzinfo=UTC))


def test_a_kmz_is_read_like_its_kml() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as kmz:
        kmz.writestr("files/readme.txt", "not this")
        kmz.writestr("doc.kml", GOOD_ZONES)
    assert read_kml(buffer.getvalue(), source="z.kmz") == read_kml(GOOD_ZONES, source="z.kml")


def _state(svc: Service) -> tuple[int, list[str]]:
    return len(svc.entries_after(M, 0, limit=100_000)), [z["id"] for z in svc.zones(M, include_withdrawn=True)]


def _run(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_import_kml_declares_zones_through_the_service(db: str, tmp_path: Path) -> None:
    path = tmp_path / "zones.kml"
    path.write_bytes(GOOD_ZONES)
    run = _run("import", "kml", str(path), "--db", db, "--as", "IL", "--zones", "--forbid", "uav_patrol")
    assert run.exit_code == 0, run.output  # type: ignore[attr-defined]
    assert "zone IL-KML-3 declared" in run.output  # type: ignore[attr-defined]
    svc = Service.open(db, migrate=False)
    zones = {z["id"]: z for z in svc.zones(M)}
    two, circle, box = zones["IL-KML-1"], zones["IL-KML-2"], zones["IL-KML-3"]
    assert two["geometry"]["type"] == "MultiPolygon" and two["name"] == "two fields"
    assert shape(two["geometry"]).area == pytest.approx(2 * 0.05**2)
    assert (circle["radius_m"], circle["forbids"]) == (4000.0, ["deployment"])  # its ExtendedData first
    assert (box["floor_m"], box["ceiling_m"]) == (-500.0, 30_000.0)  # flat absolute polygon: no band said
    assert (box["valid_from"], box["valid_to"]) == ("2026-12-24T00:00:00Z", "2026-12-31T00:00:00Z")
    assert two["forbids"] == ["uav_patrol"] and two["kind"] == "restricted"
    # and out again as KMZ: the multipolygon as a MultiGeometry, read back the same (its ExtendedData first)
    out = tmp_path / "picture.kmz"
    run = _run("export", "kml", "--db", db, "--as", "TR", "--out", str(out))
    assert run.exit_code == 0, run.output  # type: ignore[attr-defined]
    marks = {m.data["id"]: m for m in read_kml(out.read_bytes(), source=str(out), folder="Zones")}
    back = marks["IL-KML-1"]
    assert back.geometry["type"] == "MultiPolygon"
    assert shape(back.geometry).symmetric_difference(shape(two["geometry"])).area < 1e-14
    assert (back.floor_m, back.ceiling_m, back.radius_m) == (-500.0, 30_000.0, None)
    assert (marks["IL-KML-2"].radius_m, marks["IL-KML-2"].geometry["coordinates"]) == (4000.0, list(HAMA))


def test_a_bad_placemark_stores_nothing_and_is_named(db: str, tmp_path: Path) -> None:
    svc = Service.open(db, migrate=False)
    before = _state(svc)
    path = tmp_path / "three.kml"
    bow = "37,34 37.1,34.1 37.1,34 37,34.1 37,34"  # a bow tie: its edges cross
    path.write_bytes(
        kml(
            placemark("ok", polygon(ring(37, 34, 0.1))),
            placemark("fine", polygon(ring(37.5, 34, 0.1))),
            placemark("bow", polygon(bow)),
        )
    )
    run = _run("import", "kml", str(path), "--db", db, "--as", "IL", "--zones", "--forbid", "uav_patrol")
    assert run.exit_code == 2
    assert "Placemark 3 ('bow')" in run.output  # type: ignore[attr-defined]
    assert _state(Service.open(db, migrate=False)) == before
    # a zone id the mechanism already has is found by the service's own check, before anything is stored
    path.write_bytes(
        kml(
            placemark("ok", polygon(ring(37, 34, 0.1))),
            placemark("taken", polygon(ring(37.5, 34, 0.1)), {"id": "IL-RL-PALMYRA"}),
        )
    )
    run = _run("import", "kml", str(path), "--db", db, "--as", "IL", "--zones", "--forbid", "uav_patrol")
    assert run.exit_code == 2 and "'IL-RL-PALMYRA' already exists" in run.output  # type: ignore[attr-defined]
    assert _state(Service.open(db, migrate=False)) == before
    run = _run("import", "kml", str(path), "--db", db, "--as", "IL", "--zones")  # no kind forbidden
    assert run.exit_code == 2 and "Placemark 1 ('ok') 'IL-KML-1' forbids" in run.output  # type: ignore[attr-defined]


def test_import_kml_notifies_one_activity_a_volume_per_placemark(db: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    t0, t1 = iso(now + timedelta(hours=2)), iso(now + timedelta(hours=4))
    path = tmp_path / "patrol.kml"
    path.write_bytes(
        kml(
            placemark(
                "west",
                polygon(ring(T4[0] - 0.2, T4[1], 0.1, 2000)),
                {"ceiling_m": "3500", "floor_m": "1500"},
                span=(t0, t1),
            ),
            placemark("east", f"<Point><coordinates>{T4[0] + 0.2},{T4[1]}</coordinates></Point>", {"radius_m": "5000"}),
        )
    )
    args = ["import", "kml", str(path), "--db", db, "--as", "TR", "--activity", "uav_patrol", "--title", "KML patrol"]
    missing = _run(*args)
    assert missing.exit_code == 2 and "Placemark 2 ('east')" in missing.output  # type: ignore[attr-defined]
    run = _run(*args, "--start", t0, "--end", t1, "--floor", "FL50", "--ceiling", "9000ft")
    assert run.exit_code == 0, run.output  # type: ignore[attr-defined]
    (a,) = Service.open(db, migrate=False).activities(M, party="TR")
    west, east = a.volumes
    assert (west.floor_m, west.ceiling_m, iso(west.start), iso(west.end)) == (1500, 3500, t0, t1)  # type: ignore[arg-type]
    assert (east.floor_m, east.ceiling_m, east.footprint.radius_m) == (1524.0, 2743.2, 5000)
    assert (a.title, a.kind.value) == ("KML patrol", "uav_patrol")
    # the officer who typed --floor and --ceiling is told where the file's own altitudes were used instead
    notes = [line for line in run.output.splitlines() if line.startswith("note:")]  # type: ignore[attr-defined]
    assert notes == [
        "note: Placemark 1 ('west'): its own floor 1500 m and ceiling 3500 m (from the file) used, not the "
        "--floor/--ceiling given"
    ]


def test_a_party_that_holds_its_own_key_signs_each_zone_it_imports(tmp_path: Path) -> None:
    from support.builders import T0, declared_db

    from deconflict.clock import FixedClock
    from deconflict.record import signing

    key = signing.KeyPair.from_seed(bytes([11]) * 32)
    db = declared_db(tmp_path / "own.db", FixedClock(T0), keys={"TR": key})
    path, key_file = tmp_path / "zones.kml", tmp_path / "tr.key"
    path.write_bytes(GOOD_ZONES)
    signing.write_key_file(key_file, key, party="TR")
    before = _state(Service.open(db, migrate=False))
    args = ["import", "kml", str(path), "--db", db, "--as", "TR", "--zones", "--forbid", "uav_patrol"]
    refused = _run(*args)  # the service holds no key of TR's: refused at the first write, nothing stored
    assert refused.exit_code == 2 and "TR signs its own entries" in refused.output  # type: ignore[attr-defined]
    assert _state(Service.open(db, migrate=False)) == before
    run = _run(*args, "--key", str(key_file))
    assert run.exit_code == 0, run.output  # type: ignore[attr-defined]
    entries = Service.open(db, migrate=False).entries_after(M, before[0], limit=100)
    declared = [e for e in entries if e["type"] == "zone.declared"]
    assert [e["payload"]["id"] for e in declared] == ["TR-KML-1", "TR-KML-2", "TR-KML-3"]
    for e in declared:
        assert e["key_id"] == key.key_id
        assert signing.verify(key.public_key, signing.entry_message(e["hash"]), e["signature"])
