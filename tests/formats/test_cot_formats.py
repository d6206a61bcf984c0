"""Cursor on Target out (formats/cot.py), held against two things we did not write:

- **the CoT 2.0 event schema**: MITRE's *Event-PUBLIC.xsd* (Schema for Cursor-On-Target Event data model,
  version 2.0, 13 June 2003, MITRE Case #11-3895). No PyPI package ships that file, so it is not vendored
  (tests/vendor/cot/ stays empty); :func:`schema_problems` checks what it requires of an event, written from
  it: the ``event`` attributes ``version`` (2.0), ``uid``, ``type`` (``\\w+(-\\w+)*``), ``how``
  (``\\w(-\\w+)*``), ``time``/``start``/``stale`` (xs:dateTime), one ``point`` with ``lat`` in -90..90,
  ``lon`` in -180..180, ``hae``/``ce``/``le`` decimals, then an optional ``detail``, nothing else.
- **a second parser**: takproto (PyPI, the TAK community's implementation of the TAK protocol) turns our
  XML into a TAK protobuf message (what a TAK server sends on to ATAK over protocol 1) and we rebuild
  CoT XML from that message alone; our reader reads it back to the same events (round trip: ours ->
  takproto -> ours, times to the millisecond, coordinates to 1e-7 degree).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import takproto
from lxml import etree

from deconflict.formats.cot import (
    UNKNOWN,
    CotError,
    CotEvent,
    activity_events,
    conflict_event,
    parse_cot,
    picture_events,
    to_xml,
    track_event,
    withdrawn,
    zone_events,
)

NOW = datetime(2025, 4, 9, 6, 0, 0, 250000, tzinfo=UTC)
M = "tr-il-syria"
DATETIME = re.compile(r"^-?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")

ZONE_CIRCLE = {
    "id": "IL-RL-PALMYRA", "owner": "IL", "kind": "red_line", "name": "Palmyra area",
    "geometry": {"type": "Point", "coordinates": [38.3169, 34.5574]}, "radius_m": 40000.0,
    "forbids": ["deployment"], "valid_from": "2025-04-01T00:00:00Z", "valid_to": None,
    "floor_m": -500.0, "ceiling_m": 30000.0, "withdrawn_at": None,
}  # fmt: skip
ZONE_POLYGON = {
    **ZONE_CIRCLE, "id": "TR-PA-1", "owner": "TR", "kind": "protected_area", "name": "Field hospital",
    "geometry": {"type": "Polygon", "coordinates": [[[37.0, 34.0], [37.2, 34.0], [37.2, 34.15], [37.0, 34.0]]]},
    "radius_m": None, "valid_to": "2025-04-12T00:00:00Z",
}  # fmt: skip
ACTIVITY = {
    "id": "TR-0001", "party": "TR", "kind": "uav_patrol", "state": "notified", "version": 2,
    "volumes": [{"id": "v1", "geometry": {"type": "Point", "coordinates": [37.63, 34.52]}, "radius_m": 15000.0,
                 "floor_m": 1000.0, "ceiling_m": 4000.0, "start": "2025-04-09T08:00:00Z",
                 "end": "2025-04-09T10:00:00Z"}],
}  # fmt: skip
PARTIAL = {
    "id": "TR-0002", "party": "TR", "kind": "deployment", "state": "notified", "version": 1,
    "notified_at": "2025-04-09T06:00:00Z", "partial": True, "volumes": [],
    "overlap": [{"geometry": {"type": "MultiPolygon", "coordinates": [
        [[[37.60, 34.50], [37.70, 34.50], [37.70, 34.56], [37.60, 34.50]]],
        [[[37.80, 34.60], [37.85, 34.60], [37.85, 34.65], [37.80, 34.60]]]]},
        "area_km2": 12.0, "floor_m": 1000.0, "ceiling_m": 3000.0,
        "start": "2025-04-09T08:30:00Z", "end": "2025-04-09T09:30:00Z"}],
}  # fmt: skip
TRACK = {
    "track": "IL/738A5B", "party": "IL", "id": "738A5B", "reported_at": "2025-04-09T05:59:58Z",
    "lat": 34.526, "lon": 37.9496, "alt_m": 4579.6, "gs_mps": 159.48, "trk_deg": 270.0, "vs_mps": -0.33,
}  # fmt: skip
CONFLICT = {
    "id": "C1", "kind": "separation", "activity": "IL-0001", "other_activity": "TR-0001", "status": "open",
    "awaiting": ["TR"], "acknowledged": {}, "deadline": "2025-04-09T06:10:00Z", "distance_m": 4400.0,
    "end": "2025-04-09T10:00:00Z",
}  # fmt: skip


def all_events() -> list[CotEvent]:
    picture = {
        "zones": [ZONE_CIRCLE, ZONE_POLYGON],
        "activities": [ACTIVITY, PARTIAL, {**ACTIVITY, "id": "IL-0001", "party": "IL"}],
        "conflicts": [CONFLICT],
        "tracks": [TRACK],
        "track_stale_s": 60,
    }
    return picture_events(picture, mechanism=M, reader_party="IL", now=NOW)


def schema_problems(xml: bytes) -> list[str]:
    """What the CoT 2.0 event schema (MITRE Event-PUBLIC.xsd) requires and this event lacks."""
    root = etree.fromstring(xml)
    problems = []
    if root.tag != "event":
        return [f"root is <{root.tag}>"]
    if root.get("version") != "2.0":
        problems.append("event@version is not 2.0")
    for name, pattern in (("type", r"^\w+(-\w+)*(;[^;]*)?$"), ("how", r"^\w(-\w+)*$"), ("uid", r"^.+$")):
        if not re.match(pattern, root.get(name) or ""):
            problems.append(f"event@{name} {root.get(name)!r}")
    for name in ("time", "start", "stale"):
        if not DATETIME.match(root.get(name) or ""):
            problems.append(f"event@{name} {root.get(name)!r} is not an xs:dateTime")
    children = [c.tag for c in root]
    if children not in (["point"], ["point", "detail"]):
        problems.append(f"event children {children}: one point, then an optional detail")
    point = root.find("point")
    for name, low, high in (("lat", -90, 90), ("lon", -180, 180), ("hae", -1e9, 1e9), ("ce", 0, 1e9), ("le", 0, 1e9)):
        value = point.get(name) if point is not None else None
        try:
            ok = value is not None and low <= float(value) <= high
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"point@{name} {value!r}")
    return problems


def through_takproto(xml: bytes) -> bytes:
    """Our XML to a TAK protocol message by takproto, and CoT XML rebuilt from that message alone."""
    wire = takproto.xml2proto(xml, takproto.TAKProtoVer.STREAM)
    assert bytes(wire[:1]) == b"\xbf"  # a TAK protocol stream message, not XML
    ev = takproto.parse_proto(wire).cotEvent

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    root = etree.Element("event", version="2.0", uid=ev.uid, type=ev.type, how=ev.how)
    root.set("time", when(ev.sendTime))
    root.set("start", when(ev.startTime))
    root.set("stale", when(ev.staleTime))
    etree.SubElement(
        root, "point", lat=repr(ev.lat), lon=repr(ev.lon), hae=repr(ev.hae), ce=repr(ev.ce), le=repr(ev.le)
    )
    detail = etree.SubElement(root, "detail")
    if ev.detail.contact.callsign:
        etree.SubElement(detail, "contact", callsign=ev.detail.contact.callsign)
    if ev.detail.HasField("track"):
        etree.SubElement(detail, "track", course=repr(ev.detail.track.course), speed=repr(ev.detail.track.speed))
    for el in etree.fromstring(f"<x>{ev.detail.xmlDetail}</x>"):
        detail.append(el)
    return bytes(etree.tostring(root))


def _same(a: CotEvent, b: CotEvent) -> None:
    ms = timedelta(milliseconds=1)
    for name in ("time", "start", "stale"):
        assert abs(getattr(a, name) - getattr(b, name)) < ms, name
    assert (a.lat, a.lon, a.hae, a.radius_m, a.course, a.speed) == pytest.approx(
        (b.lat, b.lon, b.hae, b.radius_m, b.course, b.speed), abs=1e-7
    )
    assert [x for v in a.vertices for x in v] == pytest.approx([x for v in b.vertices for x in v], abs=1e-7)
    rest = ("uid", "type", "how", "callsign", "remarks", "links", "stroke", "fill")
    assert [getattr(a, k) for k in rest] == [getattr(b, k) for k in rest]


def test_every_kind_of_event_meets_the_event_schema_and_survives_takproto_both_ways() -> None:
    events = all_events()
    kinds = sorted({e.type for e in events})
    assert kinds == ["a-f-A", "b-m-p-s-p-i", "u-d-c-c", "u-d-f"]
    for e in events:
        xml = to_xml(e)
        assert schema_problems(xml) == [], (e.uid, schema_problems(xml))
        ours = parse_cot(xml)
        _same(ours, e)
        back = parse_cot(through_takproto(xml))
        _same(back, e)
        assert schema_problems(through_takproto(xml)) == []


def test_what_each_event_says() -> None:
    by_uid = {e.uid: e for e in all_events()}
    zone = by_uid["deconflict.tr-il-syria.zone.IL-RL-PALMYRA.1"]
    assert (zone.type, zone.radius_m, zone.lat, zone.lon) == ("u-d-c-c", 40000.0, 34.5574, 38.3169)
    assert zone.stale == NOW + timedelta(days=1) and "red line of IL; forbids deployment" in zone.remarks
    polygon = by_uid["deconflict.tr-il-syria.zone.TR-PA-1.1"]
    assert polygon.type == "u-d-f" and polygon.vertices[0] == polygon.vertices[-1] == (34.0, 37.0)
    assert polygon.stale == datetime(2025, 4, 12, tzinfo=UTC)  # valid_to
    assert zone.remarks.endswith("; in force") and polygon.remarks.endswith("; in force until 2025-04-12T00:00:00Z")
    patrol = by_uid["deconflict.tr-il-syria.activity.TR-0001.v1.1"]
    assert patrol.stale == datetime(2025, 4, 9, 10, tzinfo=UTC)  # the end of its window
    assert patrol.remarks == "TR-0001 uav patrol (TR) v2: 2025-04-09T08:00:00Z–2025-04-09T10:00:00Z, 1000–4000 m"
    marker = by_uid["deconflict.tr-il-syria.conflict.C1"]
    assert marker.links == (
        "deconflict.tr-il-syria.activity.IL-0001.v1.1",
        "deconflict.tr-il-syria.activity.TR-0001.v1.1",
    )
    assert "awaiting TR, acknowledge by 2025-04-09T06:10:00Z" in marker.remarks and "4.4 km apart" in marker.remarks
    track = by_uid["deconflict.tr-il-syria.track.IL.738A5B"]
    assert (track.type, track.course, track.speed, track.hae) == ("a-f-A", 270.0, 159.48, 4579.6)
    assert track.stale == datetime(2025, 4, 9, 6, 0, 58, tzinfo=UTC)
    other = track_event({**TRACK, "party": "TR"}, mechanism=M, reader_party="IL", stale_s=60, now=NOW)
    assert other.type == "a-n-A"


def test_a_notice_seen_in_part_goes_out_as_its_overlap_parts_only() -> None:
    shapes = activity_events(PARTIAL, mechanism=M, reader_party="IL", now=NOW)
    assert [e.type for e in shapes] == ["u-d-f", "u-d-f"]
    assert all(e.radius_m is None and "only the part in conflict with yours" in e.remarks for e in shapes)
    assert shapes[0].vertices == ((34.5, 37.6), (34.5, 37.7), (34.56, 37.7), (34.5, 37.6))
    assert all(e.stale == datetime(2025, 4, 9, 9, 30, tzinfo=UTC) for e in shapes)  # the part's own window
    text = b"".join(to_xml(e) for e in shapes)
    assert b"v1" not in text and b"15000" not in text  # no volume id, nothing of the notice beyond the parts


def test_closed_ended_and_withdrawn_things() -> None:
    assert conflict_event({**CONFLICT, "status": "resolved"}, mechanism=M, now=NOW, shapes={}) is None
    assert activity_events({**ACTIVITY, "state": "cancelled"}, mechanism=M, reader_party="IL", now=NOW) == []
    late = NOW.replace(hour=11)
    assert activity_events(ACTIVITY, mechanism=M, reader_party="IL", now=late) == []  # its window is over
    assert zone_events({**ZONE_CIRCLE, "withdrawn_at": "2025-04-09T05:00:00Z"}, mechanism=M, now=NOW) == []
    gone = withdrawn(all_events()[0], late)
    assert parse_cot(to_xml(gone)).stale == late and schema_problems(to_xml(gone)) == []


GOOD = to_xml(CotEvent(uid="x", type="a-n-A", time=NOW, start=NOW, stale=NOW, lat=1.0, lon=2.0)).decode()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param(GOOD.replace("</event>", ""), "CoT line 2: not XML", id="not-xml"),
        pytest.param(
            GOOD.replace("<event", "<evnt").replace("</event>", "</evnt>"), "<evnt>: a CoT message", id="root"
        ),
        pytest.param(re.sub(r"<point[^>]*/>", "", GOOD), "event: missing element <point>", id="no-point"),
        pytest.param(GOOD.replace('lat="1"', 'lat="95"'), "event/point lat: '95' is out of range", id="lat"),
        pytest.param(GOOD.replace(' uid="x"', ""), "event: missing attribute 'uid'", id="uid"),
        pytest.param(GOOD.replace('stale="', 'stale="9'), "event stale: '92025-04-09", id="stale"),
        pytest.param(
            GOOD.replace("<detail />", '<detail><link point="34.5,north" /></detail>'),
            "detail/link lon: 'north' is not a number",
            id="link",
        ),
    ],
)
def test_bad_cot_is_named_by_element_and_attribute(text: str, words: str) -> None:
    with pytest.raises(CotError) as e:
        parse_cot(text)
    assert words in e.value.message


def test_unknown_heights_are_cots_own_value() -> None:
    ev = parse_cot(GOOD)
    assert (ev.hae, ev.ce, ev.le) == (UNKNOWN, UNKNOWN, UNKNOWN)


def test_member_text_cannot_break_the_xml() -> None:
    (zone,) = zone_events({**ZONE_CIRCLE, "name": "Palmyra\x1b[31m <red> & \x00"}, mechanism=M, now=NOW)
    back = parse_cot(to_xml(zone))
    assert back.remarks.startswith("Palmyra[31m <red> & : red line of IL")


def test_a_tactical_conflict_is_marked_between_its_tracks() -> None:
    states = [{"track": "TR/4BB1C6", "lat": 34.52, "lon": 37.40}, {"track": "IL/738A5B", "lat": 34.53, "lon": 37.80}]
    tactical = {"id": "C9", "kind": "tracks", "activity": "TR/4BB1C6", "other_activity": "IL/738A5B"}
    tactical |= {"status": "open", "awaiting": ["IL", "TR"], "acknowledged": {"TR": "2025-04-09T06:00:10Z"}}
    marker = conflict_event({**tactical, "track_states": states}, mechanism=M, now=NOW, shapes={})
    assert marker is not None and (marker.lat, marker.lon) == (34.525, 37.6)
    assert marker.remarks == "C9 tracks: TR/4BB1C6 and IL/738A5B; awaiting IL"  # TR has acknowledged
    assert marker.stale == NOW + timedelta(minutes=10)  # renewed while it stays open
    assert conflict_event(tactical, mechanism=M, now=NOW, shapes={}) is None  # nowhere the reader may see


def test_a_zone_still_to_come_says_from_when() -> None:
    """A danger area valid tomorrow 06-12Z was drawn on ATAK as if live, its remarks silent on when (an interop
    walk-through): the remarks say from when it holds, and to when."""
    tomorrow = {**ZONE_POLYGON, "valid_from": "2025-04-10T06:00:00Z", "valid_to": "2025-04-10T12:00:00Z"}
    (event,) = zone_events(tomorrow, mechanism="tr-il-syria", now=NOW)
    assert event.remarks.endswith("; in force from 2025-04-10T06:00:00Z to 2025-04-10T12:00:00Z")
    (open_ended,) = zone_events({**tomorrow, "valid_to": None}, mechanism="tr-il-syria", now=NOW)
    assert open_ended.remarks.endswith("; in force from 2025-04-10T06:00:00Z")
