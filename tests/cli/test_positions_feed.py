"""``deconflict positions --sbs HOST:PORT`` keeps a party's picture fed from a live ADS-B receiver: a recorded
BaseStation stream (``data/sbs_converging.txt``: a Turkish and an Israeli aircraft converging west of T4 at
FL150, 20 s of messages as dump1090 writes them on TCP 30003, times in the receiver's local time, UTC+3) is
replayed over a loopback TCP server into the running service, Türkiye and Israel each feeding their own
aircraft (``--icao``) from the same receiver, and the service raises the tactical conflict it must: the two
tracks predicted to lose separation, seen through the API. The real command runs (a subprocess), drops and
reconnects, and stops on Ctrl-C (SIGINT) with its summary. ``--aircraft-json`` is fed the same way.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support.builders import A
from support.live import LiveServer, auth, wait_until

DATA = Path(__file__).parents[1] / "data"
RECORDING = DATA / "sbs_converging.txt"
EXE = Path(sys.executable).parent / "deconflict"
TR_AIRCRAFT, IL_AIRCRAFT = "4BB1C6", "738A5B"


class SbsReplay:
    """A receiver's BaseStation port on loopback: each connection gets the recording, paced by the
    lines' logged times ``speed`` times faster, lines ending in CRLF as receivers send them; the first
    connection is dropped after ``drop_after`` lines (the feed must reconnect), then the stream stays open."""

    def __init__(self, lines: list[str], *, speed: float = 10.0, drop_after: int | None = None) -> None:
        self.lines, self.speed, self.drop_after = lines, speed, drop_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._send, args=(conn, self.connections), daemon=True).start()

    def _send(self, conn: socket.socket, n: int) -> None:
        with conn:
            try:
                last: datetime | None = None
                for i, line in enumerate(self.lines):
                    if n == 1 and self.drop_after is not None and i == self.drop_after:
                        return  # the receiver restarts
                    f = line.split(",")
                    try:
                        logged = datetime.strptime(f"{f[8]} {f[9]}+0300", "%Y/%m/%d %H:%M:%S.%f%z")
                    except (IndexError, ValueError):
                        logged = last  # a damaged line goes out at once
                    if last is not None and logged is not None:
                        time.sleep(max(0.0, (logged - last).total_seconds() / self.speed))
                    last = logged
                    conn.sendall(line.encode() + b"\r\n")
                while not self.stopped.wait(0.2):
                    pass  # an idle receiver: nothing more to say, the line stays up
            except OSError:
                return

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def replay() -> Iterator[SbsReplay]:
    server = SbsReplay(RECORDING.read_text(encoding="ascii").splitlines(), drop_after=30)
    yield server
    server.close()


def _feed(live: LiveServer, token: str, *args: str) -> subprocess.Popen[str]:
    env = {"DECONFLICT_URL": live.url, "DECONFLICT_TOKEN": token, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.Popen(
        [str(EXE), "positions", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C, as a person stops the feed; its exit code, stdout and stderr."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_a_replayed_sbs_stream_raises_the_tactical_conflict_through_the_running_service(
    live: LiveServer, tokens: dict[str, str], replay: SbsReplay
) -> None:
    address = f"127.0.0.1:{replay.port}"
    feeds = {
        "TR": _feed(live, tokens["TR"], "--sbs", address, "--icao", TR_AIRCRAFT.lower()),
        "IL": _feed(live, tokens["IL"], "--sbs", address, "--icao", IL_AIRCRAFT),
    }
    try:

        def tracks_conflict() -> dict[str, object] | None:
            r = httpx.get(f"{live.url}{A}/conflicts", headers=auth(tokens["IL"]), timeout=10)
            return next((c for c in r.json() if c["kind"] == "tracks"), None)

        conflict = wait_until(tracks_conflict, "a tracks conflict between the two aircraft", deadline_s=60)
        seen = httpx.get(f"{live.url}{A}/tracks", headers=auth(tokens["AZ"]), timeout=10).json()["tracks"]
        wait_until(lambda: replay.connections >= 3, "both feeds connected, and one reconnected after the drop")
    finally:
        done = {party: _stop(proc) for party, proc in feeds.items()}
    assert {conflict["activity"], conflict["other_activity"]} == {f"TR/{TR_AIRCRAFT}", f"IL/{IL_AIRCRAFT}"}
    assert sorted(conflict["parties"]) == ["IL", "TR"]  # type: ignore[call-overload]
    # each party reported its own aircraft only, with position and velocity merged from separate messages
    assert sorted(t["track"] for t in seen) == [f"IL/{IL_AIRCRAFT}", f"TR/{TR_AIRCRAFT}"]
    tr = next(t for t in seen if t["party"] == "TR")
    assert tr["trk_deg"] == 90.0 and tr["gs_mps"] == pytest.approx(300 * 1852 / 3600)
    assert tr["alt_m"] == pytest.approx(15000 * 0.3048, abs=1)
    for party, (code, out, err) in done.items():
        assert code == 0, (party, err)
        # Ctrl-C lets the batch on its way finish: what the service stored was said
        assert "positions stored" in out and "Traceback" not in err, (party, out, err)
        assert "stopped: " in err and "0 bad lines skipped" in err, (party, err)
    assert any("dropped" in done[p][2] and "reconnecting" in done[p][2] for p in done)  # the receiver restarted


def test_bad_lines_are_counted_and_skipped_with_their_line_numbers(live: LiveServer, tokens: dict[str, str]) -> None:
    lines = RECORDING.read_text(encoding="ascii").splitlines()[:24]
    lines[2] = "MSG,3,1,1,4BB1C6,1,2025/04/09,09:00:00.500"  # cut short
    lines[5] = "MSG,3,1,1,4BB1C6,1,2025/04/09,09:00:00.700,2025/04/09,09:00:00.700,,15000,,,134.5,37.3,,,0,0,0,0"
    lines.insert(9, "\x00\x01garbage,from,a,noisy,line")
    last = "MSG,{},1,1,4BB1C9,1,2025/04/09,09:00:05.000,2025/04/09,09:00:05.000,"
    lines += [last.format(3) + ",9000,,,34.4,37.2,,,0,0,0,0", last.format(4) + ",,200,45.0,,,0,,0,0,0,0"]
    replay = SbsReplay(lines, speed=50)
    proc = _feed(live, tokens["TR"], "--sbs", f"127.0.0.1:{replay.port}")
    try:  # the last aircraft in the service: every line before it has been read

        def tracks() -> list[str]:
            return [
                t["id"] for t in live.service.tracks("tr-il-syria", reader=live.service.member("tr-il-syria", "TR"))
            ]

        wait_until(lambda: "4BB1C9" in tracks(), "the last lines' aircraft")
    finally:
        code, out, err = _stop(proc)
        replay.close()
    assert code == 0, err
    assert "line 3: 8 fields; a BaseStation MSG line has 22; skipped" in err
    assert "line 6: lat '134.5' is out of range" in err
    assert "line 10: not a BaseStation line" in err
    assert "3 bad lines skipped" in err and "27 lines read" in err


def test_aircraft_json_is_polled_and_a_bad_one_names_its_line(
    live: LiveServer, tokens: dict[str, str], tmp_path: Path
) -> None:
    doc = {
        "now": 1744178400.0,
        "messages": 1200,
        "aircraft": [
            {"hex": "4bb1c6", "flight": "THY6TR  ", "alt_baro": 15000, "gs": 300.0, "track": 90.0,
             "baro_rate": 0, "lat": 34.519, "lon": 37.30, "seen_pos": 0.4, "seen": 0.1, "squawk": "4521"},
            {"hex": "4bb1c7", "alt_baro": "ground", "gs": 0, "track": 0, "lat": 34.5, "lon": 37.0, "seen_pos": 1},
            {"hex": "4bb1c8", "alt_baro": 9000, "gs": "fast", "track": 10, "lat": 34.6, "lon": 37.1, "seen_pos": 1},
            {"hex": "4bb1ca", "alt_baro": 9000, "gs": 200, "track": 10, "lat": 34.7, "lon": 37.2, "seen_pos": 95.3},
        ],
    }  # fmt: skip
    path = tmp_path / "aircraft.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    once = _feed(live, tokens["TR"], "--aircraft-json", str(path), "--once")
    out, err = once.communicate(timeout=60)
    assert once.returncode == 0, err
    assert "1 positions stored" in out
    assert "aircraft[2] (hex 4bb1c8): gs_kt 'fast' is not a number; left out" in err
    reader = live.service.member("tr-il-syria", "TR")
    assert [t["track"] for t in live.service.tracks("tr-il-syria", reader=reader)] == ["TR/4BB1C6"]

    path.write_text(json.dumps(doc, indent=1).replace('"messages": 1200,', '"messages": 1200,,'), encoding="utf-8")
    bad = _feed(live, tokens["IL"], "--aircraft-json", str(path), "--once")
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "aircraft.json line 3: not JSON" in err, err
    reader = live.service.member("tr-il-syria", "IL")
    assert all(t["party"] == "TR" for t in live.service.tracks("tr-il-syria", reader=reader))  # nothing stored


def _beast(hexmsg: str, ticks: int) -> bytes:
    """One Mode S long frame in the Beast binary format: 0x1a '3', a 48-bit counter, a signal byte, the
    message; every 0x1a in the body doubled."""
    body = ticks.to_bytes(6, "big") + b"\x80" + bytes.fromhex(hexmsg)
    return b"\x1a\x33" + body.replace(b"\x1a", b"\x1a\x1a")


def test_a_beast_feed_is_decoded_by_pymodes(live: LiveServer, tokens: dict[str, str]) -> None:
    """An even/odd CPR pair (the pyModeS documentation's DF17 example, over the Netherlands) three times
    and a velocity message: pyModeS resolves the position once a consistent cluster of pairs is seen."""
    even, odd = "8D40621D58C382D690C8AC2863A7", "8D40621D58C386435CC412692AD6"
    velocity = "8D40621D994409940838174550B1"  # TC19, the docs' 485020 message re-addressed (CRC recomputed)
    frames = b"".join(_beast(m, 1000 + i) for i, m in enumerate([even, odd] * 3 + [velocity]))
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"\x1a\x34" + bytes(10) + frames[:40])  # a status frame, then a frame cut across reads
            time.sleep(0.3)  # two reads on the other side
            conn.sendall(frames[40:])
            conn.recv(1)  # the line stays up until the feed hangs up

    threading.Thread(target=serve, daemon=True).start()
    proc = _feed(live, tokens["TR"], "--beast", f"127.0.0.1:{server.getsockname()[1]}")
    try:
        reader = live.service.member("tr-il-syria", "TR")
        (track,) = wait_until(lambda: live.service.tracks("tr-il-syria", reader=reader), "the Beast aircraft")
    finally:
        code, out, err = _stop(proc)
        server.close()
    assert code == 0 and "1 positions stored" in out and "stopped: 1 positions sent" in err, err
    assert track["track"] == "TR/40621D" and round(track["trk_deg"], 2) == 182.88
    assert track["alt_m"] == pytest.approx(38000 * 0.3048, abs=15)  # flown on to now at -832 fpm
    assert track["gs_mps"] == pytest.approx(159 * 0.514444, abs=0.01)
    assert abs(track["lat"] - 52.2658) < 0.01 and abs(track["lon"] - 3.9389) < 0.05


@pytest.mark.parametrize("pairs", [False, True], ids=["velocities only", "positions"])
def test_a_receiver_that_talks_but_gives_no_position_is_warned_about_once(pairs: bool) -> None:
    """A Beast feed of velocity messages only (a receiver that decodes no airborne position, or hears each
    aircraft's even message and never its odd one) sent nothing and said nothing: the duty officer saw an
    empty picture and a quiet terminal. Now it is said once; a feed that gives positions is not warned about."""
    from deconflict.formats._adsb_feed import run_sbs

    even, odd = "8D40621D58C382D690C8AC2863A7", "8D40621D58C386435CC412692AD6"
    velocity = "8D40621D994409940838174550B1"
    messages = ([even, odd] * 3 if pairs else []) + [velocity] * 6
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for k in range(30):  # 1.5 s of messages, then the line stays up
                conn.sendall(b"".join(_beast(m, 1000 + 10 * k + i) for i, m in enumerate(messages)))
                time.sleep(0.05)
            done.wait(10)

    threading.Thread(target=serve, daemon=True).start()
    said: list[str] = []
    posted: list[int] = []
    stop = threading.Event()
    feed = threading.Thread(
        target=run_sbs,
        args=("127.0.0.1", server.getsockname()[1], lambda reports: posted.append(len(reports))),
        kwargs={"stop": stop, "warn": said.append, "beast": True, "batch_s": 0.1, "quiet_s": 0.5},
        daemon=True,
    )
    feed.start()
    time.sleep(2.5)
    stop.set()
    done.set()
    feed.join(timeout=10)
    server.close()
    quiet = [w for w in said if "not one position to send" in w]
    if pairs:
        assert posted and not quiet, said
    else:
        assert not posted and len(quiet) == 1, said
        assert "messages read in" in quiet[0] and "--icao" in quiet[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--sbs", "127.0.0.1"], "--sbs: '127.0.0.1' is not HOST:PORT", id="no-port"),
        pytest.param(["--beast", "host:99999"], "--beast: 'host:99999' is not HOST:PORT", id="bad-port"),
        pytest.param(["--sbs", "127.0.0.1:30003", "--once"], "--once reads an --aircraft-json once", id="once"),
        pytest.param(["--sbs", "127.0.0.1:1", "--icao", "73806"], "--icao: '73806' is not an ICAO address", id="icao"),
        pytest.param(["--sbs", "127.0.0.1:1", "--aircraft-json", "a.json"], "give one source", id="two"),
        pytest.param([], "give one source", id="none"),
        pytest.param(["tracks.csv", "--icao", "738065"], "--icao and --once are for live feeds", id="csv-icao"),
        pytest.param(
            ["tracks.csv", "--at", "2026-13-01T00:00:00Z"],
            "error: --at: '2026-13-01T00:00:00Z' is not a time",  # the option as typed ('at:' before)
            id="at",
        ),
        pytest.param(
            ["--sbs", "127.0.0.1:1", "--at", "2026-12-01T00:00:00Z"], "--at is for a CSV file", id="at-live"
        ),  # it was ignored without a word
        pytest.param(["header-only.csv"], "header-only.csv: no track in the file, only its header", id="no-track"),
        pytest.param(  # the service named it "report 1", its place among the rows sent, not the file's line
            ["hawk.csv"],
            "hawk.csv line 4, column id: '\u015eAH\u0130N1' may only hold ASCII letters, digits and - _ . : (not "
            "'\u015e', U+015E)",
            id="non-ascii-id",
        ),
    ],
)
def test_a_live_feed_wrongly_given_is_refused_in_words(
    live: LiveServer,
    tokens: dict[str, str],
    args: list[str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from deconflict.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "header-only.csv").write_text("id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\n", encoding="utf-8")
    (tmp_path / "hawk.csv").write_text(
        "id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\nABC1,34.5,37.6,10000,300,90,0\n\n\u015eAH\u0130N1,34.6,37.7,10000,300,90,0\n",
        encoding="utf-8",
    )
    env = {"DECONFLICT_URL": live.url, "DECONFLICT_TOKEN": tokens["TR"]}
    out = CliRunner().invoke(app, ["positions", *args], env=env)
    assert out.exit_code == 2 and words in out.output, out.output


def test_aircraft_json_is_polled_over_http_until_ctrl_c(live: LiveServer, tokens: dict[str, str]) -> None:
    """readsb's aircraft.json served on loopback, written anew every poll (its ``now`` moves on, the
    aircraft flies east): each new position is sent, the same file twice is not, a broken one is warned
    about once and polling goes on; every poll comes on the one connection the feed keeps open (a server
    that keeps it alive, as readsb's web server does), not a new connection and client each second."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    polls = {"n": 0}
    connections: set[tuple[str, int]] = set()

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            polls["n"] += 1
            n = polls["n"]
            connections.add(self.client_address)
            plane = {"hex": "738a5b", "alt_baro": 15000, "gs": 310, "track": 270.0, "baro_rate": 0}
            plane |= {"lat": 34.526, "lon": 37.95 - 0.001 * n, "seen_pos": 0.2}
            body = b"{ broken" if n == 3 else json.dumps({"now": 1744178400.0 + n, "aircraft": [plane]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_address[1]}/data/aircraft.json"
    proc = _feed(live, tokens["IL"], "--aircraft-json", url, "--icao", "738A5B")
    try:
        wait_until(lambda: polls["n"] >= 5, "five polls", deadline_s=60)
    finally:
        code, out, err = _stop(proc)
        http.shutdown()
    assert code == 0, err
    assert out.count("1 positions stored") >= 3  # a new position each good poll
    assert err.count("line 1: not JSON") == 1 and "trying again in 1 s" in err
    assert "stopped: " in err and "1 bad lines skipped" in err
    assert len(connections) == 1, connections
    reader = live.service.member("tr-il-syria", "IL")
    assert [t["track"] for t in live.service.tracks("tr-il-syria", reader=reader)] == ["IL/738A5B"]


def test_a_revoked_token_stops_the_feed_in_words(live: LiveServer, tokens: dict[str, str]) -> None:
    replay = SbsReplay(RECORDING.read_text(encoding="ascii").splitlines(), speed=1)
    proc = _feed(live, tokens["TR"], "--sbs", f"127.0.0.1:{replay.port}")
    try:
        reader = live.service.member("tr-il-syria", "TR")
        wait_until(lambda: live.service.tracks("tr-il-syria", reader=reader), "a first batch")
        live.service.revoke_tokens(mechanism_id="tr-il-syria", member_id="TR")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        replay.close()
    assert proc.returncode == 2 and "the service refused (401)" in err, err
