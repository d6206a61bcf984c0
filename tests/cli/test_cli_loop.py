"""The duty officer's loop from a terminal, against a real server on loopback: list, amend, cancel,
acknowledge, resolve; the hotline's free text language and times; tail through a pipe; replay."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import builders
from support.builders import HAMA, T0, T4, A, M, declared_db
from support.live import LiveServer, auth, post_notice, start_server
from typer.testing import CliRunner

from deconflict.api.settings import Settings
from deconflict.cli import app
from deconflict.cli.record import MOST_WINDOW_H
from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.record import signing
from deconflict.service import Service
from deconflict.store import replay as replaying

runner = CliRunner()
vol = partial(builders.vol, start_h=3)
"""This module's volumes open 3 h after T0."""


def polygon_volume() -> dict[str, Any]:
    ring = [[37.5, 34.4], [37.8, 34.4], [37.8, 34.7], [37.5, 34.7], [37.5, 34.4]]
    v = vol(id="box", geometry={"type": "Polygon", "coordinates": [ring]})
    del v["radius_m"]
    return v


def cli(server: LiveServer, token: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--url", server.url, "--token", token])


@pytest.fixture
def separation(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> dict[str, Any]:
    """Israel's sortie and Türkiye's patrol over T4 in the same window: one separation conflict."""
    il = client.post(f"{A}/activities", json={"kind": "air_sortie", "volumes": [vol()]}, headers=auth(tokens["IL"]))
    tr = client.post(f"{A}/activities", json={"kind": "uav_patrol", "volumes": [vol()]}, headers=auth(tokens["TR"]))
    assert il.status_code == 201 and tr.status_code == 201, (il.text, tr.text)
    raised = [c for c in tr.json()["raised"] if c["kind"] == "separation"]
    assert len(raised) == 1
    return {"il": il.json()["activity"]["id"], "tr": tr.json()["activity"]["id"], "conflict": raised[0]["id"]}


def test_conflicts_says_a_deadline_passed_and_by_how_long(
    live: LiveServer, tokens: dict[str, str], separation: dict[str, Any], clock: FixedClock
) -> None:
    """By the service's clock: in time, nothing more; past the deadline, "OVERDUE by 12 min" (it read the same
    as one in time, while the ladder climbed)."""
    cid = separation["conflict"]
    before = cli(live, tokens["IL"], "conflicts").stdout
    assert f"{cid}  separation" in before and "OVERDUE" not in before
    clock.advance(seconds=10 * 60 + 40)  # the deadline is 10 minutes after detection
    just = cli(live, tokens["IL"], "conflicts").stdout
    assert "OVERDUE by 40 s" in just, just  # it said "OVERDUE by 0 min"
    clock.advance(seconds=12 * 60 - 40)
    late = cli(live, tokens["IL"], "conflicts").stdout
    assert "awaiting IL" in late and "OVERDUE by 12 min" in late, late


def get_activity(client: httpx.Client, token: str, activity_id: str) -> dict[str, Any]:
    r = client.get(f"{A}/activities/{activity_id}", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


# --- amend: only what was given changes ---------------------------------------------------------


def test_amend_shift_moves_only_the_window_and_closes_the_conflict(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, separation: dict[str, Any]
) -> None:
    before = get_activity(client, tokens["TR"], separation["tr"])
    listed = cli(live, tokens["TR"], "activities")
    assert listed.exit_code == 0 and f"{separation['tr']}  TR  uav_patrol  v1" in listed.stdout
    seen = cli(live, tokens["IL"], "conflicts")
    assert seen.exit_code == 0 and separation["conflict"] in seen.stdout and "awaiting IL" in seen.stdout

    dry = cli(live, tokens["TR"], "amend", separation["tr"], "--shift", "+3h", "--dry-run")
    assert dry.exit_code == 0 and "nothing sent" in dry.stdout
    assert get_activity(client, tokens["TR"], separation["tr"])["version"] == 1

    out = cli(live, tokens["TR"], "amend", separation["tr"], "--shift", "+3h", "--version", "1")
    assert out.exit_code == 0, out.output
    assert "version 1 → 2" in out.stdout and f"conflict {separation['conflict']} closed (amended)" in out.stdout
    assert "new conflict" not in out.stdout  # three hours later nothing overlaps Israel's sortie
    after = get_activity(client, tokens["TR"], separation["tr"])
    assert after["version"] == 2 and after["kind"] == before["kind"] and after["title"] == before["title"]
    (v0,), (v1,) = before["volumes"], after["volumes"]
    assert v1["geometry"] == v0["geometry"] and v1["radius_m"] == v0["radius_m"]  # footprint not retyped
    assert (v1["floor_m"], v1["ceiling_m"]) == (v0["floor_m"], v0["ceiling_m"])
    for edge in ("start", "end"):
        assert parse_utc(v1[edge], field=edge) - parse_utc(v0[edge], field=edge) == timedelta(hours=3)
    c = client.get(f"{A}/conflicts/{separation['conflict']}", headers=auth(tokens["IL"])).json()
    assert c["status"] == "resolved" and c["resolution"] == "amended"


def test_amend_band_in_feet_and_flight_levels_and_a_new_conflict(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, separation: dict[str, Any]
) -> None:
    out = cli(live, tokens["TR"], "amend", separation["tr"], "--floor", "FL50", "--ceiling", "10000ft")
    assert out.exit_code == 0, out.output
    assert "band 1000–4000 m → 1524–3048 m" in out.stdout
    assert "new conflict" in out.stdout and "awaiting" in out.stdout  # still over Israel's sortie
    v = get_activity(client, tokens["TR"], separation["tr"])["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"]) == (1524.0, 3048.0) and v["start"] == vol()["start"]
    moved = cli(
        live, tokens["TR"], "amend", separation["tr"], "--lat", "35.1183", "--lon", "36.7114", "--radius-m", "5000"
    )
    assert moved.exit_code == 0, moved.output
    assert "circle 5 km around 35.1183, 36.7114" in moved.stdout and "closed (amended)" in moved.stdout
    assert get_activity(client, tokens["TR"], separation["tr"])["version"] == 3


def test_amend_from_a_file_and_only_the_volume_named(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, tmp_path: Path
) -> None:
    body = {"kind": "exercise", "volumes": [vol(id="a", centre=HAMA), vol(id="b", centre=HAMA, start_h=6)]}
    made = client.post(f"{A}/activities", json=body, headers=auth(tokens["TR"])).json()["activity"]
    out = cli(live, tokens["TR"], "amend", made["id"], "--volume", "b", "--end", iso(T0 + timedelta(hours=9)))
    assert out.exit_code == 0, out.output
    a, b = get_activity(client, tokens["TR"], made["id"])["volumes"]
    assert a["end"] == body["volumes"][0]["end"] and b["end"] == iso(T0 + timedelta(hours=9))
    f = tmp_path / "new.json"
    f.write_text(json.dumps({"title": "Exercise, Hama (one box)", "volumes": [polygon_volume()]}), encoding="utf-8")
    out = cli(live, tokens["TR"], "amend", made["id"], "--file", str(f))
    assert out.exit_code == 0, out.output
    assert "box: new volume" in out.stdout and "a: removed" in out.stdout
    after = get_activity(client, tokens["TR"], made["id"])
    assert after["title"] == "Exercise, Hama (one box)" and after["kind"] == "exercise" and after["version"] == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--start", "10:00"], "--start: '10:00' is not a time; give date and time in UTC"),
        (["--shift", "2"], "--shift: '2' is not a duration; write it like +2h"),
        (["--shift", "+1h", "--start", "2025-04-09T10:00Z"], "either --shift"),
        (["--floor", "high"], "--floor: 'high' is not an altitude"),
        (["--floor", "1.000"], "--floor: '1.000' is ambiguous; write the number without separators"),
        (["--ceiling", "4,000ft"], "--ceiling: '4,000ft' is ambiguous"),
        (["--floor", "5000"], "the floor (5000 m) would not be below the ceiling (4000 m)"),
        (["--end", "2025-04-09T08:00Z"], "the window would end (2025-04-09T08:00:00Z) before it starts"),
        (["--version", "7"], "--version: TR-0001 has no version 7; it is at version 1"),
        (["--volume", "v9", "--shift", "+1h"], "--volume: TR-0001 has no volume v9 (its volumes: v1)"),
        (["--radius-m", "0"], "--radius-m: 0 is not a radius"),
        ([], "nothing to change"),
    ],
)
def test_amend_refuses_in_words_naming_the_option(
    live: LiveServer,
    tokens: dict[str, str],
    client: httpx.Client,
    separation: dict[str, Any],
    args: list[str],
    words: str,
) -> None:
    out = cli(live, tokens["TR"], "amend", separation["tr"], *args)
    assert out.exit_code == 2 and words in out.stderr, out.output
    assert out.stdout == ""
    assert get_activity(client, tokens["TR"], separation["tr"])["version"] == 1


def test_amend_refuses_a_stale_version_another_partys_activity_and_a_polygon_radius(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, separation: dict[str, Any]
) -> None:
    assert cli(live, tokens["TR"], "amend", separation["tr"], "--title", "second look").exit_code == 0
    stale = cli(live, tokens["TR"], "amend", separation["tr"], "--version", "1", "--shift", "+1h")
    assert stale.exit_code == 2 and "you looked at version 1, but TR-0001 is now at version 2" in stale.stderr
    theirs = cli(live, tokens["TR"], "amend", separation["il"], "--shift", "+1h")
    assert theirs.exit_code == 2 and "IL-0001 belongs to IL; only IL can change it" in theirs.stderr
    missing = cli(live, tokens["TR"], "amend", "TR-0999", "--shift", "+1h")
    assert missing.exit_code == 2 and "TR-0999: no activity with this id is visible to you" in missing.stderr
    box = client.post(
        f"{A}/activities", json={"kind": "exercise", "volumes": [polygon_volume()]}, headers=auth(tokens["TR"])
    ).json()["activity"]["id"]
    radius = cli(live, tokens["TR"], "amend", box, "--radius-m", "5000")
    assert radius.exit_code == 2 and "polygon footprint" in radius.stderr and "--file" in radius.stderr


# --- cancel, acknowledge, resolve ---------------------------------------------------------------


def test_cancel_closes_its_conflicts(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, separation: dict[str, Any]
) -> None:
    out = cli(live, tokens["TR"], "cancel", separation["tr"], "--version", "1")
    assert out.exit_code == 0, out.output
    assert f"{separation['tr']} cancelled: version 2" in out.stdout
    assert f"conflict {separation['conflict']} closed (activity cancelled)" in out.stdout
    assert get_activity(client, tokens["TR"], separation["tr"])["state"] == "cancelled"
    again = cli(live, tokens["TR"], "cancel", separation["tr"])
    assert again.exit_code == 2 and "is cancelled; it can no longer change" in again.stderr
    amend = cli(live, tokens["TR"], "amend", separation["tr"], "--shift", "+1h")
    assert amend.exit_code == 2 and "is cancelled" in amend.stderr
    assert "no unresolved conflicts" in cli(live, tokens["IL"], "conflicts").stdout


def test_acknowledge_and_resolve_a_conflict(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, separation: dict[str, Any]
) -> None:
    cid = separation["conflict"]
    acked = cli(live, tokens["IL"], "ack", cid)
    assert acked.exit_code == 0, acked.output
    assert f"{cid} acknowledged by IL at 2025-04-09T06:00:00Z" in acked.stdout
    assert "IL" in client.get(f"{A}/conflicts/{cid}", headers=auth(tokens["IL"])).json()["acknowledged"]
    twice = cli(live, tokens["IL"], "ack", cid)
    assert twice.exit_code == 2 and "already acknowledged" in twice.stderr
    observer = cli(live, tokens["US"], "resolve", cid, "--as", "accepted")
    assert observer.exit_code == 2 and "refused (403)" in observer.stderr
    amended = cli(live, tokens["TR"], "resolve", cid, "--as", "amended")
    assert amended.exit_code == 2 and "--as: 'amended' is not a resolution here" in amended.stderr
    causer = cli(live, tokens["TR"], "resolve", cid, "--as", "accepted")  # TR's notice caused it: TR amends instead
    assert causer.exit_code == 2 and "your activity caused it: amend or cancel it" in causer.stderr
    out = cli(live, tokens["IL"], "resolve", cid, "--as", "accepted", "--note", "TR holds at FL100 until 10:00Z")
    assert out.exit_code == 0, out.output
    assert f"{cid} resolved as accepted by IL" in out.stdout and "resolved (accepted)" in out.stdout
    told = cli(live, tokens["TR"], "hotline", "tail", "--no-follow")  # TR is told, in Turkish, with IL's note
    assert f"{cid} çakışması kapandı: kabul edildi (IL). Not: TR holds at FL100 until 10:00Z" in told.stdout
    c = client.get(f"{A}/conflicts/{cid}", headers=auth(tokens["IL"])).json()
    assert c["status"] == "resolved" and c["resolution"] == "accepted"
    listed = cli(live, tokens["IL"], "conflicts", "--all")
    assert listed.exit_code == 0 and f"{cid}  separation" in listed.stdout and "resolved (accepted)" in listed.stdout


def test_ack_takes_a_message_id_too(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25)  # IL-0001, which the query asks about
    sent = client.post(
        f"{A}/messages",
        json={
            "template": "query_activity",
            "params": {"ref": "IL-0001", "t1": "2025-04-09T08:00:00Z", "t2": "2025-04-09T10:00:00Z"},
            "to": ["IL"],
        },
        headers=auth(tokens["TR"]),
    )
    assert sent.status_code == 201, sent.text
    mid = sent.json()["id"]
    out = cli(live, tokens["IL"], "ack", mid)
    assert out.exit_code == 0, out.output
    assert f"{mid}  query from TR to IL  [acknowledged by IL 2025-04-09T06:00:00Z]" in out.stdout


# --- signed on the party's side -----------------------------------------------------------------


def test_amend_ack_resolve_cancel_signed_with_the_partys_key(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    tr_key, il_key = signing.KeyPair.generate(), signing.KeyPair.generate()
    db = declared_db(tmp_path / "signed.db", clock, keys={"TR": tr_key, "IL": il_key})
    signing.write_key_file(tmp_path / "tr.key", tr_key, party="TR")
    signing.write_key_file(tmp_path / "il.key", il_key, party="IL")
    server = start_server(db, clock)
    try:
        tokens = server.tokens("TR", "IL")
        for party, kind in (("IL", "air_sortie"), ("TR", "uav_patrol")):
            f = tmp_path / f"{party}.json"
            f.write_text(json.dumps({"kind": kind, "volumes": [vol()]}), encoding="utf-8")
            key = str(tmp_path / f"{party.lower()}.key")
            assert cli(server, tokens[party], "notify", str(f), "--key", key).exit_code == 0
        tr_key_opt = ["--key", str(tmp_path / "tr.key")]
        il_key_opt = ["--key", str(tmp_path / "il.key")]
        ack = cli(server, tokens["IL"], "ack", "C1", *il_key_opt)
        assert ack.exit_code == 0 and f"signed with {il_key.key_id}" in ack.stdout, ack.output
        resolved = cli(server, tokens["IL"], "resolve", "C1", "--as", "escalated", "--note", "to Baku", *il_key_opt)
        assert resolved.exit_code == 0 and f"signed with {il_key.key_id}" in resolved.stdout, resolved.output
        amended = cli(server, tokens["TR"], "amend", "TR-0001", "--shift", "-30m", *tr_key_opt)
        assert amended.exit_code == 0 and f"signed with {tr_key.key_id}" in amended.stdout, amended.output
        cancelled = cli(server, tokens["TR"], "cancel", "TR-0001", *tr_key_opt)
        assert cancelled.exit_code == 0 and f"signed with {tr_key.key_id}" in cancelled.stdout, cancelled.output
        entries = server.service.entries_after(M, 0, limit=1000)
        signers = {e["type"]: e.get("key_id") for e in entries if e["actor"] in ("TR", "IL")}
        assert signers["activity.amended"] == signers["activity.cancelled"] == tr_key.key_id
        assert signers["conflict.acknowledged"] == signers["conflict.resolved"] == il_key.key_id
        assert server.service.verify(M).ok
    finally:
        server.stop()


def test_every_new_command_has_help_with_an_example() -> None:
    for args in (["amend"], ["cancel"], ["ack"], ["resolve"], ["conflicts"], ["activities"], ["replay"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, args


def test_unreachable_service_is_one_line_and_exit_2() -> None:
    out = runner.invoke(app, ["ack", "C1", "--url", "http://127.0.0.1:9", "--token", "dcf_x"])
    assert out.exit_code == 2 and "cannot reach the service" in out.stderr and "Traceback" not in out.output


# --- the hotline from a terminal ----------------------------------------------------------------


def test_free_text_carries_the_language_the_sender_declares(live: LiveServer, tokens: dict[str, str]) -> None:
    english = cli(
        live, tokens["TR"], "hotline", "send", "--text", "Call us on the secure line.", "--lang", "en", "--to", "IL"
    )
    assert english.exit_code == 0, english.output
    assert "Call us on the secure line.  (as written, en)" in english.stdout and "note:" not in english.stderr
    turkish = cli(live, tokens["TR"], "hotline", "send", "--text", "Güvenli hattan arayın.", "--to", "IL")
    assert turkish.exit_code == 0 and "(as written, tr)" in turkish.stdout
    assert "sent as written in tr (your member's language)" in turkish.stderr and "--lang" in turkish.stderr
    shown = cli(live, tokens["IL"], "hotline", "tail", "--no-follow")
    assert "Call us on the secure line.  (as written, en)" in shown.stdout
    assert "Güvenli hattan arayın.  (as written, tr)" in shown.stdout
    bad = cli(live, tokens["TR"], "hotline", "send", "--text", "x", "--lang", "english")
    assert bad.exit_code == 2 and "--lang: 'english' is not a hotline language" in bad.stderr
    # refused by the service: nothing was sent, so nothing is said to have been "sent as written"
    refused = cli(live, tokens["TR"], "hotline", "send", "--text", "Güvenli \u202ehat", "--to", "IL")
    assert refused.exit_code == 2 and "bidirectional control" in refused.stderr, refused.output
    assert "sent as written" not in refused.stderr


def test_a_time_parameter_is_worded_once_as_utc(live: LiveServer, tokens: dict[str, str]) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25)  # IL-0001, which the query asks about
    out = cli(
        live, tokens["TR"], "hotline", "send", "--template", "query_activity", "--param", "ref=IL-0001",
        "--param", "t1=2025-04-09T20:33:00Z", "--param", "t2=2025-04-09T22:00:00+00:00", "--to", "IL",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "2025-04-09T20:33 ile 2025-04-09T22:00 UTC" in out.stdout and "Z UTC" not in out.stdout  # read in Turkish


def _tail(live: LiveServer, token: str, *args: str) -> subprocess.Popen[str]:
    """`deconflict hotline tail` as a real process following ``live``, its token from the environment and its
    output a pipe (as in `hotline tail | tee log`)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "deconflict"), "hotline", "tail", "--url", live.url, *args],
        env={"DECONFLICT_TOKEN": token, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def _lines(proc: subprocess.Popen[str], *, stderr: bool = False) -> queue.Queue[str]:
    """The lines the process writes to its stdout (or stderr), as they come."""
    q: queue.Queue[str] = queue.Queue()
    stream = proc.stderr if stderr else proc.stdout

    def pump() -> None:
        assert stream is not None
        for line in stream:
            q.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return q


def _wait_for(q: queue.Queue[str], text: str, deadline_s: float = 30.0) -> str:
    end = time.monotonic() + deadline_s
    seen = []
    while time.monotonic() < end:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"{text!r} did not arrive within {deadline_s:g} s; got {seen!r}")


def test_tail_through_a_pipe_prints_each_message_as_it_comes(live: LiveServer, tokens: dict[str, str]) -> None:
    """A real process with its stdout a pipe (as in `hotline tail | tee log`): each line arrives while it runs."""
    proc = _tail(live, tokens["IL"])
    try:
        q = _lines(proc)
        with httpx.Client(base_url=live.url, timeout=10) as c:
            for n in (1, 2):
                # the stream may not be open yet for the first: the tail starts from the record's beginning anyway
                r = c.post(
                    f"{A}/messages",
                    json={"text": f"message {n}", "lang": "en", "to": ["IL"]},
                    headers=auth(tokens["TR"]),
                )
                assert r.status_code == 201, r.text
                _wait_for(q, f"message {n}  (as written, en)")
                assert proc.poll() is None  # still following: the line came through the pipe live
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_tail_resumed_past_the_head_says_the_record_was_rewound_and_goes_on(
    live: LiveServer, tokens: dict[str, str]
) -> None:
    """`hotline tail --after N` past the record's head (the service restored from a backup since): the tail says
    that the record ends before N, then prints the messages written from then on."""
    head = live.service.entries_after(M, 0, limit=100_000)[-1]["seq"]
    proc = _tail(live, tokens["IL"], "--after", str(head + 25))
    try:
        q = _lines(proc)
        said = _wait_for(q, "the record now ends at entry")
        assert f"entry {head}, before entry {head + 25}" in said
        with httpx.Client(base_url=live.url, timeout=10) as c:
            r = c.post(
                f"{A}/messages",
                json={"text": "after the restore", "lang": "en", "to": ["IL"]},
                headers=auth(tokens["TR"]),
            )
            assert r.status_code == 201 and r.json()["seq"] == head + 1, r.text
        _wait_for(q, "after the restore  (as written, en)")
    finally:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class _Following:
    """A `hotline tail` following ``live`` (:func:`_following`): its stdout and stderr lines, and the servers started
    again in its place (stopped at the end)."""

    live: LiveServer
    proc: subprocess.Popen[str]
    out: queue.Queue[str]
    errors: queue.Queue[str]
    started: list[LiveServer] = field(default_factory=list)

    def down(self) -> None:
        """The service stopped: the tail says it will connect again."""
        self.live.stop()
        self.live.service.store.close()
        _wait_for(self.errors, "connecting again from entry")

    def up(self, service: Service, settings: Settings | None = None) -> LiveServer:
        """A service back at the same address (the tail connects to it again)."""
        again = LiveServer(service, settings or self.live.settings, port=self.live.port).start()
        self.started.append(again)
        return again


@contextmanager
def _following(live: LiveServer, token: str) -> Iterator[_Following]:
    proc = _tail(live, token)
    tail = _Following(live, proc, _lines(proc), _lines(proc, stderr=True))
    try:
        yield tail
        assert proc.poll() is None  # still following
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for again in tail.started:
            again.stop()
            again.service.store.close()


def _to_israel(url: str, token: str, text: str) -> None:
    """A free-text message to Israel, posted with ``token`` (asserted 201)."""
    r = httpx.post(f"{url}{A}/messages", json={"text": text, "lang": "en", "to": ["IL"]}, headers=auth(token))
    assert r.status_code == 201, r.text


def test_tail_goes_on_across_a_restart_of_the_service(
    live: LiveServer, tokens: dict[str, str], db: str, clock: FixedClock
) -> None:
    """The service restarts under a following `hotline tail`: the tail says so on stderr, connects again from
    the last entry it printed, and prints what comes after, nothing twice. It ended at once, silently, with
    status 0 (a walkthrough missed every later message that way)."""
    from deconflict.store import open_store

    with _following(live, tokens["IL"]) as tail:
        _to_israel(live.url, tokens["TR"], "before the restart")
        _wait_for(tail.out, "before the restart")
        tail.down()
        again = tail.up(Service(open_store(db), clock=clock))
        _to_israel(again.url, tokens["TR"], "after the restart")
        printed = []
        while not printed or "after the restart" not in printed[-1]:
            printed.append(tail.out.get(timeout=30))
        assert not any("before the restart" in line for line in printed)  # it went on where it was: nothing twice
        _wait_for(tail.errors, "reconnected; going on after entry")


def test_tail_back_on_a_record_restored_and_written_over_while_it_was_away_says_so(
    live: LiveServer, tokens: dict[str, str], db: str, clock: FixedClock, tmp_path: Path
) -> None:
    """While the tail waits to connect again, the service is restored from a backup and writes as many entries as
    were lost: the record is as long as what the tail has shown, so its position alone cannot tell. It sends the
    hash of the last entry it printed (``Last-Event-Hash``) and says that what it showed may not be in the record."""
    import sqlite3

    from deconflict.store import open_store

    with _following(live, tokens["IL"]) as tail:
        _to_israel(live.url, tokens["TR"], "before the backup")
        _wait_for(tail.out, "before the backup")
        backup = str(tmp_path / "backup.db")
        with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
            src.backup(dst)
        for n in (1, 2):
            _to_israel(live.url, tokens["TR"], f"shown then lost {n}")
            _wait_for(tail.out, f"shown then lost {n}")
        tail.down()
        with sqlite3.connect(backup) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        restored = Service(open_store(db), clock=clock)
        for n in (1, 2):  # written over to the same length before the tail is back
            restored.send_message(mechanism_id=M, actor="TR", text=f"written over {n}", lang="en", to=["IL"])
        again = tail.up(restored)
        _wait_for(tail.out, "is not the one shown here")
        _to_israel(again.url, tokens["TR"], "after the restore")
        _wait_for(tail.out, "after the restore")


def test_tail_waits_while_the_member_holds_every_stream_it_may_and_goes_on(
    live: LiveServer, tokens: dict[str, str], db: str, clock: FixedClock
) -> None:
    """Back after a restart, the service answers the tail 429 (the member already holds every stream it may: here
    one, taken by another of its clients): the tail waits as asked and tries again, instead of ending."""
    import dataclasses
    import signal

    from deconflict.store import open_store

    with _following(live, tokens["IL"]) as tail:
        _to_israel(live.url, tokens["TR"], "connected")
        _wait_for(tail.out, "connected")
        tail.down()
        settings = dataclasses.replace(live.settings, max_streams_per_member=1)
        # the tail is held still while the service comes back and the other client takes the one stream: on a
        # busy machine its next try could otherwise come first and take it (CI saw the other client get the 429)
        tail.proc.send_signal(signal.SIGSTOP)
        try:
            again = tail.up(Service(open_store(db), clock=clock), settings)
            with httpx.stream("GET", f"{again.url}{A}/events", headers=auth(tokens["IL"]), timeout=30) as held:
                tail.proc.send_signal(signal.SIGCONT)
                assert held.status_code == 200
                _wait_for(tail.errors, "the service answered 429")
                assert tail.proc.poll() is None
        finally:
            tail.proc.send_signal(signal.SIGCONT)
        _to_israel(again.url, tokens["TR"], "once a stream was free")
        _wait_for(tail.out, "once a stream was free")


def test_tail_reads_again_an_entry_its_stream_cut_short() -> None:
    """The connection drops in the middle of an entry: the tail goes on from the entry before it, not after it
    (it moved on at the entry's ``id:`` line, and so skipped it when it connected again)."""
    from deconflict.cli.hotline import _print_events

    whole = {"type": "message.sent", "hash": "ab" * 32, "message": {"id": "M5"}}
    body = f'id: 5\nevent: message.sent\ndata: {json.dumps(whole)}\n\nid: 6\nevent: message.sent\ndata: {{"mess'
    position: list[Any] = [4, None]
    with pytest.MonkeyPatch.context() as m:
        printed: list[str] = []
        m.setattr("deconflict.cli.hotline.message_text", lambda message: message["id"])
        m.setattr("deconflict.cli.hotline.say", printed.append)
        _print_events(httpx.Response(200, content=body.encode()), position)
    assert printed == ["M5"] and position == [5, "ab" * 32]


def test_tail_ends_quietly_when_the_reader_goes_away(live: LiveServer, tokens: dict[str, str]) -> None:
    """`hotline tail | head -2`: once the reader has gone, the next line ends the tail without a traceback."""
    exe = Path(sys.executable).parent / "deconflict"
    proc = subprocess.Popen(
        [str(exe), "hotline", "tail", "--url", live.url, "--token", tokens["IL"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    read_first = threading.Event()

    def reader() -> None:  # reads until "first", then goes away as head does (the reading thread closes)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "first" in line:
                break
        proc.stdout.close()
        read_first.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            c.post(f"{A}/messages", json={"text": "first", "lang": "en", "to": ["IL"]}, headers=auth(tokens["TR"]))
            assert read_first.wait(30), "the tail did not print the first message"
            end = time.monotonic() + 30
            n = 0
            while proc.poll() is None and time.monotonic() < end:  # each message is a write into the closed pipe
                n += 1
                c.post(
                    f"{A}/messages", json={"text": f"more {n}", "lang": "en", "to": ["IL"]}, headers=auth(tokens["TR"])
                )
                time.sleep(0.2)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=10)


# --- replay: natural order, in force means inside the window, from a verified bundle ---------------


@pytest.fixture
def recorded(db: str, svc: Service, tmp_path: Path) -> tuple[str, Path]:
    """A record: activities before, around and after 10:00Z, one cancelled, one between its two windows;
    twelve incidents reported to IL, awaiting it."""
    for start_h, hours in ((2, 1), (3, 2), (6, 2), (3, 3)):  # 08–09, 09–11, 12–14, 09–12
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, start_h=start_h, hours=hours)])
    svc.cancel(mechanism_id=M, actor="TR", activity_id="TR-0004")
    # 08–09 and 11–12: between them at 10:00
    two = [vol(HAMA, start_h=2, hours=1, id="a"), vol(HAMA, start_h=5, hours=1, id="b")]
    svc.notify(mechanism_id=M, actor="TR", kind="exercise", volumes=two)
    for n in range(12):
        svc.send_message(
            mechanism_id=M, actor="TR", template="incident_at", to=["IL"],
            params={"place": f"T{n}", "t1": T0 + timedelta(minutes=n), "party": "TR"},
        )  # fmt: skip
    svc.store.close()
    out = tmp_path / "record.jsonl"
    exported = runner.invoke(app, ["ledger", "export", "--db", db, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    return db, out


def test_replay_counts_in_force_by_window_and_lists_ids_in_natural_order(recorded: tuple[str, Path]) -> None:
    db, bundle = recorded
    for source in (["--db", db], ["--bundle", str(bundle)]):
        out = runner.invoke(app, ["replay", *source, "--at", "2025-04-09T10:00:00Z"])
        assert out.exit_code == 0, out.output
        assert (
            "1 activities in force (their window holds the instant); "
            "1 planned for later, 1 between two windows, 1 ended, 1 cancelled" in out.stdout
        )
        assert "TR-0002  TR  uav_patrol  v1  2025-04-09 09:00:00Z–11:00:00Z" in out.stdout
        assert "TR-0003  TR  uav_patrol  v1  later:" in out.stdout
        assert "TR-0004  TR  uav_patrol  v2  cancelled at 2025-04-09T06:00:00Z: " in out.stdout  # which, and when
        incident = next(line for line in out.stdout.splitlines() if line.strip().startswith("M1 "))
        assert "to IL, awaiting IL, deadline" in incident and "(overdue)" in incident, incident
        assert (
            "TR-0005  TR  exercise  v1  between windows: 2025-04-09 08:00:00Z–09:00:00Z, 2025-04-09 11:00" in out.stdout
        )
        ids = [
            line.split()[0] for line in out.stdout.splitlines() if line.strip().startswith("M") and "incident" in line
        ]
        assert ids == [f"M{n}" for n in sorted(int(i[1:]) for i in ids)] and "M10" in ids and "M2" in ids
        state = json.loads(runner.invoke(app, ["replay", *source, "--at", "2025-04-09T10:00:00Z", "--json"]).stdout)
        mids = [m["id"] for m in state["messages"]]
        assert mids == sorted(mids, key=lambda i: int(i[1:]))
    said = runner.invoke(app, ["replay", "--bundle", str(bundle), "--at", "2025-04-09T10:00Z"]).stdout
    assert "chain, signatures and checkpoints verified, not recomputed" in said  # what was checked, and not


def test_replay_with_a_window_keeps_what_mattered_around_the_instant(recorded: tuple[str, Path]) -> None:
    """--window-h: what was in force, open or awaited at 10:00, and what ended within the hour before; the
    same from the database (a snapshot's live piece when there is one) and from the bundle (from entry 1),
    and the whole state's cut by the same rule."""
    db, bundle = recorded
    at = ["--at", "2025-04-09T10:00:00Z"]
    whole = json.loads(runner.invoke(app, ["replay", "--db", db, *at, "--json"]).stdout)
    states = []
    for source in (["--db", db], ["--bundle", str(bundle)]):
        out = runner.invoke(app, ["replay", *source, *at, "--window-h", "1"])
        assert out.exit_code == 0, out.output
        # 08–09 ended at the window's start and the cancelled one are left out; the rest is as without it
        assert (
            "1 activities in force (their window holds the instant); "
            "1 planned for later, 1 between two windows, 0 ended, 0 cancelled" in out.stdout
        )
        assert "in the 1 h before (since 2025-04-09T09:00:00Z)" in out.stdout
        assert "12 hotline messages, 12 awaiting acknowledgement" in out.stdout
        state = json.loads(runner.invoke(app, ["replay", *source, *at, "--window-h", "1", "--json"]).stdout)
        assert state["window"] == {"since": "2025-04-09T09:00:00Z", "hours": 1.0}
        states.append(state)
    assert states[0] == states[1]
    assert {a["id"] for a in whole["activities"]} - {a["id"] for a in states[0]["activities"]} == {
        "TR-0001",
        "TR-0004",
    }
    cut = replaying.cut(whole, window=timedelta(hours=1))
    for name in replaying.TABLES:
        assert sorted(r["id"] if "id" in r else str(r) for r in cut[name]) == sorted(
            r["id"] if "id" in r else str(r) for r in states[0][name]
        ), name
    assert timedelta(hours=MOST_WINDOW_H) == replaying.KEEP  # what a live piece serves
    for bad in ("0", "49", "x"):
        refused = runner.invoke(app, ["replay", "--db", db, *at, "--window-h", bad])
        assert refused.exit_code == 2 and "--window-h" in refused.stderr, refused.output
        assert "Traceback" not in refused.output


def test_replay_says_the_instant_it_was_asked_for_to_the_fraction(recorded: tuple[str, Path]) -> None:
    """An investigator reruns the instant the header names: to the second only, it could name another state."""
    db, _ = recorded
    for asked, said in (
        ("2025-04-09T10:00:00.800Z", "2025-04-09T10:00:00.800Z"),
        ("2025-04-09T12:00:00+02:00", "2025-04-09T10:00:00Z"),
    ):
        out = runner.invoke(app, ["replay", "--db", db, "--at", asked])
        assert out.exit_code == 0, out.output
        assert f"as it stood at {said} (record up to entry" in out.stdout


def test_replay_shows_an_alert_closed_with_its_conflict_as_closed_not_awaiting(
    db: str, svc: Service, clock: FixedClock
) -> None:
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4)])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])  # C1, alert M1 to IL
    clock.advance(seconds=60)
    svc.amend(mechanism_id=M, actor="TR", activity_id="TR-0001", seen_version=1, volumes=[vol(HAMA)])
    svc.store.close()
    out = runner.invoke(app, ["replay", "--db", db, "--at", iso(clock())])
    assert out.exit_code == 0, out.output
    assert "0 awaiting acknowledgement" in out.stdout
    assert "1 closed unacknowledged:\n    M1  alert to IL: conflict C1 resolved (amended)" in out.stdout


def test_replay_report_and_timeline_refuse_a_bundle_that_does_not_verify(
    recorded: tuple[str, Path], tmp_path: Path
) -> None:
    """One edited line (an acknowledgement's time moved, a kind changed) made ``report --bundle`` print another
    median time to acknowledge and ``timeline --bundle`` another story, exit 0, while replay refused the file."""
    _, bundle = recorded
    lines = bundle.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if '"activity.notified"' in line)
    assert "uav_patrol" in lines[n]
    lines[n] = lines[n].replace("uav_patrol", "uav_patrox", 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines), encoding="utf-8")
    where = ["--lat", "34.52", "--lon", "37.63", "--radius-km", "400", "--from", "2025-04-09T00:00Z"]
    for command in (
        ["replay", "--at", "2025-04-09T10:00Z"],
        ["report", "--out", str(tmp_path / "rep")],
        ["timeline", *where, "--to", "2025-04-10T00:00Z"],
    ):
        out = runner.invoke(app, [*command, "--bundle", str(bad)])
        assert out.exit_code == 2, (command, out.output)
        assert f"{bad} does not verify, so it is not read: after" in " ".join(out.stderr.split()), out.stderr
        assert out.stdout == ""
    assert not (tmp_path / "rep").exists()
    assert runner.invoke(app, ["report", "--bundle", str(bundle), "--json"]).exit_code == 0  # the unedited copy
    both = runner.invoke(app, ["replay", "--bundle", str(bad), "--db", "x.db", "--at", "2025-04-09T10:00Z"])
    assert both.exit_code == 2 and "either --db or --bundle" in both.stderr


def test_the_live_tail_shows_an_alert_settled_by_its_conflict(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, separation: dict[str, Any]
) -> None:
    """Acknowledging the conflict settles its alert in the same entry: the live tail says so, to the second,
    so an officer following it does not try to acknowledge the alert again (and get 409)."""
    exe = Path(sys.executable).parent / "deconflict"
    proc = subprocess.Popen(
        [str(exe), "hotline", "tail", "--url", live.url, "--token", tokens["IL"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        q = _lines(proc)
        alert = _wait_for(q, "[ACK BY")
        message_id = alert.split()[1]
        c = separation["conflict"]
        r = client.post(f"{A}/conflicts/{c}/acknowledge", headers=auth(tokens["IL"]))
        assert r.status_code == 200, r.text
        line = _wait_for(q, f"{message_id}  acknowledged by IL (with conflict {c})")
        assert line[:20].endswith("Z") and "." not in line.split()[0]  # to the second, no microseconds
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_command_without_a_token_says_so() -> None:
    result = runner.invoke(app, ["conflicts", "--url", "http://127.0.0.1:9"], env={"DECONFLICT_TOKEN": ""})
    assert result.exit_code == 2
    assert "no token: give --token or set DECONFLICT_TOKEN" in result.output and "Bearer" not in result.output


def test_activities_says_when_there_are_none(live: LiveServer, tokens: dict[str, str]) -> None:
    """As ``conflicts`` does ("no unresolved conflicts"); it printed nothing at all."""
    out = cli(live, tokens["IL"], "activities")
    assert out.exit_code == 0 and out.stdout.strip() == "no activities in force or to come", out.output
    assert cli(live, tokens["IL"], "activities", "--all").stdout.strip() == "no activities"


def test_hotline_send_says_what_a_message_is_about(
    live: LiveServer, tokens: dict[str, str], separation: dict[str, Any], client: httpx.Client
) -> None:
    """``--about`` (it had none: a free text from the terminal was about nothing), as kind:id or a bare C/M id;
    a bad one is refused in words, nothing sent."""
    cid = separation["conflict"]
    out = cli(live, tokens["IL"], "hotline", "send", "--text", "Checking with the crew", "--lang", "en",
              "--about", f"activity:{separation['tr']}")  # fmt: skip
    assert out.exit_code == 0, out.output
    out = cli(live, tokens["IL"], "hotline", "send", "--text", "On it", "--lang", "en", "--about", cid)
    assert out.exit_code == 0, out.output
    sent = [m for m in client.get(f"{A}/messages", headers=auth(tokens["IL"])).json() if m.get("free_text")]
    assert [m["about"] for m in sent] == [{"kind": "activity", "id": separation["tr"]}, {"kind": "conflict", "id": cid}]
    bad = cli(live, tokens["IL"], "hotline", "send", "--text", "x", "--lang", "en", "--about", "TR-0001")
    assert bad.exit_code == 2 and "give kind:id" in bad.stderr
