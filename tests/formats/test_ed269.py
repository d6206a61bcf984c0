"""ED-269 / ED-318 zones in (formats/ed269, ``deconflict import ed269``): a published UAS geographical zone
file, built here with InterUSS's own models (``uas_standards``), becomes zones of a mechanism with the
documented mapping (restriction to forbidden kinds, reasons to the zone kind, feet and AGL to metres above
sea level, periods and schedules to windows); a bad file names the feature (index, identifier) and the
field, and stores nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from implicitdict import StringBasedDateTime
from support.builders import HAMA, PALMYRA, T0, T4, M, syria
from typer.testing import CliRunner
from uas_standards import eurocae_ed269 as ed269
from uas_standards import eurocae_ed318 as ed318

from deconflict.cli import app
from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.formats.ed269 import Ground, zones_from_file
from deconflict.service import Service
from deconflict.units import FT_M

PARTIES = {"TR", "IL"}
H = timedelta(hours=1)


def _volume(projection: ed269.CircleOrPolygonType, uom: str, lower: Any, lref: str, upper: Any, uref: str) -> Any:
    return ed269.UASZoneAirspaceVolume(
        uomDimensions=ed269.UomDimensions(uom),
        lowerLimit=lower,
        lowerVerticalReference=ed269.VerticalReferenceType(lref),
        upperLimit=upper,
        upperVerticalReference=ed269.VerticalReferenceType(uref),
        horizontalProjection=projection,
    )


def circle(centre: tuple[float, float], radius: float) -> Any:
    """ED-269's circle: centre as InterUSS's geo-awareness reads it, lon then lat."""
    return ed269.CircleOrPolygonType(type=ed269.HorizontalProjectionType.Circle, center=list(centre), radius=radius)


def square(lon: float, lat: float, size: float) -> Any:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return ed269.CircleOrPolygonType(type=ed269.HorizontalProjectionType.Polygon, coordinates=[ring])


def feature(
    ident: str, restriction: str, reasons: list[str], geometry: list[Any], applicability: list[Any], **kw: Any
) -> Any:
    return ed269.UASZoneVersion(
        identifier=ident,
        country="SYR",
        name=kw.pop("name", f"zone {ident}"),
        type="COMMON",
        restriction=ed269.Restriction(restriction),
        reason=[ed269.Reason(r) for r in reasons],
        zoneAuthority=[ed269.UASZoneAuthority(name="GACA", purpose=ed269.Purpose.AUTHORIZATION, intervalBefore="P1D")],
        applicability=applicability,
        geometry=geometry,
        **kw,
    )


def period(start: datetime | None = None, end: datetime | None = None, schedule: list[Any] | None = None) -> Any:
    if start is None:
        return ed269.ApplicableTimePeriod(permanent=ed269.YESNO.YES)
    extra = {"schedule": schedule} if schedule else {}
    end_at = {"endDateTime": StringBasedDateTime(iso(end))} if end else {}
    return ed269.ApplicableTimePeriod(
        permanent=ed269.YESNO.NO, startDateTime=StringBasedDateTime(iso(start)), **end_at, **extra
    )


def sample(now: datetime) -> dict[str, Any]:
    """A realistic file: a permanent airfield zone in feet AGL, a hospital open on weekday working hours, a
    zone with no restriction, a nature reserve of two volumes for a fortnight, and one already expired."""
    weekdays = [ed269.WeekDateType(d) for d in ("MON", "TUE", "WED", "THU", "FRI")]
    hours = ed269.DailyPeriod(
        day=weekdays, startTime=ed269.ED269TimeType("08:00:00.00Z"), endTime=ed269.ED269TimeType("17:00:00.00Z")
    )
    doc = ed269.ED269Schema(
        title="Syria UAS geographical zones",
        description="test sample",
        features=[
            feature(
                "SYT4",
                "PROHIBITED",
                ["AIR_TRAFFIC"],
                [_volume(circle(T4, 5000), "FT", 0, "AGL", 400, "AGL")],
                [period()],
                name="T4 air base",
            ),
            feature(
                "SYH1",
                "REQ_AUTHORISATION",
                ["POPULATION"],
                [_volume(square(HAMA[0] + 0.05, HAMA[1], 0.02), "M", 0, "AMSL", 600, "AMSL")],
                [period(now - 24 * H, now + 30 * 24 * H, [hours])],
                name="Hama hospital",
            ),
            feature(
                "SYF1",
                "NO_RESTRICTION",
                ["OTHER"],
                [_volume(circle(HAMA, 1000), "M", 0, "AGL", 120, "AGL")],
                [period()],
            ),
            feature(
                "SYN1",
                "CONDITIONAL",
                ["NATURE"],
                [
                    _volume(circle(PALMYRA, 3000), "M", 200, "AMSL", 1000, "AMSL"),
                    _volume(square(PALMYRA[0] + 0.1, PALMYRA[1], 0.05), "FT", None, "AMSL", 5000, "AMSL"),
                ],
                [period(now + 24 * H, now + 15 * 24 * H)],
                restrictionConditions="below 120 m only with a permit",
            ),
            feature(
                "SYX1",
                "PROHIBITED",
                ["EMERGENCY"],
                [_volume(circle(T4, 2000), "M", 0, "AMSL", 3000, "AMSL")],
                [period(now - 72 * H, now - 48 * H)],
            ),
        ],
    )
    return json.loads(json.dumps(doc))


def test_the_mapping_of_a_realistic_file() -> None:
    now = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)  # a Wednesday
    docs, notes = zones_from_file(
        sample(now),
        source="s.json",
        mechanism=M,
        party="TR",
        parties=PARTIES,
        now=now,
        ground=Ground(min_m=200, max_m=1500),
    )
    by = {d["id"]: d for d in docs}
    t4 = by["TR-SYR-SYT4"]
    assert (t4["kind"], t4["forbids"], t4["applies_to_owner"]) == ("restricted", ["uav_patrol"], True)
    assert (t4["floor_m"], t4["ceiling_m"]) == (
        -500.0,
        pytest.approx(1500 + 400 * FT_M),
    )  # surface; AGL on the highest ground
    assert (t4["geometry"]["coordinates"], t4["radius_m"]) == (list(T4), 5000 * FT_M)  # the volume's uom: feet
    assert (t4["valid_from"], t4["valid_to"]) == (iso(now), None)  # permanent: from the import on
    assert t4["name"] == "T4 air base [PROHIBITED]"
    hospital = sorted((d for d in docs if d["id"].startswith("TR-SYR-SYH1-t")), key=lambda d: d["valid_from"])
    # weekdays 08:00-17:00Z from now (Wed 9 April 06:00) for the 7-day horizon: Wed, Thu, Fri, Mon, Tue
    assert [(d["valid_from"][5:16], d["valid_to"][11:16]) for d in hospital] == [
        ("04-09T08:00", "17:00"),
        ("04-10T08:00", "17:00"),
        ("04-11T08:00", "17:00"),
        ("04-14T08:00", "17:00"),
        ("04-15T08:00", "17:00"),
    ]
    assert {d["kind"] for d in hospital} == {"protected"} and hospital[0]["forbids"] == ["uav_patrol"]
    nature = [by["TR-SYR-SYN1-v1"], by["TR-SYR-SYN1-v2"]]
    assert [(d["floor_m"], d["ceiling_m"]) for d in nature] == [(200.0, 1000.0), (-500.0, pytest.approx(5000 * FT_M))]
    assert nature[0]["name"] == "zone SYN1 [CONDITIONAL: below 120 m only with a permit]"
    assert nature[1]["geometry"]["type"] == "Polygon" and nature[0]["valid_to"] == iso(now + 15 * 24 * H)
    assert not any("SYF1" in d["id"] or "SYX1" in d["id"] for d in docs)
    assert notes == [
        "feature 2 (SYF1): NO_RESTRICTION: forbids nothing, not imported",
        "feature 4 (SYX1): every period of it is past, or no occurrence falls within the horizon",
    ]
    wider, _ = zones_from_file(
        sample(now),
        source="s",
        mechanism=M,
        party="TR",
        parties=PARTIES,
        now=now,
        ground=Ground(max_m=1500),
        forbids=["uav_patrol", "air_sortie"],
    )
    assert {tuple(d["forbids"]) for d in wider} == {("air_sortie", "uav_patrol")}


def test_an_ed318_file_maps_the_same_way() -> None:
    layer = ed318.VerticalLayer(upper=3000, upperReference="AMSL", lower=0, lowerReference="AGL", uom="ft")
    zone = ed318.UASZone(
        identifier="SY318A",
        country="SYR",
        name=[ed318.TextShortType(text="Tiyas", lang="en-GB")],
        type=ed318.CodeZoneType.REQ_AUTHORIZATION,
        variant=ed318.CodeZoneVariantType.COMMON,
        reason=[ed318.CodeZoneReasonType.SENSITIVE],
        zoneAuthority=[ed318.Authority(purpose=ed318.CodeAuthorityRole.AUTHORIZATION)],
        limitedApplicability=[
            ed318.TimePeriod(
                startDateTime=StringBasedDateTime(iso(T0 + H)), endDateTime=StringBasedDateTime(iso(T0 + 5 * H))
            )
        ],
    )
    point = {"type": "Point", "coordinates": list(T4), "extent": {"subType": "Circle", "radius": 2000}, "layer": layer}
    doc = ed318.ED318Schema(
        type="FeatureCollection",
        metadata=ed318.DatasetMetadata(),
        features=[ed318.Feature(type="Feature", properties=zone, geometry=point)],
    )
    (z,), notes = zones_from_file(
        json.loads(json.dumps(doc)), source="e.json", mechanism=M, party="IL", parties=PARTIES, now=T0
    )
    assert notes == []
    assert (z["id"], z["kind"], z["forbids"], z["name"]) == (
        "IL-SYR-SY318A",
        "protected",
        ["uav_patrol"],
        "Tiyas [REQ_AUTHORIZATION]",
    )
    assert (z["floor_m"], z["ceiling_m"], z["radius_m"]) == (
        -500.0,
        pytest.approx(3000 * FT_M),
        pytest.approx(2000 * FT_M),
    )
    assert (z["valid_from"], z["valid_to"]) == (iso(T0 + H), iso(T0 + 5 * H))
    # the same file with latitude first lands outside Syria: said, not guessed at
    doc["features"][0]["geometry"]["coordinates"] = [T4[1], T4[0]]
    _, notes = zones_from_file(
        json.loads(json.dumps(doc)),
        source="e.json",
        mechanism=M,
        party="IL",
        parties=PARTIES,
        now=T0,
        area=syria().area,
    )
    assert notes == ["feature 0 (SY318A): outside the mechanism's area (are its positions longitude first?)"]


def _bad(mutate: Any) -> dict[str, Any]:
    doc = sample(datetime(2025, 4, 9, 6, tzinfo=UTC))
    mutate(doc["features"])
    return doc


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([], "expected an ED-269 or ED-318 document"),
        (
            _bad(lambda f: f[1].__setitem__("restriction", "MAYBE")),
            "feature 1 (SYH1) restriction: 'MAYBE' is not a valid Restriction",
        ),
        (
            _bad(lambda f: f[3]["geometry"][1].__setitem__("uomDimensions", "KM")),
            "feature 3 (SYN1) geometry[1].uomDimensions: 'KM' is not a valid UomDimensions",
        ),
        (
            _bad(lambda f: f[1]["applicability"][0].pop("startDateTime")),
            "feature 1 (SYH1) applicability[0].startDateTime: a temporary period (permanent NO) needs its start",
        ),
        (
            _bad(lambda f: f[0]["geometry"][0]["horizontalProjection"].pop("radius")),
            "feature 0 (SYT4) geometry[0].horizontalProjection: a Circle needs center [lon, lat] and radius",
        ),
        (
            _bad(lambda f: f[1]["geometry"][0]["horizontalProjection"]["coordinates"][0].pop()),
            "feature 1 (SYH1) 'TR-SYR-SYH1-t1' geometry",
        ),
        (_bad(lambda f: f[0].pop("geometry")), 'Required field "geometry" not specified'),
    ],
)
def test_a_bad_file_names_the_feature_and_field(doc: Any, expected: str) -> None:
    with pytest.raises(InvalidInput) as e:
        zones_from_file(
            doc, source="bad.json", mechanism=M, party="TR", parties=PARTIES, now=T0, ground=Ground(max_m=1500)
        )
    assert expected in e.value.message
    if expected.startswith("feature"):
        assert e.value.message.startswith(expected.split(" ")[0] + " " + expected.split(" ")[1])


def test_import_ed269_declares_the_zones_and_a_bad_file_stores_nothing(db: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    path = tmp_path / "zones.json"
    path.write_text(json.dumps(sample(now)))
    svc = Service.open(db, migrate=False)
    before = len(svc.entries_after(M, 0, limit=100_000)), [z["id"] for z in svc.zones(M)]
    run = CliRunner().invoke(app, ["import", "ed269", str(path), "--db", db, "--as", "TR"])
    assert run.exit_code == 2
    assert "feature 0 (SYT4) geometry[0].upperLimit: 400 FT AGL needs the ground's height" in run.output
    bad = sample(now)
    bad["features"][3]["geometry"][0]["horizontalProjection"]["radius"] = 900_000  # over the radius cap
    path.write_text(json.dumps(bad))
    run = CliRunner().invoke(app, ["import", "ed269", str(path), "--db", db, "--as", "TR", "--ground-max-m", "900"])
    assert run.exit_code == 2 and "feature 3 (SYN1) radius_m: must be at most 500 km" in run.output, run.output
    after = Service.open(db, migrate=False)
    assert (len(after.entries_after(M, 0, limit=100_000)), [z["id"] for z in after.zones(M)]) == before
    path.write_text(json.dumps(sample(now)))
    dry = CliRunner().invoke(
        app, ["import", "ed269", str(path), "--db", db, "--as", "TR", "--ground-max-m", "900", "--dry-run"]
    )
    assert dry.exit_code == 0 and "zone TR-SYR-SYT4 would be declared: restricted, forbids uav_patrol" in dry.output
    after = Service.open(db, migrate=False)
    assert (len(after.entries_after(M, 0, limit=100_000)), [z["id"] for z in after.zones(M)]) == before
    run = CliRunner().invoke(app, ["import", "ed269", str(path), "--db", db, "--as", "TR", "--ground-max-m", "900"])
    assert run.exit_code == 0, run.output
    assert "left out: feature 2 (SYF1): NO_RESTRICTION" in run.output
    zones = {z["id"]: z for z in Service.open(db, migrate=False).zones(M)}
    assert zones["TR-SYR-SYT4"]["owner"] == "TR" and zones["TR-SYR-SYT4"]["ceiling_m"] == pytest.approx(
        900 + 400 * FT_M
    )
    assert {"TR-SYR-SYN1-v1", "TR-SYR-SYN1-v2"} <= set(zones)
    again = CliRunner().invoke(app, ["import", "ed269", str(path), "--db", db, "--as", "TR", "--ground-max-m", "900"])
    assert again.exit_code == 2 and "already exists" in again.output  # a second import adds nothing


def _ed318_square(identifier: str, period: Any) -> dict[str, Any]:
    """An ED-318 file of one prohibited square near Hama, 100-500 m AMSL, applicable in ``period``, as JSON."""
    layer = ed318.VerticalLayer(upper=500, upperReference="AMSL", lower=100, lowerReference="AMSL", uom="m")
    square_ = {"type": "Polygon", "coordinates": [[[37.0, 34.0], [37.1, 34.0], [37.1, 34.1], [37.0, 34.0]]]}
    zone = ed318.UASZone(
        identifier=identifier,
        country="SYR",
        type=ed318.CodeZoneType.PROHIBITED,
        variant=ed318.CodeZoneVariantType.COMMON,
        zoneAuthority=[ed318.Authority(purpose=ed318.CodeAuthorityRole.INFORMATION)],
        limitedApplicability=[period],
    )
    doc = ed318.ED318Schema(
        type="FeatureCollection",
        metadata=ed318.DatasetMetadata(),
        features=[ed318.Feature(type="Feature", properties=zone, geometry={**square_, "layer": layer})],
    )
    return dict(json.loads(json.dumps(doc)))


def test_an_ed318_schedule_in_hours_and_minutes_and_a_daylight_event() -> None:
    """ED-318 writes times of day as hh:mm; a period bounded by sunrise or sunset (no solar model here) is
    taken as the whole day, the conservative reading. T0 is Wednesday 9 April 2025, 06:00Z."""
    mornings = ed318.DailyPeriod(day=[ed318.CodeWeekDayType.THU], startTime="08:00", endTime="12:30")
    daylight = ed318.DailyPeriod(day=[ed318.CodeWeekDayType.SAT], startEvent="SR", endEvent="SS")
    doc = _ed318_square("SY318B", ed318.TimePeriod(schedule=[mornings, daylight]))
    docs, _ = zones_from_file(doc, source="e", mechanism=M, party="TR", parties=PARTIES, now=T0)
    assert [(d["id"], d["valid_from"], d["valid_to"]) for d in docs] == [
        ("TR-SYR-SY318B-t1", "2025-04-10T08:00:00Z", "2025-04-10T12:30:00Z"),
        ("TR-SYR-SY318B-t2", "2025-04-12T00:00:00Z", "2025-04-13T00:00:00Z"),
    ]
    assert {(d["floor_m"], d["ceiling_m"], d["kind"]) for d in docs} == {(100.0, 500.0, "restricted")}


def _ed318_schedule(start: str, end: str, day: str = "ANY", until: str = "2025-04-12T00:00:00Z") -> dict[str, Any]:
    when = ed318.DailyPeriod(day=[ed318.CodeWeekDayType(day)], startTime=start, endTime=end)
    period = ed318.TimePeriod(startDateTime="2025-04-10T00:00:00Z", endDateTime=until, schedule=[when])
    return _ed318_square("SY318C", period)


def test_an_ed318_time_of_day_with_an_offset_is_that_time_there() -> None:
    """'08:00+03:00' was stored as 08:00Z, three hours late (an interop walk-through): it is 05:00Z, and a day of
    the week is the day there (Thursday 01:00+03:00 is Wednesday 22:00Z)."""
    docs, _ = zones_from_file(
        _ed318_schedule("08:00+03:00", "10:00+03:00"), source="e", mechanism=M, party="TR", parties=PARTIES, now=T0
    )
    assert [(d["valid_from"], d["valid_to"]) for d in docs] == [
        ("2025-04-10T05:00:00Z", "2025-04-10T07:00:00Z"),
        ("2025-04-11T05:00:00Z", "2025-04-11T07:00:00Z"),
    ]
    docs, _ = zones_from_file(
        _ed318_schedule("01:00+03:00", "02:30+03:00", day="FRI"),
        source="e",
        mechanism=M,
        party="TR",
        parties=PARTIES,
        now=T0,
    )
    assert [(d["valid_from"], d["valid_to"]) for d in docs] == [("2025-04-10T22:00:00Z", "2025-04-10T23:30:00Z")]
    # the period's last night there: 00:00-06:00+03:00 on 12 April starts 11 April 21:00Z, before the period ends
    # at 23:59:59Z (a review: left out, the loop went by UTC days)
    late = _ed318_schedule("00:00+03:00", "06:00+03:00", until="2025-04-11T23:59:59Z")
    docs, _ = zones_from_file(late, source="e", mechanism=M, party="TR", parties=PARTIES, now=T0)
    assert [(d["valid_from"], d["valid_to"]) for d in docs] == [
        ("2025-04-10T00:00:00Z", "2025-04-10T03:00:00Z"),
        ("2025-04-10T21:00:00Z", "2025-04-11T03:00:00Z"),
        ("2025-04-11T21:00:00Z", "2025-04-11T23:59:59Z"),
    ]
    with pytest.raises(InvalidInput, match="the offset is not one of a time zone"):
        zones_from_file(
            _ed318_schedule("08:00+25:00", "10:00Z"), source="e", mechanism=M, party="TR", parties=PARTIES, now=T0
        )


def test_a_time_without_its_zone_is_refused_not_taken_for_utc() -> None:
    """The models' parser reads '2025-04-09T06:00:00' as UTC without a word; a duty officer's file that meant
    local time would be three hours off. Refused, naming the field; and the parser's format tokens
    (HH:mm:ss.SZ) are not what the officer reads."""
    doc = _bad(lambda f: f[1]["applicability"][0].__setitem__("startDateTime", "2025-04-09T06:00:00"))
    with pytest.raises(InvalidInput) as e:
        zones_from_file(doc, source="b", mechanism=M, party="TR", parties=PARTIES, now=T0, ground=Ground(max_m=1500))
    assert e.value.message == (
        "feature 1 (SYH1) applicability[0].startDateTime: 2025-04-09T06:00:00 is not a time with its zone "
        "(e.g. 2026-12-02T08:00:00Z)"
    )
    doc = _bad(lambda f: f[1]["applicability"][0].__setitem__("startDateTime", "2025-04-09"))  # '-09' is no zone
    with pytest.raises(InvalidInput, match="2025-04-09 is not a time with its zone"):
        zones_from_file(doc, source="b", mechanism=M, party="TR", parties=PARTIES, now=T0, ground=Ground(max_m=1500))
    doc = _bad(
        lambda f: f[1]["applicability"][0].__setitem__(
            "schedule", [{"day": ["ANY"], "startTime": "08:00:00.00+03:00", "endTime": "10:00:00.00Z"}]
        )
    )
    with pytest.raises(InvalidInput) as e:
        zones_from_file(doc, source="b", mechanism=M, party="TR", parties=PARTIES, now=T0, ground=Ground(max_m=1500))
    assert "'08:00:00.00+03:00' is not a time as the format writes it (08:00:00.00Z, or 08:00Z" in e.value.message
    assert "HH:mm" not in e.value.message


def test_a_file_saved_with_a_byte_order_mark_is_read(db: str, tmp_path: Path) -> None:
    """Some editors save UTF-8 with a byte order mark: it was "not JSON (Unexpected UTF-8 BOM ...)"."""
    path = tmp_path / "zones.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(sample(datetime.now(UTC))).encode())
    run = CliRunner().invoke(app, ["import", "ed269", str(path), "--db", db, "--as", "TR", "--ground-max-m", "900"])
    assert run.exit_code == 0, run.output
    assert "zone TR-SYR-SYT4" in run.output
