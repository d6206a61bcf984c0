"""``deconflict tak`` pushes a member's picture to a TAK server as Cursor on Target, through the real command
against the live service, into a loopback TCP listener that reads every event with takproto (the TAK
community's parser, our second, independent one) and with ours.

A real TAK server: when ``DECONFLICT_TEST_FTS`` names a Python with FreeTAKServer 2.2.1 installed (it
cannot share this project's environment: it pins Flask 2, SQLAlchemy 1.4 and an old OpenTelemetry; see
:func:`fts` for the install), the last test starts it on loopback, connects a TAK client of its own, and
checks that what FreeTAKServer relays to that client is our picture. Without it that test is skipped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import takproto
from support.builders import T0, A, declared_db, syria
from support.live import LiveServer, auth, free_port, post_notice, start_server, wait_until

from deconflict.clock import FixedClock
from deconflict.formats.cot import CotEvent, parse_cot
from deconflict.model import Disclosure

EXE = Path(sys.executable).parent / "deconflict"
EVENT = re.compile(rb"<event\b.*?</event>", re.S)


class CotListener:
    """A TAK server's CoT input on loopback: every event received, read by takproto and by us. With
    ``hang_up_after``, the first connection is closed after that many events (the server restarts)."""

    def __init__(self, *, hang_up_after: int | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.events: list[tuple[Any, CotEvent]] = []  # (takproto's TakMessage, ours)
        self.connections = 0
        self.hang_up_after = hang_up_after
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._read, args=(conn, self.connections), daemon=True).start()

    def _read(self, conn: socket.socket, n: int) -> None:
        buffer, count = b"", 0
        with conn:
            conn.settimeout(0.2)
            while not self.closed.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buffer += chunk
                while m := EVENT.search(buffer):
                    xml, buffer = m.group(0), buffer[m.end() :]
                    message = takproto.parse_proto(bytearray(b'<?xml version="1.0"?>' + xml))
                    self.events.append((message, parse_cot(xml)))
                    count += 1
                    if n == 1 and self.hang_up_after is not None and count >= self.hang_up_after:
                        return

    def latest(self) -> dict[str, CotEvent]:
        """The last event received of each uid (the feed's hello, a t-x-d-d ping, left out)."""
        return {ours.uid: ours for _, ours in self.events if ours.type != "t-x-d-d"}

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CotListener]:
    server = CotListener(hang_up_after=6)
    yield server
    server.close()


def _tak(live: LiveServer, token: str, *args: str, url: str | None = None) -> subprocess.Popen[str]:
    env = {"DECONFLICT_URL": url or live.url, "DECONFLICT_TOKEN": token, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    # as from a terminal, Ctrl-C reaches it: a suite started in the background by a shell without job control
    # has SIGINT ignored, and an ignored signal is inherited (`deconflict tak` then never hears the Ctrl-C)
    return subprocess.Popen(
        [str(EXE), "tak", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - no threads touched
    )


def _track(live: LiveServer, token: str, track_id: str, lat: float, lon: float) -> None:
    report = {"id": track_id, "at": "2025-04-09T05:59:59Z", "lat": lat, "lon": lon, "alt_ft": 15000}
    report |= {"gs_kt": 300, "trk_deg": 90, "vs_fpm": 0}
    r = httpx.post(f"{live.url}{A}/tracks", json={"reports": [report]}, headers=auth(token), timeout=10)
    assert r.status_code == 200, r.text


def test_the_picture_goes_to_the_tak_server_and_follows_the_record(
    live: LiveServer, tokens: dict[str, str], listener: CotListener
) -> None:
    post_notice(live, tokens["TR"], "uav_patrol", 34.52, 37.63)
    post_notice(live, tokens["IL"], "air_sortie", 34.53, 37.70)  # C1: separation
    _track(live, tokens["TR"], "UAV-1", 34.52, 37.5)
    proc = _tak(live, tokens["IL"], "--tak", listener.url, "--tracks-every", "0.5")
    try:
        first = wait_until(lambda: len(listener.events) >= 6 and listener.latest(), "the first picture", deadline_s=60)
        later = post_notice(live, tokens["TR"], "deployment", 34.5574, 38.3169, radius_m=2000)  # C3: red line
        uid = f"deconflict.tr-il-syria.activity.{later['activity']['id']}.v1.1"
        wait_until(lambda: uid in listener.latest(), "the new notice, sent when the record said so", deadline_s=60)
        r = httpx.post(f"{live.url}{A}/activities/{later['activity']['id']}/cancel", headers=auth(tokens["TR"]))
        assert r.status_code == 200, r.text
        marker = f"deconflict.tr-il-syria.conflict.{later['raised'][0]['id']}"
        assert later["raised"][0]["kind"] == "zone"

        def gone(u: str) -> bool:
            return u in listener.latest() and listener.latest()[u].stale <= listener.latest()[u].time

        wait_until(lambda: gone(uid) and gone(marker), "the cancelled notice and its closed conflict withdrawn")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert re.search(r"stopped: \d+ CoT events sent", err)
    assert listener.connections >= 2 and "dropped" in err and "reconnecting" in err  # the server hung up after 6
    kinds = {uid.split(".")[2] for uid in first}
    assert kinds == {"zone", "activity", "conflict", "track"}
    # what takproto read of each event: the TAK fields a TAK server forwards
    by_uid = {m.cotEvent.uid: m.cotEvent for m, _ in listener.events}
    assert listener.events[0][1].type == "t-x-d-d"  # each connection begins with pytak's hello
    red_line = by_uid["deconflict.tr-il-syria.zone.IL-RL-PALMYRA.1"]
    assert (red_line.type, red_line.lat, red_line.lon, red_line.detail.contact.callsign) == (
        "u-d-c-c",
        34.5574,
        38.3169,
        "IL-RL-PALMYRA",
    )
    assert '<ellipse major="40000" minor="40000"' in red_line.detail.xmlDetail
    sortie = by_uid["deconflict.tr-il-syria.activity.TR-0001.v1.1"]
    assert sortie.staleTime == int(T0.timestamp() * 1000) + 4 * 3600 * 1000  # the end of the window, 4 h on
    c1 = by_uid["deconflict.tr-il-syria.conflict.C1"]
    assert c1.type == "b-m-p-s-p-i" and "awaiting TR" in c1.detail.xmlDetail
    track = by_uid["deconflict.tr-il-syria.track.TR.UAV-1"]
    assert (track.type, track.detail.track.course, round(track.detail.track.speed, 2)) == ("a-n-A", 90.0, 154.33)
    assert "sent C1 separation (b-m-p-s-p-i)" in out


class StallingPath:
    """A TCP hop in front of the service whose requests can be held: connections stay open and no answer
    comes (a network path that hangs). ``held`` has the first line of each request held so far."""

    def __init__(self, upstream: str) -> None:
        self.upstream = int(upstream.rsplit(":", 1)[1])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stalled = threading.Event()
        self.closed = threading.Event()
        self.held: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(conn, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        src.settimeout(0.2)
        while not self.closed.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if requests and self.stalled.is_set():
                self.held.append(data.split(b"\r\n", 1)[0])
                self.closed.wait()  # held until the end: nothing passes
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        if self.stalled.is_set():  # nor does a hang-up pass (the service's idle connections close after 5 s)
            self.closed.wait()
        for s in (src, dst):
            s.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def test_ctrl_c_stops_the_feed_at_once_while_the_service_does_not_answer(
    live: LiveServer, tokens: dict[str, str]
) -> None:
    """A read of the picture hangs (the path to the service stalls): Ctrl-C stops the feed at once, not when
    the read times out (15 s)."""
    path, listener = StallingPath(live.url), CotListener()
    proc = _tak(live, tokens["IL"], "--tak", listener.url, "--tracks-every", "0.5", url=path.url)
    try:
        wait_until(lambda: len(listener.events) >= 2, "the first picture", deadline_s=60)
        path.stalled.set()
        # a request of the picture's reading held on the way (zones, activities, conflicts, tracks or the clock)
        wait_until(lambda: any(b"/events" not in h for h in path.held), "a read of the picture held", deadline_s=30)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        proc.kill()
        path.close()
        listener.close()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "stopped:" in err
    assert took < 5, f"Ctrl-C took {took:.1f} s"


def test_a_tak_feed_carries_only_what_its_reader_may_see(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "partial.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    live = start_server(db, clock)
    listener = CotListener()
    try:
        tokens = live.tokens()
        post_notice(live, tokens["TR"], "uav_patrol", 34.52, 37.63, radius_m=30_000)  # TR-0001
        post_notice(live, tokens["TR"], "uav_patrol", 35.9, 36.6, radius_m=5_000)  # TR-0002: far from IL's
        post_notice(live, tokens["IL"], "air_sortie", 34.53, 37.95, radius_m=8_000)  # in conflict with TR-0001
        done = _tak(live, tokens["IL"], "--tak", listener.url, "--once")
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
        wait_until(lambda: len(listener.events) >= 4, "IL's picture")
    finally:
        live.stop()
        listener.close()
    seen = listener.latest()
    assert not any("TR-0002" in uid for uid in seen)  # not in conflict with IL's: not there at all
    parts = [e for uid, e in seen.items() if ".activity.TR-0001." in uid]
    assert parts and all(e.type == "u-d-f" and e.radius_m is None for e in parts)  # overlap polygons only
    assert all("only the part in conflict with yours" in e.remarks for e in parts)
    # every vertex of TR's part lies near IL's sortie (8 km + 9.26 km separation), far from TR's centre
    for e in parts:
        assert all(abs(lon - 37.95) < 0.2 for _, lon in e.vertices)
    raw = b"".join(m.SerializeToString() for m, _ in listener.events)
    assert b'major="30000"' not in raw  # not TR's circle
    assert not any(abs(m.cotEvent.lon - 37.63) < 1e-6 for m, _ in listener.events)  # nor its centre


# --- a real TAK server ------------------------------------------------------------------------------

FTS_ENV = "DECONFLICT_TEST_FTS"
FTS_PINS = (
    "freetakserver==2.2.1",
    "setuptools==69.5.1",  # FreeTAKServer's digitalpy imports pkg_resources
    "opentelemetry-api==1.24.0",  # newer SDKs refuse digitalpy's way of setting a span exporter
    "opentelemetry-sdk==1.24.0",
)
"""FreeTAKServer as it runs here (2026-12-02, Python 3.11): its own environment, these pins."""
ROOT = Path(__file__).parents[2]


def _fts_python(value: str) -> str:
    """The Python ``DECONFLICT_TEST_FTS`` names, or with ``install`` one made in ``.tools/fts`` (once)."""
    if value != "install":
        return value
    python = ROOT / ".tools" / "fts" / "bin" / "python"
    if not python.exists():
        uv = [str(ROOT / "scripts" / "uv")]
        subprocess.run([*uv, "venv", "-q", "-p", "3.11", str(python.parents[1])], check=True, timeout=300)
        env = {**os.environ, "VIRTUAL_ENV": str(python.parents[1])}
        subprocess.run([*uv, "pip", "install", "-q", *FTS_PINS], check=True, timeout=900, env=env)
    return str(python)


@pytest.fixture
def fts(tmp_path: Path) -> Iterator[int]:
    """FreeTAKServer on loopback; its CoT port. ``DECONFLICT_TEST_FTS`` names the Python of an environment
    with :data:`FTS_PINS` installed, or says ``install`` (one is made in ``.tools/fts`` the first time). It
    cannot share the project's environment (it pins Flask 2, SQLAlchemy 1.4, an old OpenTelemetry), and it
    keeps its state under /opt/fts (hard-coded)."""
    if not os.environ.get(FTS_ENV):
        pytest.skip(f"{FTS_ENV} is not set: no FreeTAKServer to test against (see this fixture's docstring)")
    python = _fts_python(os.environ[FTS_ENV])
    cot, ssl_cot, api, dp, ssl_dp = (free_port() for _ in range(5))
    args = ["-CoTIP", "127.0.0.1", "-CoTPort", str(cot), "-SSLCoTIP", "127.0.0.1", "-SSLCoTPort", str(ssl_cot)]
    args += ["-RestAPIIP", "127.0.0.1", "-RestAPIPort", str(api), "-DataPackageIP", "127.0.0.1"]
    args += ["-DataPackagePort", str(dp), "-SSLDataPackageIP", "127.0.0.1", "-SSLDataPackagePort", str(ssl_dp)]
    log = (tmp_path / "fts.log").open("w")
    proc = subprocess.Popen(
        [python, "-m", "FreeTAKServer.controllers.services.FTS", *args, "-AutoStart", "True"],
        env={**os.environ, "FTS_FIRST_START": "false"},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: it starts several processes
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", cot)) == 0

        wait_until(listening, "FreeTAKServer's CoT port", deadline_s=120, every_s=0.5)
        yield cot
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_freetakserver_relays_our_picture_to_a_tak_client(live: LiveServer, tokens: dict[str, str], fts: int) -> None:
    post_notice(live, tokens["TR"], "uav_patrol", 34.52, 37.63)
    post_notice(live, tokens["IL"], "air_sortie", 34.53, 37.70)
    client = socket.create_connection(("127.0.0.1", fts), timeout=10)
    hello = (
        '<event version="2.0" uid="TEST-EUD" type="a-f-G-U-C" how="h-e" time="2025-04-09T06:00:00Z" '
        'start="2025-04-09T06:00:00Z" stale="2030-01-01T00:00:00Z"><point lat="34.5" lon="37.5" hae="0" ce="10" '
        'le="10"/><detail><contact callsign="TEST-EUD" endpoint="*:-1:stcp"/><__group name="Cyan" '
        'role="Team Member"/></detail></event>'
    )
    client.sendall(hello.encode())
    client.settimeout(0.5)
    greeting = b""
    end = time.monotonic() + 30
    while b"</event>" not in greeting and time.monotonic() < end:  # registered: FreeTAKServer greets it
        try:
            greeting += client.recv(65536)
        except TimeoutError:
            continue
    assert b'type="b-t-f"' in greeting, greeting
    received = b""
    for _ in range(3):  # a push FreeTAKServer took before it had set the client up is not relayed: push again
        done = _tak(live, tokens["IL"], "--tak", f"tcp://127.0.0.1:{fts}", "--once")
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
        end = time.monotonic() + 20
        while time.monotonic() < end and received.count(b"deconflict.tr-il-syria.conflict.C1") == 0:
            try:
                received += client.recv(65536)
            except TimeoutError:
                continue
        if b"deconflict.tr-il-syria.conflict.C1" in received:
            break
    client.close()
    relayed = {}
    for xml in EVENT.findall(received):
        if b"deconflict." in xml:
            ours = parse_cot(xml)
            relayed[ours.uid] = ours
    assert "deconflict.tr-il-syria.zone.IL-RL-PALMYRA.1" in relayed, received[-2000:]
    # what FreeTAKServer read of ours and sent on (it moves <remarks> into detail@remarks: read too)
    zone = relayed["deconflict.tr-il-syria.zone.IL-RL-PALMYRA.1"]
    assert (zone.type, zone.radius_m, zone.lat, zone.lon) == ("u-d-c-c", 40000.0, 34.5574, 38.3169)
    assert "red line of IL" in zone.remarks
    c1 = relayed["deconflict.tr-il-syria.conflict.C1"]
    assert c1.type == "b-m-p-s-p-i" and "awaiting TR" in c1.remarks
    assert c1.links == ("deconflict.tr-il-syria.activity.IL-0001.v1.1", "deconflict.tr-il-syria.activity.TR-0001.v1.1")
    patrol = relayed["deconflict.tr-il-syria.activity.TR-0001.v1.1"]
    assert (patrol.callsign, patrol.radius_m, patrol.stale.hour) == ("TR-0001", 15000.0, 10)


def test_a_tak_server_that_is_not_there_is_named(live: LiveServer, tokens: dict[str, str]) -> None:
    port = free_port()
    done = _tak(live, tokens["IL"], "--tak", f"tcp://127.0.0.1:{port}", "--once")
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2 and f"--tak: cannot reach tcp://127.0.0.1:{port}" in err, err
    bad = _tak(live, tokens["IL"], "--tak", "http://127.0.0.1:8087", "--once")
    _, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "give the TAK server's address as tcp://HOST:PORT" in err, err


def test_the_picture_written_to_a_file(live: LiveServer, tokens: dict[str, str], tmp_path: Path) -> None:
    post_notice(live, tokens["TR"], "uav_patrol", 34.52, 37.63)
    out = tmp_path / "picture.cot"
    done = _tak(live, tokens["AZ"], "--tak", f"file://{out}", "--once")
    _, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    events = [parse_cot(xml) for xml in EVENT.findall(out.read_bytes())]
    assert [e.callsign for e in events] == ["IL-RL-PALMYRA", "TR-0001"]  # no hello: a file is no TAK server


def test_a_revoked_token_stops_the_feed_in_words(
    live: LiveServer, tokens: dict[str, str], listener: CotListener
) -> None:
    proc = _tak(live, tokens["IL"], "--tak", listener.url, "--tracks-every", "0.5")
    try:
        wait_until(lambda: len(listener.events) >= 2, "the first picture", deadline_s=60)
        live.service.revoke_tokens(mechanism_id="tr-il-syria", member_id="IL")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2 and "the service refused (401)" in err, err


def test_live_adsb_in_and_cot_out_together(live: LiveServer, tokens: dict[str, str], listener: CotListener) -> None:
    """The whole loop: Türkiye and Israel feed their aircraft from one receiver's BaseStation stream,
    the service predicts their loss of separation, and Israel's TAK feed shows both aircraft as position
    reports (its own friendly, Türkiye's neutral) and the tactical conflict as a marker between them."""
    from test_positions_feed import IL_AIRCRAFT, RECORDING, TR_AIRCRAFT, SbsReplay

    replay = SbsReplay(RECORDING.read_text(encoding="ascii").splitlines(), speed=5)
    address = f"127.0.0.1:{replay.port}"
    env = {"DECONFLICT_URL": live.url, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    feeds = [
        subprocess.Popen(
            [str(EXE), "positions", "--sbs", address, "--icao", icao],
            env={**env, "DECONFLICT_TOKEN": tokens[party]},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for party, icao in (("TR", TR_AIRCRAFT), ("IL", IL_AIRCRAFT))
    ]
    tak = _tak(live, tokens["IL"], "--tak", listener.url, "--tracks-every", "0.5")
    try:
        tracks = (f"deconflict.tr-il-syria.track.TR.{TR_AIRCRAFT}", f"deconflict.tr-il-syria.track.IL.{IL_AIRCRAFT}")

        def marker_and_tracks() -> tuple[CotEvent, dict[str, CotEvent]] | None:
            # the marker may come before the next push of the tracks (every 0.5 s): wait for all three
            seen = listener.latest()
            marker = next((e for e in seen.values() if e.callsign.endswith(" tracks")), None)
            return (marker, seen) if marker is not None and all(t in seen for t in tracks) else None

        found, seen = wait_until(marker_and_tracks, "the tracks conflict and both aircraft on IL's feed", deadline_s=90)
    finally:
        for proc in (*feeds, tak):
            proc.send_signal(signal.SIGINT)
        for proc in (*feeds, tak):
            proc.communicate(timeout=30)
        replay.close()
    tr, il = (seen[t] for t in tracks)
    assert (tr.type, il.type) == ("a-n-A", "a-f-A") and (tr.course, il.course) == (90.0, 270.0)
    assert tr.lon < found.lon < il.lon  # the marker between the two aircraft
    assert f"TR/{TR_AIRCRAFT}" in found.remarks and f"IL/{IL_AIRCRAFT}" in found.remarks
