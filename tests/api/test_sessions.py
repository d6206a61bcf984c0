"""Sessions over real HTTP on loopback: a revoked token's open event streams end; a member holds a limited
number of streams; guessing tokens and writing in a loop are slowed down (429 with Retry-After, on the
service's pinned clock); slow or half-sent requests time out (408) without holding the server."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from support.builders import A, M, vol
from support.live import LiveServer, SSEReader, auth, free_port, wait_until

from deconflict.api import create_app
from deconflict.api.serving import uvicorn_config
from deconflict.api.settings import Settings
from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.store import open_store


def _notice() -> dict[str, Any]:
    return {"kind": "uav_patrol", "volumes": [vol()]}


def _ended_within(reader: SSEReader, seconds: float) -> int:
    """Read the stream until it ends: how many keep-alives it sent meanwhile (the live server's, every 0.5 s of
    quiet). The stream's own clock, not this process's: on a loaded machine the wall time from here to the end
    of the stream grows with the load, the stream's turns do not (fails after ``seconds`` of wall time)."""
    began = time.monotonic()
    kept_alive = 0
    for line in reader.response.iter_lines():
        kept_alive += line.startswith(": keep-alive")
        assert time.monotonic() - began < seconds, "the stream goes on"
    return kept_alive


# --- a revoked token's streams end ---------------------------------------------------------------


def test_revoking_a_token_ends_its_open_streams(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    readers = [SSEReader(client, f"{A}/events", auth(tokens["IL"])) for _ in range(3)]
    other = SSEReader(client, f"{A}/events", auth(tokens["TR"]))
    try:
        for r in (*readers, other):
            assert r.response.status_code == 200
        assert live.service.revoke_tokens(mechanism_id="tr-il-syria", member_id="IL") == 1
        turns = [_ended_within(r, 30.0) for r in readers]
        assert max(turns) <= 4, turns  # 2 s of keep-alives at most; measured: none (revoked here, they end at once)
        assert client.get(f"{A}/events", headers=auth(tokens["IL"])).status_code == 401
        # the other member's stream goes on: it still receives what is written
        assert client.post(f"{A}/activities", json=_notice(), headers=auth(tokens["TR"])).status_code == 201
        assert "activity.notified" in {other.next_event()[1] for _ in range(len(live.service.entries_after(M, 0)))}
    finally:
        for r in (*readers, other):
            r.close()


def test_a_revocation_from_another_process_ends_the_stream_within_two_seconds(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, db: str, clock: FixedClock
) -> None:
    reader = SSEReader(client, f"{A}/events", auth(tokens["IL"]))
    try:
        elsewhere = Service(open_store(db), clock=clock)  # as `deconflict member revoke --db` does
        elsewhere.revoke_tokens(mechanism_id="tr-il-syria", member_id="IL")
        elsewhere.store.close()
        # the token cache (1 s) plus the session check (1 s): 4 keep-alives, one more for the turn under way
        assert _ended_within(reader, 30.0) <= 5
    finally:
        reader.close()


# --- streams per member --------------------------------------------------------------------------


def test_a_member_holds_at_most_eight_streams(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    assert live.settings.max_streams_per_member == 8
    readers = [SSEReader(client, f"{A}/events", auth(tokens["IL"])) for _ in range(8)]
    try:
        assert all(r.response.status_code == 200 for r in readers)
        r = client.get(f"{A}/events", headers=auth(tokens["IL"]))
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["detail"].startswith("member 'IL' already has 8 open event streams")
        # a second token of the same member counts against the same member
        second = live.service.issue_token(mechanism_id="tr-il-syria", member_id="IL")
        assert client.get(f"{A}/events", headers=auth(second)).status_code == 429
        # another member is not affected
        tr = SSEReader(client, f"{A}/events", auth(tokens["TR"]))
        assert tr.response.status_code == 200
        tr.close()
        # a stream closed frees its place
        readers.pop().close()
        again = wait_until(
            lambda: (s := SSEReader(client, f"{A}/events", auth(tokens["IL"]))).response.status_code == 200 and s,
            "a place freed",
            deadline_s=10,
        )
        readers.append(again)
    finally:
        for reader in readers:
            reader.close()


# --- rate limits ------------------------------------------------------------------------------------


def _serve(db: str, clock: FixedClock, **changes: Any) -> LiveServer:
    service = Service(open_store(db), clock=clock)
    settings = dataclasses.replace(Settings(db=db, clock=clock, stream_keepalive_s=0.5, tick_s=0.0), **changes)
    return LiveServer(service, settings).start()


def test_bad_tokens_in_a_row_are_slowed_down_by_address(db: str, clock: FixedClock) -> None:
    server = _serve(db, clock)
    try:
        good, used = server.tokens("TR", "IL").values()
        limit = server.settings.auth_failures
        with httpx.Client(base_url=server.url, timeout=10) as c:
            assert c.get(f"{A}/activities", headers=auth(used)).status_code == 200  # IL's page, signed in
            codes = [c.get(f"{A}/activities", headers=auth(f"dcf_guess{i}")).status_code for i in range(300)]
            assert codes[:limit] == [401] * limit
            assert set(codes[limit:]) == {429}
            r = c.get(f"{A}/activities", headers=auth("dcf_guess-again"))
            assert r.status_code == 429 and r.json()["field"] is None
            assert 1 <= int(r.headers["retry-after"]) <= server.settings.auth_window_s
            # while slowed down, a good token first presented now waits too (no oracle)...
            assert c.get(f"{A}/activities", headers=auth(good)).status_code == 429
            # ...but a member that had signed in from this address goes on working
            assert c.get(f"{A}/activities", headers=auth(used)).status_code == 200
            # no token at all is not a guess: still 401
            assert c.get(f"{A}/activities").status_code == 401
            clock.advance(seconds=server.settings.auth_window_s + 1)
            assert c.get(f"{A}/activities", headers=auth(good)).status_code == 200
    finally:
        server.stop()


def test_writes_per_member_are_limited_on_the_services_clock(db: str, clock: FixedClock) -> None:
    assert Settings().writes_per_member >= 300  # generous: a duty officer writes a few a minute
    server = _serve(db, clock, writes_per_member=3, writes_window_s=60.0)
    try:
        tokens = server.tokens("TR", "IL")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            codes = [
                c.post(f"{A}/activities", json=_notice(), headers=auth(tokens["TR"])).status_code for _ in range(4)
            ]
            assert codes == [201, 201, 201, 429]
            r = c.post(f"{A}/activities", json=_notice(), headers=auth(tokens["TR"]))
            assert r.status_code == 429 and int(r.headers["retry-after"]) == 60
            assert len(c.get(f"{A}/activities", headers=auth(tokens["TR"])).json()) == 3  # reads go on
            assert c.post(f"{A}/activities", json=_notice(), headers=auth(tokens["IL"])).status_code == 201
            clock.advance(seconds=30)
            assert (
                int(c.post(f"{A}/activities", json=_notice(), headers=auth(tokens["TR"])).headers["retry-after"]) == 30
            )
            clock.advance(seconds=31)
            assert c.post(f"{A}/activities", json=_notice(), headers=auth(tokens["TR"])).status_code == 201
    finally:
        server.stop()


# --- headers ----------------------------------------------------------------------------------------


def test_the_page_and_the_api_carry_the_security_headers(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    for r in (page, client.get("/web/js/main.js"), client.get(f"{A}/activities", headers=auth(tokens["TR"]))):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    for r in (
        client.get(f"{A}/activities", headers=auth(tokens["TR"])),
        client.get(f"{A}/activities"),  # an error too
        client.get("/openapi.json"),
    ):
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    with client.stream("GET", f"{A}/events", headers=auth(tokens["TR"])) as s:
        assert s.headers["cache-control"] == "no-store"
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_docs_only_when_asked_for(db: str, clock: FixedClock) -> None:
    server = _serve(db, clock, docs=True)
    try:
        r = httpx.get(f"{server.url}/docs", timeout=10)
        assert r.status_code == 200 and "swagger" in r.text.lower()
        assert httpx.get(f"{server.url}/openapi.json", timeout=10).status_code == 200
    finally:
        server.stop()


# --- slow and half-sent requests ---------------------------------------------------------------------


@pytest.fixture
def timed(db: str, clock: FixedClock) -> Iterator[str]:
    """The app served as `deconflict serve` serves it (uvicorn_config), with a 1 s request deadline."""
    port = free_port()
    settings = Settings(db=db, clock=clock, tick_s=0.0, port=port, request_timeout_s=1.0, stream_keepalive_s=0.5)
    app = create_app(settings, Service(open_store(db), clock=clock))
    server = uvicorn.Server(uvicorn_config(app, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "server started", deadline_s=10)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _half_sent(address: str, data: bytes) -> socket.socket:
    host, port = address.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(data)
    return s


def _answer(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_half_sent_requests_time_out_and_do_not_hold_the_server(timed: str) -> None:
    began = time.monotonic()
    half_headers = [_half_sent(timed, b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(100)]
    half_body = [
        _half_sent(
            timed,
            b'POST /api/v1/mechanisms/tr-il-syria/activities HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a":',
        )
        for _ in range(20)
    ]
    silent = [_half_sent(timed, b"") for _ in range(20)]
    # meanwhile the service answers others at once
    assert httpx.get(f"http://{timed}/openapi.json", timeout=5).status_code == 200
    answers = [_answer(s) for s in (*half_headers, *half_body, *silent)]
    took = time.monotonic() - began
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:40] for a in answers}
    assert b'"detail": "the request did not arrive whole within 1 s' in answers[0]
    assert all(
        b"\r\nx-content-type-options: nosniff\r\n" in a and b"content-type: application/json" in a for a in answers
    )
    assert took < 5.0, took  # measured: about 1.1 s for all 140 (the deadline is 1 s)
    for s in (*half_headers, *half_body, *silent):
        s.close()


def test_a_second_request_on_a_kept_connection_that_stops_halfway_is_answered_408(timed: str) -> None:
    """The deadline holds for each request of a kept-alive connection: the first answered, the second's headers
    cut short get their own 408 (the connection was closed without an answer, judged by the first's)."""
    s = _half_sent(timed, b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b"\r\n\r\n" not in first:
        first += s.recv(65536)
    head, _, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    length = int(
        next(v for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")) if k.lower() == b"content-length")
    )
    while len(body) < length:
        body += s.recv(65536)
    s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    answer = _answer(s)[len(body) - length :]
    s.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"the request did not arrive whole within 1 s' in answer, answer[
        :200
    ]


def test_a_head_that_does_not_arrive_whole_is_answered_408_without_content(timed: str) -> None:
    """A HEAD's answer has no content, the deadline's 408 too (it had a JSON body the client would take for the
    next answer); a request cut short after an answered HEAD on the same connection still gets its body."""
    s = _half_sent(timed, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
    answer = _answer(s)
    s.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"\r\ncontent-type: application/json" in head, answer
    assert body == b""
    s = _half_sent(timed, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b"\r\n\r\n" not in first:
        first += s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b"\r\n\r\n")  # the head alone
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    head, _, body = _answer(s).partition(b"\r\n\r\n")
    s.close()
    assert head.startswith(b"HTTP/1.1 408 ") and b'"the request did not arrive whole within 1 s' in body, body


def test_a_request_http_cannot_read_is_answered_400_in_json_as_every_error(timed: str) -> None:
    """A Content-Length that is not a number never reaches the service: the HTTP layer answers it, as the
    service answers every error (JSON ``detail`` and ``field``, the API's headers), not in its own plain text."""
    s = _half_sent(
        timed,
        b"POST /api/v1/mechanisms/tr-il-syria/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: abc\r\n\r\n{"text": "hi"}',
    )
    answer = _answer(s)
    s.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"\r\ncontent-type: application/json\r\n" in head and b"\r\nx-content-type-options: nosniff\r\n" in head
    said = json.loads(body)
    assert said["field"] is None and "Content-Length that is not a number" in said["detail"]


def test_a_request_that_arrives_whole_is_served_and_a_stream_is_not_cut(timed: str, db: str, clock: FixedClock) -> None:
    service = Service(open_store(db), clock=clock)
    token = service.issue_token(mechanism_id="tr-il-syria", member_id="TR")
    with httpx.Client(base_url=f"http://{timed}", timeout=10) as c:
        with c.stream("GET", f"{A}/events", headers=auth(token)) as s:
            lines = s.iter_lines()
            began = time.monotonic()
            while time.monotonic() - began < 2.5:  # beyond the 1 s request deadline: the stream goes on
                next(lines)
        assert c.get(f"{A}/activities", headers=auth(token)).status_code == 200
