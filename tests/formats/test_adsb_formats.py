"""ADS-B in (formats/adsb.py): BaseStation lines merged by ICAO address into position reports, readsb and
dump1090 ``aircraft.json`` in both spellings, and every bad line or element named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deconflict.formats.adsb import AdsbLineError, AdsbPicture, parse_aircraft_json, parse_sbs_line

RECORDING = Path(__file__).parents[1] / "data" / "sbs_converging.txt"
T = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)


def _fed(lines: list[str], picture: AdsbPicture) -> list[dict[str, object]]:
    """Every batch's reports, a line a tenth of a second after the one before."""
    out: list[dict[str, object]] = []
    for n, line in enumerate(lines, 1):
        picture.feed(parse_sbs_line(line, n), T + timedelta(seconds=n / 10))
        if n % 10 == 0:
            out += picture.reports(T + timedelta(seconds=n / 10))
    return out + picture.reports()


def test_the_recording_merges_into_one_report_per_new_position() -> None:
    lines = RECORDING.read_text(encoding="ascii").splitlines()
    picture = AdsbPicture()
    reports = _fed(lines, picture)
    positions = sum(1 for line in lines if line.startswith("MSG,3,"))
    # a report for every position once velocity is known (one MSG,3 per aircraft comes before its MSG,4)
    assert positions - 2 >= len(reports) >= positions // 3
    last = {r["id"]: r for r in reports}
    assert set(last) == {"4BB1C6", "738A5B"}
    tr, il = last["4BB1C6"], last["738A5B"]
    assert (tr["gs_kt"], tr["trk_deg"], tr["vs_fpm"], tr["alt_ft"]) == (300.0, 90.0, 0.0, 15000.0)
    assert (il["gs_kt"], il["trk_deg"], il["vs_fpm"]) == (310.0, 270.0, -64.0)
    assert float(tr["lon"]) < float(il["lon"])  # type: ignore[arg-type]
    assert picture.aircraft["738A5B"].callsign == "IAF117" and picture.aircraft["738A5B"].squawk == "5230"
    # the last positions in the recording, as written
    final = [line.split(",") for line in lines if line.startswith("MSG,3,1,1,4BB1C6")][-1]
    assert (tr["lat"], tr["lon"]) == (float(final[14]), float(final[15]))


def test_only_the_named_aircraft_are_reported() -> None:
    picture = AdsbPicture(only=frozenset({"738A5B"}))
    reports = _fed(RECORDING.read_text(encoding="ascii").splitlines(), picture)
    assert {r["id"] for r in reports} == {"738A5B"} and set(picture.aircraft) == {"738A5B"}


def test_an_aircraft_not_heard_for_a_while_is_forgotten() -> None:
    picture = AdsbPicture(forget_s=60)
    head = "MSG,{},1,1,738065,1,2025/04/09,09:00:00.000,2025/04/09,09:00:00.000,"
    picture.feed(parse_sbs_line(head.format(3) + ",12000,,,34.5,37.1,,,0,0,0,0", 1), T)
    picture.feed(parse_sbs_line(head.format(4) + ",,420,90.5,,,-640,,0,0,0,0", 2), T)
    assert picture.reports(T + timedelta(seconds=61)) == [] and picture.aircraft == {}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        pytest.param("MSG,3,1,1,4BB1C6,1,2025/04/09", "line 9: 7 fields; a BaseStation MSG line has 22", id="short"),
        pytest.param(
            "MSG,9,1,1,4BB1C6,1,,,,,,15000,,,34.5,37.3,,,0,0,0,0", "line 9: transmission type 9 is not 1 to 8", id="tt"
        ),
        pytest.param(
            "MSG,3,1,1,4BB1C,1,,,,,,15000,,,34.5,37.3,,,0,0,0,0", "hex ident '4BB1C' is not a 24-bit", id="hex"
        ),
        pytest.param(
            "MSG,3,1,1,4BB1C6,1,,,,,,15000,,,34.5,,,,0,0,0,0", "needs both latitude and longitude", id="half-position"
        ),
        pytest.param(
            "MSG,3,1,1,4BB1C6,1,,,,,,15000,,,-91,37.3,,,0,0,0,0", "line 9: lat '-91' is out of range", id="lat"
        ),
        pytest.param(
            "MSG,4,1,1,4BB1C6,1,,,,,,,fast,90,,,0,,0,0,0,0", "line 9: gs_kt 'fast' is not a number", id="speed"
        ),
        pytest.param("$GPGGA,123519,4807.038,N", "line 9: not a BaseStation line", id="nmea"),
    ],
)
def test_a_bad_line_is_named_by_its_number(line: str, words: str) -> None:
    with pytest.raises(AdsbLineError) as e:
        parse_sbs_line(line, 9)
    assert words in e.value.message


def test_other_basestation_messages_and_blank_lines_are_read_and_left() -> None:
    surface = parse_sbs_line("MSG,2,1,1,4BB1C6,1,,,,,,,12,270,34.51,37.2,,,0,0,0,-1", 1)
    grounded = parse_sbs_line("MSG,3,1,1,4BB1C6,1,,,,,,1500,,,34.51,37.2,,,0,0,0,-1", 1)
    assert surface is not None and grounded is not None and (surface.lat, grounded.lat) == (None, None)
    assert parse_sbs_line("", 1) is None
    assert parse_sbs_line("STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM", 2) is None
    assert parse_sbs_line("CLK,,,,,,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153", 3) is None


READSB = {
    "now": 1744178400.5,
    "messages": 5421,
    "aircraft": [
        {"hex": "738a5b", "type": "adsb_icao", "flight": "IAF117  ", "alt_baro": 15025, "alt_geom": 15400,
         "gs": 310.2, "track": 269.8, "baro_rate": -64, "squawk": "5230", "lat": 34.526, "lon": 37.9496,
         "nic": 8, "rc": 186, "seen_pos": 0.3, "messages": 220, "seen": 0.1, "rssi": -18.2},
        {"hex": "~2a0001", "type": "tisb_other", "alt_baro": 4000, "gs": 100, "track": 10, "lat": 34.1,
         "lon": 37.0, "seen_pos": 2.0},
        {"hex": "4bb1c7", "alt_baro": "ground", "gs": 3, "track": 0, "lat": 34.5, "lon": 37.0, "seen_pos": 1},
        {"hex": "4bb1c8", "alt_baro": 9000, "seen": 4},
        {"hex": "4bb1c9", "alt_baro": 99000000, "gs": 100, "track": 10, "lat": 34.6, "lon": 37.1, "seen_pos": 1},
        "not an aircraft",
    ],
}  # fmt: skip
DUMP1090_OLD = {
    "now": 1744178400.5,
    "aircraft": [
        {"hex": "4bb1c6", "altitude": 15000, "speed": 300, "track": 90, "vert_rate": 128, "lat": 34.519,
         "lon": 37.3, "seen_pos": 1.5, "seen": 0.5, "flight": "THY6TR"},
    ],
}  # fmt: skip


def test_readsb_and_the_older_dump1090_aircraft_json_are_read() -> None:
    found, warnings = parse_aircraft_json(json.dumps(READSB), source="aircraft.json")
    # on the ground and without position: left out; a non-ICAO address ('~', TIS-B) is no aircraft's ICAO one
    assert [a["icao"] for a in found] == ["738A5B", "NONICAO-2A0001"]
    first = found[0]
    assert first["state"] == {
        "lat": 34.526,
        "lon": 37.9496,
        "alt_ft": 15025.0,
        "gs_kt": 310.2,
        "trk_deg": 269.8,
        "vs_fpm": -64.0,
        "callsign": "IAF117",
        "squawk": "5230",
    }
    assert first["age_s"] == 0.3 and first["stamp"] == 1744178400.2
    assert warnings == [
        "aircraft.json aircraft[4] (hex 4bb1c9): alt_ft 99000000 is out of range "
        "(altitude, feet above mean sea level, -1500 to 100000)",
        "aircraft.json aircraft[5]: expected an object",
    ]
    (old,) = parse_aircraft_json(json.dumps(DUMP1090_OLD))[0]
    assert (old["state"]["alt_ft"], old["state"]["gs_kt"], old["state"]["vs_fpm"]) == (15000.0, 300.0, 128.0)


def test_the_same_aircraft_json_twice_reports_nothing_new() -> None:
    picture = AdsbPicture()
    for poll in range(2):
        for a in parse_aircraft_json(json.dumps(READSB))[0]:
            picture.put(a["icao"], a["state"], T + timedelta(seconds=poll), a["stamp"])
        assert len(picture.reports()) == (2 if poll == 0 else 0)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param('{\n "now": 1,\n "aircraft": [,]\n}', "aircraft.json line 3: not JSON", id="json"),
        pytest.param('{"now": 1, "planes": []}', "expected an object with an 'aircraft' list", id="no-list"),
    ],
)
def test_a_bad_aircraft_json_names_its_line_or_element(text: str, words: str) -> None:
    with pytest.raises(AdsbLineError) as e:
        parse_aircraft_json(text)
    assert words in e.value.message


def test_an_old_position_is_not_reported() -> None:
    picture = AdsbPicture()
    for a in parse_aircraft_json(json.dumps(READSB))[0]:
        picture.put(a["icao"], a["state"], T - timedelta(seconds=a["age_s"] * 20), a["stamp"])  # 6 s and 40 s
    assert [r["id"] for r in picture.reports(T)] == ["738A5B"]


def test_a_poll_on_a_connection_the_receiver_closed_as_it_went_out_is_asked_again() -> None:
    """The feed keeps its connection to the receiver open between polls; a receiver that closes it just as a
    poll goes out on it (its idle timeout about the poll's interval) answers nothing: the poll is asked once
    more, on a new connection, and no poll is lost or warned about."""
    import socket
    import threading

    from deconflict.formats._adsb_feed import run_aircraft_json

    polls: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                for answered in range(2):  # each connection: one poll answered, the next closed on
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    if not request or answered == 1:
                        break
                    polls.append(len(polls) + 1)
                    if len(polls) >= 4:
                        stop.set()
                    body = json.dumps({"now": 1744178400.0 + len(polls), "aircraft": []}).encode()
                    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                    conn.sendall(head.encode() + body)

    stop, warned = threading.Event(), []
    threading.Thread(target=serve, daemon=True).start()
    deadline = threading.Timer(30, stop.set)  # whatever happens, the feed stops
    deadline.start()
    try:
        stats = run_aircraft_json(
            f"http://127.0.0.1:{port}/data/aircraft.json", lambda _: None, stop=stop, warn=warned.append, every_s=0.05
        )
    finally:
        deadline.cancel()
        listener.close()
    assert warned == [] and stats.bad_lines == 0 and stats.lines == len(polls) >= 4, (warned, stats, polls)
