"""Hostile input over real HTTP on loopback (issue 14, input and errors): every refusal is a worded JSON
``{detail, field}`` naming the field, with the status the OpenAPI document promises, and changes nothing.

One server serves the whole module (every case here is refused, so none changes what the next one sees).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import T0, T4, A, M, declared_db, vol
from support.live import LiveServer, auth, start_server

from deconflict.api.settings import Settings
from deconflict.clock import FixedClock, iso
from deconflict.service import Service
from deconflict.store import open_store

ZONE = {
    "id": "TR-Z1",
    "kind": "protected",
    "forbids": ["air_sortie"],
    "centre": list(T4),
    "radius_m": 3000,
    "valid_from": iso(T0),
}


def notice(**volume: Any) -> dict[str, Any]:
    return {"kind": "uav_patrol", "volumes": [vol(**volume)]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    clock = FixedClock(T0)
    live = start_server(declared_db(Path(tmp_path_factory.mktemp("input")) / "input.db", clock), clock)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tok(server: LiveServer) -> dict[str, str]:
    return server.tokens()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


# (case, method, path, body: a document, or raw bytes sent as JSON, status, field, words in detail)
Case = tuple[str, str, str, Any, int, str | None, str]

DATES: list[Case] = [
    *[
        (
            f"volume {name} {value}",
            "POST",
            "/activities",
            {"kind": "uav_patrol", "volumes": [{**vol(), name: value}]},
            422,
            name,
            "years 2000 to 2099",
        )
        for name in ("start", "end")
        for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1970-01-01T00:00:00Z")
    ],
    ("activities end filter", "GET", "/activities?end=9999-12-31T23:59:59-05:00", None, 422, "end", "2099"),
    ("activities start filter", "GET", "/activities?start=0001-01-01T00:00:00%2B05:00", None, 422, "start", "2000"),
    ("replay at year 1", "GET", "/replay?at=0001-01-01T00:00:00%2B01:00", None, 422, "at", "2000"),
    ("replay at year 9999", "GET", "/replay?at=9999-12-31T23:00:00-02:00", None, 422, "at", "2099"),
    (
        "zone valid_from year 1",
        "POST",
        "/zones",
        {**ZONE, "valid_from": "0001-01-01T00:00:00+01:00"},
        422,
        "valid_from",  # the declaration's key: it was "zone 'TR-Z1' valid_from", which no client could find
        "2000",
    ),
    (
        "zone valid_to year 9999",
        "POST",
        "/zones",
        {**ZONE, "valid_to": "9999-12-31T23:00:00-02:00"},
        422,
        "valid_to",
        "2099",
    ),
    ("zone id of another party", "POST", "/zones", {**ZONE, "id": "IL-Z1"}, 422, "id", "zone id"),
    (
        "zone valid_to not after",
        "POST",
        "/zones",
        {**ZONE, "valid_to": iso(T0)},
        422,
        "valid_to",
        "not after valid_from",
    ),
    (
        "track at year 9999",
        "POST",
        "/tracks",
        {
            "reports": [
                {
                    "id": "T1",
                    "at": "9999-12-31T23:00:00-02:00",
                    "lat": 34.5,
                    "lon": 37.6,
                    "alt_ft": 9000,
                    "gs_kt": 100,
                    "trk_deg": 90,
                    "vs_fpm": 0,
                }
            ]
        },
        422,
        "at",
        "2099",
    ),
    (
        "track latitude of 401 digits",
        "POST",
        "/tracks",
        b'{"reports": [{"id": "T1", "at": "2025-04-09T05:59:50Z", "lat": 1'
        + b"0" * 400
        + b', "lon": 37.6, "alt_ft": 9000, "gs_kt": 100, "trk_deg": 90, "vs_fpm": 0}]}',
        422,
        "lat",
        "got a number of 401 digits",
    ),
    (
        "track without a time",
        "POST",
        "/tracks",
        {"reports": [{"id": "T1", "lat": 34.5, "lon": 37.6, "alt_ft": 9000, "gs_kt": 100, "trk_deg": 90, "vs_fpm": 0}]},
        422,
        "at",
        "at: missing",
    ),
    (
        "window of five years",
        "POST",
        "/activities",
        notice(hours=5 * 365 * 24),
        422,
        "end",
        "max_window_days",
    ),
    (
        "window from 1970 to now",
        "POST",
        "/activities",
        {"kind": "uav_patrol", "volumes": [{**vol(), "start": "1970-01-01T00:00:00Z"}]},
        422,
        "start",
        "2000",
    ),
    (
        "window from 2000 to 2099",
        "POST",
        "/activities",
        {"kind": "uav_patrol", "volumes": [{**vol(), "start": "2000-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z"}]},
        422,
        "end",
        "max_window_days",
    ),
    ("window a year ahead", "POST", "/activities", notice(start_h=365 * 24), 422, "start", "horizon_days"),
    ("preview a year ahead", "POST", "/activities/preview", notice(start_h=365 * 24), 422, "start", "horizon"),
]

TYPES: list[Case] = [
    ("floor_m true", "POST", "/activities", notice(floor_m=True), 422, "volumes.0.floor_m", "got true"),
    ("radius_m text", "POST", "/activities", notice(radius_m="2000"), 422, "volumes.0.radius_m", "got '2000'"),
    ("ceiling_m text", "POST", "/activities", notice(ceiling_m="4000"), 422, "volumes.0.ceiling_m", "number"),
    (
        "position with text",
        "POST",
        "/activities",
        notice(geometry={"type": "Point", "coordinates": [37.6, 34.5, "x"]}),
        422,
        "geometry.coordinates",
        "expected a number",
    ),
    (
        "polygon corner with true",
        "POST",
        "/activities",
        notice(
            geometry={"type": "Polygon", "coordinates": [[[37, 34], [37.1, 34], [True, 34.1], [37, 34]]]},
            radius_m=None,
        ),
        422,
        "geometry.coordinates[0][2]",
        "expected a number",
    ),
    (  # an integer beyond a double's range: refused by name (it overflowed into a 500)
        "longitude of 401 digits",
        "POST",
        "/activities",
        notice(geometry={"type": "Point", "coordinates": [10**400, 34.5]}),
        422,
        "geometry.coordinates",
        "too large",
    ),
    (
        "polygon corner of 401 digits",
        "POST",
        "/activities",
        notice(
            geometry={"type": "Polygon", "coordinates": [[[37, 34], [37.1, 34], [37.1, -(10**400)], [37, 34]]]},
            radius_m=None,
        ),
        422,
        "geometry.coordinates[0][2]",
        "too large",
    ),
    ("amend version text", "PUT", "/activities/TR-0001", {"version": "1"}, 422, "version", "whole number"),
    ("amend version true", "PUT", "/activities/TR-0001", {"version": True}, 422, "version", "got true"),
    ("zone centre text", "POST", "/zones", {**ZONE, "centre": [37.6, "34.5"]}, 422, "centre.1", "number"),
    ("zone radius text", "POST", "/zones", {**ZONE, "radius_m": "3000"}, 422, "radius_m", "number"),
    (  # one was dropped without a word: the circle was declared, the polygon given beside it ignored
        "zone geometry and centre",
        "POST",
        "/zones",
        {**ZONE, "geometry": {"type": "Point", "coordinates": [1, 2]}},
        422,
        "geometry",
        "give either geometry (GeoJSON) or centre [lon, lat] with radius_m, not both",
    ),
    ("zone applies_to_owner 1", "POST", "/zones", {**ZONE, "applies_to_owner": 1}, 422, "applies_to_owner", "true"),
    (
        "message param true",
        "POST",
        "/messages",
        {"template": "holding", "params": {"ref": True}},
        422,
        "params.ref",
        "",
    ),
]

BODIES: list[Case] = [
    (
        "about a zone without id",
        "POST",
        "/messages",
        {"text": "x", "about": {"kind": "zone"}},
        422,
        "about",
        "give kind",
    ),
    (
        "duplicate key",
        "POST",
        "/activities",
        b'{"kind": "uav_patrol", "kind": "air_sortie", "volumes": []}',
        422,
        "kind",
        "twice",
    ),
    (
        "duplicate key in a volume",
        "POST",
        "/activities",
        b'{"kind": "uav_patrol", "volumes": [{"floor_m": 1, "floor_m": 2}]}',
        422,
        "floor_m",
        "twice",
    ),
    ("NaN", "POST", "/activities", b'{"kind": "uav_patrol", "volumes": [{"floor_m": NaN}]}', 422, "body", "NaN"),
    (
        "huge number",
        "POST",
        "/activities",
        b'{"kind": "uav_patrol", "volumes": [{"floor_m": 1e999}]}',
        422,
        "body",
        "too large",
    ),
    (
        "an integer of 5,000 digits",
        "POST",
        "/activities",
        b'{"kind": "uav_patrol", "volumes": [{"floor_m": 1' + b"0" * 4999 + b"}]}",
        422,
        "body",
        "has 5,000 digits, more than any field takes",
    ),
    ("not JSON", "POST", "/activities", b"{not json", 422, "body", "not valid JSON"),
    ("a list body", "POST", "/activities", b"[]", 422, "body", "expected an object"),
    ("a report not an object", "POST", "/tracks", {"reports": [7]}, 422, "reports", "report 0: expected an object"),
    ("an empty object", "POST", "/activities", b"{}", 422, "kind", "missing"),
    ("empty volumes", "POST", "/activities", {"kind": "uav_patrol", "volumes": []}, 422, "volumes", "at least 1"),
    ("no body", "POST", "/activities", b"", 422, "body", "missing"),
    ("not UTF-8", "POST", "/activities", b'{"title": "\xff"}', 422, "body", "UTF-8"),
    ("NUL in a title", "POST", "/activities", {**notice(), "title": "T4\u0000patrol"}, 422, "title", "U+0000"),
    ("escape in a title", "POST", "/activities", {**notice(), "title": "\u001b[2J"}, 422, "title", "U+001B"),
    ("C1 control in a title", "POST", "/activities", {**notice(), "title": "a\u009bb"}, 422, "title", "U+009B"),
    ("bidi override in a title", "POST", "/activities", {**notice(), "title": "\u202eartsiS"}, 422, "title", "U+202E"),
    (
        "bidi isolate in a message",
        "POST",
        "/messages",
        {"text": "ok \u2066x\u2069", "to": ["IL"]},
        422,
        "text",
        "U+2066",
    ),
    ("escape in a message", "POST", "/messages", {"text": "\u001b]0;owned\u0007", "to": ["IL"]}, 422, "text", "U+001B"),
    (
        "bidi in a resolve note",
        "POST",
        "/conflicts/C1/resolve",
        {"resolution": "accepted", "note": "\u202dx"},
        422,
        "note",
        "U+202D",
    ),
    ("control in a key", "POST", "/activities", {**notice(), "ti\u0007tle": "x"}, 422, "ti\u0007tle", "U+0007"),
    (
        "amended by hand",  # the service records it when an activity is amended; by hand it told a false story
        "POST",
        "/conflicts/C1/resolve",
        {"resolution": "amended"},
        422,
        "resolution",
        "resolution: must be one of 'accepted' or 'escalated'",
    ),
    (
        "two problems both named",  # it said "(and 1 more problems)", leaving the client to guess the second
        "POST",
        "/conflicts/C1/resolve",
        {"as": "accepted"},
        422,
        "resolution",
        "resolution: missing; it is required; also as: is not a field this request takes",
    ),
    (
        "four problems, two named and the rest counted",
        "POST",
        "/conflicts/C1/resolve",
        {"a": 1, "b": 2, "c": 3},
        422,
        "resolution",
        "resolution: missing; it is required; also a: is not a field this request takes; "
        "b: is not a field this request takes; and 1 more problem",
    ),
]


def _send(http: httpx.Client, token: str, method: str, path: str, body: Any, **headers: str) -> httpx.Response:
    head = {**auth(token), **headers}
    if isinstance(body, bytes):
        return http.request(method, A + path, content=body, headers={"content-type": "application/json", **head})
    if body is None:
        return http.request(method, A + path, headers=head)
    return http.request(method, A + path, json=body, headers=head)


CASES = DATES + TYPES + BODIES


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "status", "field", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_by_name_and_changes_nothing(
    server: LiveServer,
    tok: dict[str, str],
    http: httpx.Client,
    case: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
    words: str,
) -> None:
    before = len(server.service.entries_after(M, 0))
    r = _send(http, tok["TR"], method, path, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert set(doc) <= {"detail", "field", "code"}, doc
    assert words in doc["detail"], doc
    if field is not None:
        assert doc["field"] == field, doc
    assert len(server.service.entries_after(M, 0)) == before


def test_signed_at_header_out_of_range_is_refused_by_name(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    headers = {
        "Deconflict-Signed-At": "9999-12-31T23:59:59-01:00",
        "Deconflict-Entry-Hash": "0" * 64,
        "Deconflict-Key-Id": "ed25519:00",
        "Deconflict-Signature": "AAAA",
    }
    r = _send(http, tok["TR"], "POST", "/activities", notice(), **headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "Deconflict-Signed-At" and "2099" in r.json()["detail"]
    r = _send(http, tok["TR"], "POST", "/activities", notice(), **headers)  # the connection still serves
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"kind": "uav_patrol"}'),
        ("application/x-www-form-urlencoded", b"kind=uav_patrol"),
        (None, b"{}"),
    ],
)
def test_a_body_not_declared_as_json_gets_a_worded_415(
    server: LiveServer, tok: dict[str, str], http: httpx.Client, content_type: str | None, body: bytes
) -> None:
    headers = {**auth(tok["TR"]), **({"content-type": content_type} if content_type else {})}
    r = http.post(A + "/activities", content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["field"] == "body" and "Content-Type: application/json" in r.json()["detail"]


def test_an_over_size_body_gets_a_json_413_declared_or_sent(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    limit = server.settings.max_body_bytes
    big = b'{"kind": "uav_patrol", "title": "' + b"x" * limit + b'", "volumes": []}'
    declared = http.post(
        A + "/activities", content=big, headers={**auth(tok["TR"]), "content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["field"] == "body", declared.text
    assert f"{limit:,} bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent in pieces, counted as it comes
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    sent = http.post(
        A + "/activities", content=chunks(), headers={**auth(tok["TR"]), "content-type": "application/json"}
    )
    assert sent.status_code == 413 and sent.headers["content-type"].startswith("application/json"), sent.text
    got = http.get(A + "/activities/TR-0001", headers=auth(tok["TR"]))  # a GET declaring a large body
    assert got.status_code in (404, 200)


def test_text_is_normalised_to_nfc(server: LiveServer, tok: dict[str, str], http: httpx.Client) -> None:
    before = len(server.service.entries_after(M, 0))
    r = http.post(A + "/activities/preview", json={**notice(), "title": "Cafe\u0301"}, headers=auth(tok["TR"]))
    assert r.status_code == 200, r.text
    assert len(server.service.entries_after(M, 0)) == before


def test_every_error_is_documented_with_the_one_error_schema(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            codes = {"401", "429"} | ({"422"} if op.get("parameters") or op.get("requestBody") else set())
            if method in ("post", "put", "delete"):
                codes |= {"400", "409", "413", "415", "422"}
            if "{" in path:
                codes |= {"403", "404"}
            for code in codes:
                answer = op["responses"].get(code)
                assert answer is not None, f"{method} {path} does not document {code}"
                assert answer["content"]["application/json"]["schema"] == error, (method, path, code)


def test_a_method_not_allowed_names_every_method_of_the_path(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    r = http.request("PATCH", A + "/zones", headers=auth(tok["TR"]))
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST", r.headers
    assert r.json() == {"detail": "method PATCH is not allowed here; this path takes GET, HEAD, POST", "field": None}


def _report(n: int) -> dict[str, Any]:
    return {
        "id": f"UAV-{n:05d}",
        "at": "2025-04-09T05:59:58.250Z",
        "lat": 34.123456 + n * 1e-6,
        "lon": 37.654321 - n * 1e-6,
        "alt_ft": 15250.5,
        "gs_kt": 118.75,
        "trk_deg": 271.25,
        "vs_fpm": -512.5,
    }


def test_the_tracks_cap_is_what_a_too_large_batch_meets(tmp_path: Path) -> None:
    """With the default 1 MiB body limit, a full batch of realistic reports fits, and one more report is
    refused by the cap, by name (was: a cap of 10,000 the body limit made unreachable)."""
    from deconflict.api.routes.tracks import MAX_REPORTS

    clock = FixedClock(T0)
    db = declared_db(tmp_path / "cap.db", clock)
    settings = Settings(db=db, clock=clock, tick_s=0.0)
    assert settings.max_body_bytes == 1_048_576
    live = LiveServer(Service(open_store(db), clock=clock), settings).start()
    try:
        token = live.tokens("TR")["TR"]
        batch = [_report(n) for n in range(MAX_REPORTS + 1)]
        body = json.dumps({"reports": batch}).encode()
        assert len(body) < settings.max_body_bytes
        with httpx.Client(base_url=live.url, timeout=30) as c:
            r = c.post(A + "/tracks", content=body, headers={**auth(token), "content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "reports" and f"at most {MAX_REPORTS} items" in r.json()["detail"]
    finally:
        live.stop()


def test_a_method_not_allowed_at_a_literal_path_names_that_paths_methods(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    r = http.request("OPTIONS", A + "/activities/preview", headers=auth(tok["TR"]))
    assert r.status_code == 405 and r.headers["allow"] == "POST", r.headers  # not .../{activity_id}'s GET, PUT


def test_after_an_internal_error_the_clients_next_request_is_answered(
    server: LiveServer, tok: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect's 500 closes the connection (Starlette raises the error again once the answer is sent): it
    says so, so that a client keeping connections alive opens a new one for its next request instead of
    having it reset and lost (found by a walkthrough, with an input that overflowed)."""

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a defect, for this test")

    with httpx.Client(base_url=server.url, headers=auth(tok["TR"]), timeout=10) as client:
        assert client.get(f"{A}/waiting").status_code == 200  # a kept-alive connection
        with monkeypatch.context() as m:
            m.setattr(server.service, "waiting", broken)
            r = client.get(f"{A}/waiting")
        assert r.status_code == 500 and r.headers["connection"] == "close"
        assert "internal error" in r.json()["detail"] and "defect" not in r.text  # no trace, no inner words
        assert client.get(f"{A}/waiting").status_code == 200
