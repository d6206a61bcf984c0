"""The HTTP API over real HTTP on loopback, on a real SQLite file, with a real stream client."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import API, BAKU, HAMA, T0, T4, A, M, declared_db, syria, vol
from support.live import LiveServer, SSEReader, auth, free_port, next_events_of, post_notice, start_server

from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.model import Disclosure

FAR = HAMA  # 100 km and more from T4


def notice(kind: str = "uav_patrol", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "volumes": [vol()], **extra}


# --- who may do what: every role against every route ------------------------------------------

ROLES = ("anon", "bad", "revoked", "other", "US", "AZ", "IL", "TR")


def _role_headers(live: LiveServer, tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    other = syria(id="other-mech", zones=())
    live.service.declare_mechanism(mechanism=other, demo_custody=True)
    revoked = live.service.issue_token(mechanism_id=M, member_id="IL")
    live.service.revoke_tokens(mechanism_id=M, member_id="IL")
    fresh_il = live.service.issue_token(mechanism_id=M, member_id="IL")
    return {
        "anon": {},
        "bad": auth("dcf_not-a-real-token"),
        "revoked": auth(revoked),
        "other": auth(live.service.issue_token(mechanism_id="other-mech", member_id="TR")),
        "US": auth(tokens["US"]),
        "AZ": auth(tokens["AZ"]),
        "IL": auth(fresh_il),
        "TR": auth(tokens["TR"]),
    }


NOAUTH = {"anon": 401, "bad": 401, "revoked": 401}
READ_ALL = {**NOAUTH, "other": 403, "US": 200, "AZ": 200, "IL": 200, "TR": 200}
PARTY_ONLY = {**NOAUTH, "other": 403, "US": 403, "AZ": 403}

TRACK = {
    "id": "T1",
    "at": "2025-04-09T06:00:00Z",
    "lat": 34.52,
    "lon": 37.63,
    "alt_ft": 9000,
    "gs_kt": 150,
    "trk_deg": 90,
    "vs_fpm": 0,
}

ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", f"{API}/me", None, {**NOAUTH, "other": 200, "US": 200, "AZ": 200, "IL": 200, "TR": 200}),
    ("GET", f"{API}/mechanisms", None, {**NOAUTH, "other": 200, "US": 200, "AZ": 200, "IL": 200, "TR": 200}),
    ("GET", A, None, READ_ALL),
    ("GET", f"{A}/activities", None, READ_ALL),
    ("GET", f"{A}/activities/TR-0001", None, READ_ALL),
    ("POST", f"{A}/activities/preview", notice(), {**PARTY_ONLY, "IL": 200, "TR": 200}),
    ("POST", f"{A}/tracks", {"reports": [TRACK]}, {**PARTY_ONLY, "IL": 200, "TR": 200}),
    ("GET", f"{A}/tracks", None, READ_ALL),
    ("POST", f"{A}/activities", notice(), {**PARTY_ONLY, "IL": 201, "TR": 201}),
    ("PUT", f"{A}/activities/TR-0001", {"version": 1, "title": "x"}, {**PARTY_ONLY, "IL": 403, "TR": 200}),
    ("POST", f"{A}/activities/TR-0001/cancel", {"version": 1}, {**PARTY_ONLY, "IL": 403, "TR": 200}),
    ("GET", f"{A}/zones", None, READ_ALL),
    (
        "POST",
        f"{A}/zones",
        {
            "id": "Z1",
            "kind": "restricted",
            "forbids": ["air_sortie"],
            "centre": FAR,
            "radius_m": 3000,
            "valid_from": iso(T0),
        },
        {**PARTY_ONLY, "IL": 201, "TR": 409},
    ),
    ("DELETE", f"{A}/zones/IL-RL-PALMYRA", None, {**PARTY_ONLY, "TR": 403, "IL": 200}),
    ("GET", f"{A}/conflicts", None, READ_ALL),
    ("GET", f"{A}/conflicts/C1", None, READ_ALL),
    ("POST", f"{A}/conflicts/C1/acknowledge", None, {**PARTY_ONLY, "IL": 403, "TR": 200}),  # C1 awaits TR
    (
        "POST",
        f"{A}/conflicts/C1/resolve",
        {"resolution": "accepted"},
        # IL caused C1: it amends or cancels; the facilitator accepts only once TR acknowledged (docs/roles.md)
        {**PARTY_ONLY, "US": 403, "AZ": 403, "IL": 403, "TR": 200},
    ),
    ("GET", f"{A}/record", None, READ_ALL),
    ("GET", f"{A}/messages", None, READ_ALL),
    (
        "POST",
        f"{A}/messages",
        {"template": "acknowledged", "params": {"ref": "C1"}},
        {**PARTY_ONLY, "AZ": 201, "IL": 201, "TR": 201},
    ),
    # M1 is TR's alert: IL may not read it, so it is answered as a message that does not exist
    ("POST", f"{A}/messages/M1/acknowledge", None, {**PARTY_ONLY, "AZ": 403, "IL": 404, "TR": 200}),
    ("GET", f"{A}/lines", None, READ_ALL),
    ("GET", f"{A}/waiting", None, READ_ALL),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_every_role_against_every_route(
    live: LiveServer,
    tokens: dict[str, str],
    client: httpx.Client,
    method: str,
    path: str,
    body: Any,
    expected: dict[str, int],
) -> None:
    headers = _role_headers(live, tokens)
    assert client.post(f"{A}/activities", json=notice(), headers=headers["TR"]).status_code == 201
    assert client.post(f"{A}/activities", json=notice("air_sortie"), headers=headers["IL"]).status_code == 201
    got = {}
    for role in ROLES:  # the permitted roles come last, so a refused attempt never changes what they find
        r = client.request(method, path, json=body, headers=headers[role])
        got[role] = r.status_code
        assert r.headers["content-type"].startswith("application/json")
        if r.status_code == 401:
            assert r.headers.get("www-authenticate") == "Bearer"
    assert got == expected


# --- the stream ---------------------------------------------------------------------------------


def test_notify_reaches_the_counterpart_stream(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    seen = live.service.entries_after(M, 0)[-1]["seq"]
    reader = SSEReader(client, f"{A}/events?after={seen}", auth(tokens["IL"]))
    try:
        assert client.post(f"{A}/activities", json=notice(), headers=auth(tokens["IL"])).status_code == 201
        _, event, _ = reader.next_event()
        assert event == "activity.notified"
        r = client.post(f"{A}/activities", json=notice("air_sortie"), headers=auth(tokens["TR"]))
        sent = time.monotonic()  # from the answer: the stream's delay, not the notice's own work on a busy machine
        assert r.status_code == 201 and r.json()["raised"][0]["kind"] == "separation"
        events = [reader.next_event() for _ in range(2)]
        delay = time.monotonic() - sent
        assert [e[1] for e in events] == ["activity.notified", "conflict.detected"]
        conflict = events[1][2]["payload"]
        assert conflict["awaiting"] == ["IL"] and conflict["other_activity"] == "IL-0001"
        assert delay < 5.0
    finally:
        reader.close()


def test_stream_resumes_with_no_gap_and_no_duplicate(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    for _ in range(3):
        client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    reader = SSEReader(client, f"{A}/events", auth(tokens["IL"]))
    first = [reader.next_event()[0] for _ in range(4)]
    reader.close()
    assert first == [1, 2, 3, 4]
    for _ in range(3):
        client.post(f"{A}/activities", json=notice("air_sortie"), headers=auth(tokens["IL"]))
    last = live.service.entries_after(M, 0)[-1]["seq"]
    reader = SSEReader(client, f"{A}/events", {**auth(tokens["IL"]), "Last-Event-ID": str(first[-1])})
    rest = [reader.next_event()[0] for _ in range(last - first[-1])]
    reader.close()
    assert rest == list(range(first[-1] + 1, last + 1))


def test_a_stream_asked_to_go_on_past_the_head_says_the_record_was_rewound(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    """A client that resumes after an entry the record does not hold (the service restored from a backup, or
    failed over to a copy without its last entries) is told so, and its stream goes on from the head: the
    entries written from then on, which take those sequence numbers again, reach it. It did not: the stream
    waited silently until the record grew past the id it was given, and a duty officer saw no new alert."""
    client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    head = live.service.entries_after(M, 0, limit=100_000)[-1]["seq"]
    for url, headers in [
        (f"{A}/events?after={head + 40}", auth(tokens["IL"])),
        (f"{A}/events", {**auth(tokens["IL"]), "Last-Event-ID": str(head + 7)}),
    ]:
        reader = SSEReader(client, url, headers)
        try:
            seq, event, data = reader.next_event()
            assert (seq, event) == (head, "rewound") and data["head"] == head and data["asked"] > head
            sent = client.post(
                f"{A}/messages", json={"text": "still there?", "to": ["IL"]}, headers=auth(tokens["TR"])
            ).json()
            head = sent["seq"]
            ((seq, _, entry),) = next_events_of(reader, {"message.sent"}, 1)
            assert seq == sent["seq"] and entry["message"]["text"] == "still there?"
        finally:
            reader.close()
    reader = SSEReader(client, f"{A}/events?after={head}", auth(tokens["IL"]))  # at the head: nothing to say
    try:
        client.post(f"{A}/messages", json={"text": "and now?", "to": ["IL"]}, headers=auth(tokens["TR"]))
        seq, event, _ = reader.next_event()
        assert (seq, event) == (head + 1, "message.sent")
    finally:
        reader.close()


def test_a_stream_that_holds_another_entry_where_it_goes_on_is_told_so(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    """``Last-Event-Hash``: the hash of the entry the client holds where it goes on. The record's own: nothing
    is said. Another (the record restored from a backup and written over to the same length since, where the
    sequence numbers alone cannot tell): ``rewound`` with ``differs``, and the stream goes on. Malformed: 422."""
    client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    last = live.service.entries_after(M, 0, limit=100_000)[-1]
    for another in (False, True):
        held = "0" * 64 if another else last["hash"]
        said = {"asked": last["seq"], "head": last["seq"], "differs": True} if another else None
        headers = {**auth(tokens["IL"]), "Last-Event-ID": str(last["seq"]), "Last-Event-Hash": held}
        reader = SSEReader(client, f"{A}/events", headers)
        try:
            sent = client.post(f"{A}/messages", json={"text": "there?", "to": ["IL"]}, headers=auth(tokens["TR"]))
            if said is not None:
                assert reader.next_event() == (last["seq"], "rewound", said)
            ((seq, _, _),) = next_events_of(reader, {"message.sent"}, 1)
            assert seq == sent.json()["seq"]
        finally:
            reader.close()
        last = live.service.entries_after(M, 0, limit=100_000)[-1]
    for bad in ("abc", "0" * 63, "G" * 64):
        r = client.get(f"{A}/events", headers={**auth(tokens["IL"]), "Last-Event-Hash": bad})
        assert r.status_code == 422 and r.json()["field"] == "last-event-hash", r.text
    for bad in ("abc", "-1", "+5", "1_0", "1.0", "٣"):  # only an event's id as the stream sends it: digits
        with client.stream("GET", f"{A}/events", headers={**auth(tokens["IL"]), "Last-Event-ID": bad.encode()}) as r:
            assert r.status_code == 422, (bad, r.status_code)  # not a stream (the body is not read before)
            r.read()
            assert r.json()["field"] == "last-event-id" and "sequence number" in r.json()["detail"], (bad, r.text)


def test_preview_shows_the_conflicts_a_notice_would_raise_and_writes_nothing(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    assert client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"])).status_code == 201
    head = live.service.entries_after(M, 0)[-1]["seq"]
    r = client.post(f"{A}/activities/preview", json=notice("air_sortie"), headers=auth(tokens["IL"]))
    assert r.status_code == 200, r.text
    (found,) = [c for c in r.json()["conflicts"] if c["kind"] == "separation"]
    assert found["other_party"] == "TR" and found["other_activity"] == "TR-0001" and found["distance_m"] == 0
    assert live.service.entries_after(M, 0)[-1]["seq"] == head and live.service.conflicts(M) == []
    bad = client.post(f"{A}/activities/preview", json=notice(kind="strike"), headers=auth(tokens["IL"]))
    assert bad.status_code == 422 and bad.json()["field"] == "kind"


def test_track_reports_over_http(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    r = client.post(f"{A}/tracks", json={"reports": [TRACK]}, headers=auth(tokens["TR"]))
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert [c["kind"] for c in r.json()["raised"]] == ["conformance"]  # TR notified nothing there
    seen = client.get(f"{A}/tracks", headers=auth(tokens["IL"])).json()["tracks"]
    assert [t["track"] for t in seen] == ["TR/T1"]
    bad = client.post(f"{A}/tracks", json={"reports": [{**TRACK, "lat": 95}]}, headers=auth(tokens["TR"]))
    assert bad.status_code == 422 and bad.json()["field"] == "lat" and "report 0 (id 'T1')" in bad.json()["detail"]


def test_a_large_answer_comes_compressed_to_a_client_that_accepts_gzip_and_a_small_one_never(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    reports = [{**TRACK, "id": f"T{i:04d}", "lat": 34.0 + i * 0.001} for i in range(1000)]
    r = client.post(f"{A}/tracks", json={"reports": reports}, headers=auth(tokens["TR"]))
    assert r.status_code == 200, r.text[:300]
    zipped = client.get(f"{A}/tracks", headers={**auth(tokens["TR"]), "Accept-Encoding": "gzip"})
    plain = client.get(f"{A}/tracks", headers={**auth(tokens["TR"]), "Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json() and len(plain.json()["tracks"]) == 1000
    assert int(zipped.headers["content-length"]) * 4 < len(plain.content)  # sent: compressed at least 4 to 1
    assert "accept-encoding" in zipped.headers["vary"].lower()
    small = client.get(f"{API}/me", headers={**auth(tokens["TR"]), "Accept-Encoding": "gzip"})
    assert small.status_code == 200 and "content-encoding" not in small.headers
    page_file = client.get("/web/vendor/leaflet/leaflet.js", headers={"Accept-Encoding": "gzip"})  # 147 KB
    assert page_file.status_code == 200 and "content-encoding" not in page_file.headers  # one form for its ETag


# --- errors -------------------------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("POST", f"{A}/activities", "{not json", 422, "not valid JSON"),
    ("POST", f"{A}/activities", {"volumes": [vol()]}, 422, "kind"),
    ("POST", f"{A}/activities", notice(kind="strike"), 422, "kind"),
    ("POST", f"{A}/activities", {"kind": "uav_patrol", "volumes": [vol(floor_m="high")]}, 422, "floor_m"),
    ("POST", f"{A}/activities", {"kind": "uav_patrol", "volumes": [vol(floor_m=5000)]}, 422, "floor_m"),
    ("POST", f"{A}/activities", {"kind": "uav_patrol", "volumes": [vol(end="2025-04-09T07:00:00Z")]}, 422, "end"),
    (
        "POST",
        f"{A}/activities",
        {"kind": "uav_patrol", "volumes": [vol(BAKU)]},
        422,
        "area of responsibility",
    ),
    ("POST", f"{A}/activities", {"kind": "uav_patrol", "volumes": [vol(radius_m=600_000)]}, 422, "radius_m"),
    ("POST", f"{A}/activities", {"kind": "uav_patrol", "volumes": [vol(colour="red")]}, 422, "colour"),
    ("GET", f"{A}/activities/NOPE", None, 404, "NOPE"),
    ("GET", f"{A}/activities?bbox=1,2,3", None, 422, "four numbers, min_lon,min_lat,max_lon,max_lat (got 3)"),
    ("GET", f"{A}/activities?start=yesterday", None, 422, "start"),
    ("GET", f"{A}/conflicts?status=maybe", None, 422, "status"),
    ("GET", f"{A}/conflicts/C99", None, 404, "C99"),
    ("PUT", f"{A}/activities/TR-0001", {"version": 7, "title": "x"}, 409, "version 1"),
    ("POST", f"{A}/conflicts/C99/resolve", {"resolution": "ignored"}, 422, "resolution"),
    ("GET", f"{A}/events?after=-1", None, 422, "after"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"), BAD_REQUESTS, ids=[f"{b[0]} {b[1]} {b[4]}" for b in BAD_REQUESTS]
)
def test_bad_requests_get_a_clear_json_error_and_change_nothing(
    live: LiveServer,
    tokens: dict[str, str],
    client: httpx.Client,
    method: str,
    path: str,
    body: Any,
    status: int,
    words: str,
) -> None:
    client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    before = len(live.service.entries_after(M, 0))
    kwargs: dict[str, Any] = (
        {"content": body, "headers": {**auth(tokens["TR"]), "content-type": "application/json"}}
        if isinstance(body, str)
        else {"json": body, "headers": auth(tokens["TR"])}
    )
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert len(live.service.entries_after(M, 0)) == before


def test_request_size_limit(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    big = {"kind": "uav_patrol", "title": "x" * 400_000, "volumes": [vol()]}
    r = client.post(f"{A}/activities", json=big, headers=auth(tokens["TR"]))
    assert r.status_code == 413
    assert live.service.activities(M) == []


# --- disclosure ---------------------------------------------------------------------------------


def _conflicts_only_server(tmp_path: Path) -> tuple[LiveServer, dict[str, str]]:
    clock = FixedClock(T0)
    server = start_server(
        declared_db(tmp_path / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY)), clock
    )
    return server, server.tokens()


def test_conflicts_only_shows_the_counterpart_only_the_overlap(tmp_path: Path) -> None:
    server, tok = _conflicts_only_server(tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            first = c.post(
                f"{A}/activities",
                json={"kind": "uav_patrol", "volumes": [vol(T4, radius_m=20_000)]},
                headers=auth(tok["TR"]),
            ).json()["seq"]
            c.post(
                f"{A}/activities",
                json={"kind": "uav_patrol", "volumes": [vol(FAR, radius_m=5_000)]},
                headers=auth(tok["TR"]),
            )
            r = c.post(
                f"{A}/activities",
                json={"kind": "air_sortie", "volumes": [vol((37.90, 34.52), radius_m=10_000)]},
                headers=auth(tok["IL"]),
            )
            assert [x["kind"] for x in r.json()["raised"]] == ["separation"]

            seen = {a["id"]: a for a in c.get(f"{A}/activities", headers=auth(tok["IL"])).json()}
            assert set(seen) == {"IL-0001", "TR-0001"}  # TR-0002 conflicts with nothing: IL never sees it
            partial = seen["TR-0001"]
            assert partial["partial"] is True and partial["volumes"] == []
            (part,) = partial["overlap"]
            # the overlap is TR's circle cut by IL's circle grown by the separation: far smaller than TR's notice
            assert part["geometry"]["type"] == "Polygon"
            lons = [p[0] for p in part["geometry"]["coordinates"][0]]
            assert min(lons) > 37.63 and (part["floor_m"], part["ceiling_m"]) == (1000, 4000)
            assert c.get(f"{A}/activities/TR-0002", headers=auth(tok["IL"])).status_code == 404
            assert "history" in c.get(f"{A}/activities/TR-0001", headers=auth(tok["TR"])).json()

            facilitator = {a["id"]: a for a in c.get(f"{A}/activities", headers=auth(tok["AZ"])).json()}
            assert set(facilitator) == {"IL-0001", "TR-0001"} and all(a["partial"] for a in facilitator.values())

            reader = SSEReader(c, f"{A}/events?after={first - 1}", auth(tok["IL"]))
            events = [reader.next_event() for _ in range(4)]
            reader.close()
            kinds = [(e[1], "payload" in e[2]) for e in events]
            assert kinds == [
                ("activity.notified", False),  # TR-0001: withheld, hashes only
                ("activity.notified", False),  # TR-0002
                ("activity.notified", True),  # IL's own
                ("conflict.detected", True),
            ]
            assert events[0][2]["withheld"] is True and len(events[0][2]["payload_hash"]) == 64
    finally:
        server.stop()


def test_streams_open_together_each_get_their_own_readers_view(tmp_path: Path) -> None:
    """Three members' streams woken by the same commits (the hub reads the record once for all of them): each
    reader gets its own view, its language's wording of an alert, a notice withheld under conflicts-only, and
    every stream is what the record's page gives the same member."""
    server, tok = _conflicts_only_server(tmp_path)
    try:
        with httpx.Client(base_url=server.url) as c:
            head = c.get(f"{A}/record", params={"after": 0, "limit": 5000}, headers=auth(tok["TR"])).json()
            start = head["next_after"]
            readers = {m: SSEReader(c, f"{A}/events?after={start}", auth(tok[m])) for m in ("TR", "IL", "AZ")}
            for party, centre in (("TR", T4), ("IL", (37.90, 34.52)), ("TR", (37.95, 34.55))):
                r = c.post(
                    f"{A}/activities",
                    json={"kind": "uav_patrol", "volumes": [vol(centre, radius_m=10_000)]},
                    headers=auth(tok[party]),
                )
                assert r.status_code == 201, r.text
            streamed: dict[str, list[dict[str, Any]]] = {}
            for member, reader in readers.items():
                page = c.get(f"{A}/record", params={"after": start}, headers=auth(tok[member])).json()["entries"]
                assert len(page) >= 9  # three notices, two conflicts, their alerts and copies
                streamed[member] = [reader.next_event()[2] for _ in page]
                reader.close()
                assert streamed[member] == page, member
            alerts = [e for e in streamed["IL"] if e["type"] == "message.sent" and "message" in e]
            assert alerts and all(e["message"]["lang"] == "he" for e in alerts)
            assert [e for e in streamed["TR"] if "message" in e and e["message"]["lang"] != "tr"] == []
            withheld = {m: {e["seq"] for e in entries if e.get("withheld")} for m, entries in streamed.items()}
            assert withheld["TR"] and withheld["IL"] and withheld["TR"] != withheld["IL"]
    finally:
        server.stop()


def test_full_disclosure_shows_whole_notices(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> None:
    client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    seen = client.get(f"{A}/activities", headers=auth(tokens["IL"])).json()
    assert [a["id"] for a in seen] == ["TR-0001"] and "partial" not in seen[0] and seen[0]["volumes"]


# --- durability ---------------------------------------------------------------------------------


def test_restart_loses_nothing(db: str, clock: FixedClock) -> None:
    server = start_server(db, clock)
    tok = server.tokens("TR", "IL")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.post(f"{A}/activities", json=notice(), headers=auth(tok["TR"]))
        c.post(f"{A}/activities", json=notice("air_sortie"), headers=auth(tok["IL"]))
        before = (
            c.get(f"{A}/activities", headers=auth(tok["IL"])).json(),
            c.get(f"{A}/conflicts", headers=auth(tok["IL"])).json(),
        )
    server.stop()
    server.service.store.close()
    again = start_server(db, clock)
    try:
        with httpx.Client(base_url=again.url, timeout=10) as c:
            after = (
                c.get(f"{A}/activities", headers=auth(tok["IL"])).json(),
                c.get(f"{A}/conflicts", headers=auth(tok["IL"])).json(),
            )
            assert after == before
            r = c.post(f"{A}/activities", json=notice(), headers=auth(tok["TR"]))
            assert [x["other_activity"] for x in r.json()["raised"]] == ["IL-0001"]
    finally:
        again.stop()


# --- the contract ---------------------------------------------------------------------------------


def test_openapi_documents_every_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "deconflict"
    for path, methods in spec["paths"].items():
        assert path.startswith(API)
        for method, op in methods.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body and "$ref" in body:
                name = body["$ref"].rsplit("/", 1)[1]
                assert spec["components"]["schemas"][name].get("examples"), f"{name} has no example"
    ids = [op["operationId"] for methods in spec["paths"].values() for op in methods.values()]
    assert len(set(ids)) == len(ids) and "acknowledge_message" in ids  # each its function's name, once


def test_schemathesis_finds_no_server_error(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, tmp_path: Path
) -> None:
    """Fuzz the OpenAPI (schemathesis) against the live server with state to reach: no 5xx."""
    client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    client.post(f"{A}/activities", json=notice("air_sortie"), headers=auth(tokens["IL"]))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'headers = {{ Authorization = "Bearer {tokens["TR"]}" }}\n'
        "[parameters]\n"
        f'"path.mechanism_id" = "{M}"\n'
        '"path.activity_id" = "TR-0001"\n'
        '"path.conflict_id" = "C1"\n'
        '"path.zone_id" = "IL-RL-PALMYRA"\n',
        encoding="utf-8",
    )
    exe = Path(sys.executable).parent / "schemathesis"
    done = subprocess.run(
        [
            str(exe),
            "--config-file",
            str(config),
            "run",
            f"{live.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--exclude-path-regex",
            "events$",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--max-time",
            "30",  # a fresh seed each run; test_input_schemathesis.py runs every phase and check for 60 s
        ],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-4000:]


def test_demo_server_prints_tokens_and_serves_the_same_data_after_a_restart(tmp_path: Path) -> None:
    """`deconflict demo --db FILE --port P` as a real process: curl-like use of two printed tokens."""
    db = tmp_path / "demo.db"
    port = free_port()
    exe = Path(sys.executable).parent / "deconflict"

    def start() -> tuple[subprocess.Popen[str], dict[str, str]]:
        proc = subprocess.Popen(
            [str(exe), "demo", "--db", str(db), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        tokens: dict[str, str] = {}
        assert proc.stdout is not None
        while len(tokens) < 4:
            line = proc.stdout.readline()
            assert line, "demo exited before printing its tokens"
            found = re.match(r"\s*(TR|IL|AZ|US)\s+(dcf_\S+)", line)
            if found:
                tokens[found.group(1)] = found.group(2)
        deadline = time.monotonic() + 120  # a generous deadline on the condition, for a busy machine
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
                return proc, tokens
            except httpx.TransportError:
                assert proc.poll() is None, "demo exited"
                assert time.monotonic() < deadline, "demo did not start serving"
                time.sleep(0.1)

    proc, tokens = start()
    try:
        base = f"http://127.0.0.1:{port}{A}"
        now = time.time()
        soon = {
            "geometry": {"type": "Point", "coordinates": T4},
            "radius_m": 10000,
            "floor_m": 1000,
            "ceiling_m": 4000,
            "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 7200)),
            "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 10800)),
        }
        with httpx.Client(timeout=60) as c:
            head = c.get(f"{base}/record", headers=auth(tokens["IL"])).json()["next_after"]
            reader = SSEReader(c, f"{base}/events?after={head}", auth(tokens["IL"]), read_s=60)
            assert (
                c.post(
                    f"{base}/activities", json={"kind": "air_sortie", "volumes": [soon]}, headers=auth(tokens["IL"])
                ).status_code
                == 201
            )
            assert (
                c.post(
                    f"{base}/activities", json={"kind": "uav_patrol", "volumes": [soon]}, headers=auth(tokens["TR"])
                ).status_code
                == 201
            )
            # only the events this test is about: the service also sends checkpoints, line checks and
            # alerts on the same stream, whenever its clock says so
            wanted = next_events_of(reader, {"activity.notified", "conflict.detected"}, 3)
            reader.close()
            assert [e[1] for e in wanted] == ["activity.notified", "activity.notified", "conflict.detected"]
            assert [e[2]["actor"] for e in wanted[:2]] == ["IL", "TR"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    proc, again = start()
    try:
        assert again == tokens
        with httpx.Client(timeout=60) as c:
            listed = c.get(f"http://127.0.0.1:{port}{A}/conflicts", headers=auth(tokens["IL"])).json()
            assert [x["kind"] for x in listed] == ["separation"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert os.path.exists(db)


def test_hotline_over_http_alert_in_the_readers_language_ack_and_escalation(db: str, clock: FixedClock) -> None:
    server = start_server(db, clock, tick_s=0.05)
    try:
        tok = server.tokens("TR", "IL", "AZ")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            reader = SSEReader(c, f"{A}/events?after=0", auth(tok["TR"]))
            c.post(f"{A}/activities", json=notice(), headers=auth(tok["TR"]))
            c.post(f"{A}/activities", json=notice("air_sortie"), headers=auth(tok["IL"]))
            alert = None
            while alert is None:
                _, event, data = reader.next_event()
                if event == "message.sent" and data.get("message", {}).get("type") == "alert":
                    alert = data["message"]
            reader.close()
            assert alert["lang"] == "tr" and alert["to"] == ["TR"] and "IL-0001" in alert["text"]
            clock.advance(seconds=11 * 60)  # past the deadline: the ticker records rung 1
            deadline = time.monotonic() + 30  # the next tick (0.1 s) on a machine that may be loaded
            while True:
                got = c.get(f"{A}/messages", headers=auth(tok["AZ"])).json()
                steps = {m["id"]: m["escalation_steps"] for m in got}
                if steps.get(alert["id"]) == 1:
                    break
                assert time.monotonic() < deadline, steps
                time.sleep(0.05)
            r = c.post(f"{A}/messages/{alert['id']}/acknowledge", headers=auth(tok["TR"]))
            assert r.status_code == 200 and r.json()["acknowledged_at"] is not None
            assert c.post(f"{A}/messages/{alert['id']}/acknowledge", headers=auth(tok["IL"])).status_code == 404
            sent = c.post(
                f"{A}/messages", json={"template": "holding", "params": {"ref": "C1"}}, headers=auth(tok["TR"])
            )
            assert sent.status_code == 201 and sent.json()["lang"] == "tr"
            il_view = c.get(f"{A}/messages", headers=auth(tok["IL"])).json()
            holding = next(m for m in il_view if m["id"] == sent.json()["id"])
            assert holding["lang"] == "he" and holding["rtl"] is True
            bad = c.post(f"{A}/messages", json={"template": "holding", "params": {}}, headers=auth(tok["TR"]))
            assert bad.status_code == 422 and "ref" in bad.json()["detail"]
            assert set(c.get(f"{A}/lines", headers=auth(tok["AZ"])).json()) == {"IL", "TR"}
    finally:
        server.stop()


def test_the_channel_as_it_ends_is_its_newest_messages(live: LiveServer, tokens: dict[str, str]) -> None:
    """``GET .../messages?newest=true`` (what the page shows): the last ``limit`` messages the caller may read,
    oldest of them first; the first ``limit`` without it. A wrong value is refused naming ``newest``."""
    for n in range(7):
        live.service.send_message(mechanism_id=M, actor="TR", text=f"note {n}", to=["IL"] if n % 2 else ["AZ"])
    with httpx.Client(base_url=live.url, headers=auth(tokens["IL"])) as c:
        first = c.get(f"{A}/messages", params={"limit": 2}).json()
        last = c.get(f"{A}/messages", params={"limit": 2, "newest": "true"}).json()
        refused = c.get(f"{A}/messages", params={"newest": "latest"})
    assert [m["text"] for m in first] == ["note 1", "note 3"]
    assert [m["text"] for m in last] == ["note 3", "note 5"]
    assert refused.status_code == 422 and refused.json()["field"] == "newest"
    query = {"template": "incident_at", "params": {"place": "T4", "t1": "2025-04-09T08:00", "party": "TR"}}
    asked = live.service.send_message(mechanism_id=M, actor="TR", to=["IL"], **query)
    with httpx.Client(base_url=live.url, headers=auth(tokens["IL"])) as c:
        waits = c.get(f"{A}/messages", params={"awaiting": "true"}).json()
    assert [m["id"] for m in waits] == [asked["id"]] and waits[0]["awaiting"] == ["IL"]


def test_hotline_tail_without_follow_prints_the_whole_channel_page_by_page(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    """``hotline tail --no-follow`` prints every message the member may read, once and in order, however many
    pages the channel takes (it printed the first 500 only), and none it may not read."""
    from typer.testing import CliRunner

    from deconflict.cli import app
    from deconflict.cli.hotline import TAIL_PAGE

    notes = TAIL_PAGE + 12
    for n in range(1, notes + 1):
        to = ["AZ"] if n % 100 == 0 else ["IL"]  # every hundredth to the facilitator only
        live.service.send_message(mechanism_id=M, actor="TR", text=f"note {n}.", to=to)
    tail = CliRunner().invoke(app, ["hotline", "tail", "--url", live.url, "--token", tokens["IL"], "--no-follow"])
    assert tail.exit_code == 0, tail.output
    assert re.findall(r"note (\d+)\.", tail.output) == [str(n) for n in range(1, notes + 1) if n % 100]


def test_hotline_cli_send_ack_and_tail_against_the_live_service(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    from typer.testing import CliRunner

    from deconflict.cli import app

    runner = CliRunner()
    client.post(f"{A}/activities", json=notice(), headers=auth(tokens["TR"]))
    client.post(f"{A}/activities", json=notice("air_sortie"), headers=auth(tokens["IL"]))
    base = ["--url", live.url]
    sent = runner.invoke(
        app, ["hotline", "send", *base, "--token", tokens["TR"], "--template", "holding", "--param", "ref=C1"]
    )
    assert sent.exit_code == 0, sent.output
    assert "response from TR to AZ,IL" in sent.output and "C1" in sent.output
    # "holding" about C1 from the party C1 awaits acknowledged C1 and settled its alert M1 with it
    c1 = client.get(f"{A}/conflicts/C1", headers=auth(tokens["AZ"])).json()
    assert c1["status"] == "acknowledged" and set(c1["acknowledged"]) == {"TR"}
    acked = runner.invoke(app, ["hotline", "ack", "M1", *base, "--token", tokens["TR"]])
    assert acked.exit_code == 2 and "already acknowledged by TR" in acked.output
    tail = runner.invoke(app, ["hotline", "tail", *base, "--token", tokens["IL"], "--no-follow"])
    assert tail.exit_code == 0 and "M2" in tail.output and "M1" not in tail.output  # M1 went to TR only
    refused = runner.invoke(app, ["hotline", "ack", "M1", *base, "--token", tokens["IL"]])
    assert refused.exit_code == 2 and "refused (404)" in refused.output  # M1 is not IL's to read
    bad = runner.invoke(
        app, ["hotline", "send", *base, "--token", tokens["TR"], "--template", "holding", "--param", "ref"]
    )
    assert bad.exit_code == 2 and "name=value" in bad.output
    down = runner.invoke(
        app, ["hotline", "tail", "--url", "http://127.0.0.1:9", "--token", tokens["IL"], "--no-follow"]
    )
    assert down.exit_code == 2 and "cannot reach" in down.output


def test_conflicts_whose_window_ended_before_start_are_left_out(
    live: LiveServer, tokens: dict[str, str], clock: FixedClock
) -> None:
    """``GET .../conflicts?start=T``: the conflicts whose window ends after T (what the page asks for the
    acknowledged ones, which otherwise pile up for as long as the mechanism runs); a bad instant is refused
    naming ``start``."""
    post_notice(live, tokens["TR"], "uav_patrol", 34.52, 37.63)
    post_notice(live, tokens["IL"], "air_sortie", 34.53, 37.70)  # C1, 2-4 h from now
    c1 = live.service.conflict(M, "C1")
    with httpx.Client(base_url=live.url, timeout=10, headers=auth(tokens["IL"])) as c:

        def ids(query: str) -> list[str]:
            r = c.get(f"{A}/conflicts{query}")
            assert r.status_code == 200, r.text
            return [x["id"] for x in r.json()]

        before_end = iso(clock() + timedelta(hours=3, minutes=59))
        assert c1["end"] == iso(clock() + timedelta(hours=4))
        assert ids(f"?start={before_end}") == ["C1"] == ids("?status=open&start=" + before_end)
        assert ids(f"?start={c1['end']}") == [] == ids("?status=open&start=" + c1["end"])
        assert ids("") == ["C1"]  # no start: every one, whatever its window
        bad = c.get(f"{A}/conflicts", params={"start": "yesterday"})
        assert bad.status_code == 422 and bad.json()["field"] == "start"


def test_the_picture_exports_leave_what_ended_days_ago_to_replay(
    live: LiveServer, tokens: dict[str, str], clock: FixedClock
) -> None:
    """``picture.geojson``, ``.kml`` and ``.kmz`` (what GIS clients poll) carry the live picture: what is in force
    or to come and what ended in the last day. Unbounded, they carried every activity ever notified: 61 MB of
    GeoJSON, 7.2 s, after 14 months of notices."""
    post_notice(live, tokens["TR"], "uav_patrol", 34.52, 37.63)  # TR-0001, 2-4 h from now
    clock.advance(seconds=3 * 24 * 3600)
    post_notice(live, tokens["TR"], "uav_patrol", 34.0, 38.5)  # TR-0002
    with httpx.Client(base_url=live.url, timeout=10, headers=auth(tokens["TR"])) as c:
        doc = c.get(f"{A}/picture.geojson").json()
        kml = c.get(f"{A}/picture.kml").text
        clock.advance(seconds=5 * 3600)  # TR-0002 ended an hour ago: still in the picture, as past
        later = c.get(f"{A}/picture.geojson").json()
    assert {f["properties"].get("activity") for f in doc["features"]} - {None} == {"TR-0002"}
    assert "TR-0002" in kml and "TR-0001" not in kml
    assert {f["properties"].get("activity") for f in later["features"]} - {None} == {"TR-0002"}


def test_the_live_picture_judges_a_notice_seen_in_part_by_the_part_seen_not_its_hidden_end(tmp_path: Path) -> None:
    """Under conflicts-only another party's notice is listed in the picture exports, as by ``GET
    .../activities?start=``, while a part its reader sees has not ended over a day ago: never by the notice's
    own end, which the reader may not learn. Israel's sortie runs three days; Türkiye's patrol overlapped its
    first two hours. Two days on, Türkiye's picture no longer shows the sortie, which is still in force."""
    server, tok = _conflicts_only_server(tmp_path)
    clock = server.service.clock
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            post_notice(server, tok["IL"], "air_sortie", T4[1], T4[0], 2, 74, radius_m=10_000)  # three days
            post_notice(server, tok["TR"], "uav_patrol", T4[1], T4[0], 2, 4, radius_m=10_000)  # its first 2 h
            assert assert_ids(c, tok["TR"]) == ({"IL-0001", "TR-0001"}, {"IL-0001", "TR-0001"})  # the part seen
            assert isinstance(clock, FixedClock)
            clock.advance(seconds=2 * 24 * 3600)  # the overlap ended 44 h ago; the sortie runs another day
            assert assert_ids(c, tok["TR"]) == (set(), set())
            assert assert_ids(c, tok["IL"]) == ({"IL-0001"}, {"IL-0001"})  # its own: whole, still in force
    finally:
        server.stop()


def assert_ids(c: httpx.Client, token: str) -> tuple[set[str], set[str]]:
    """The activities a member's picture.geojson shows, and those ``GET .../activities?start=`` (a day back)
    lists."""
    doc = c.get(f"{A}/picture.geojson", headers=auth(token)).json()
    shown = {f["properties"]["activity"] for f in doc["features"] if f["properties"].get("activity")}
    me = c.get("/api/v1/me", headers=auth(token)).json()
    since = iso(parse_utc(me["now"], field="now") - timedelta(days=1))
    listed = {a["id"] for a in c.get(f"{A}/activities", params={"start": since}, headers=auth(token)).json()}
    return shown, listed
