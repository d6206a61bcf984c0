"""Errors that reveal nothing (issue 14), over HTTP under ``conflicts-only``: asking about another party's
hidden notice is answered exactly as asking about one that does not exist; ids are per party (IL cannot
choose ``TR-9090``, nor a Cyrillic look-alike); a message to nobody is refused.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import HAMA, T0, T4, A, M, declared_db, syria, vol
from support.live import LiveServer, auth, start_server

from deconflict.clock import FixedClock
from deconflict.model import Disclosure


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    clock = FixedClock(T0)
    mechanism = syria(disclosure=Disclosure.CONFLICTS_ONLY)
    db = declared_db(Path(tmp_path_factory.mktemp("oracles")) / "co.db", clock, mechanism=mechanism)
    live = start_server(db, clock)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tok(server: LiveServer) -> dict[str, str]:
    tokens = server.tokens()
    with httpx.Client(base_url=server.url, timeout=10) as c:  # TR's notice, far from anything of IL's
        r = c.post(f"{A}/activities", json={"kind": "uav_patrol", "volumes": [vol(T4)]}, headers=auth(tokens["TR"]))
        assert r.status_code == 201 and r.json()["activity"]["id"] == "TR-0001", r.text
        r = c.post(f"{A}/activities", json={"kind": "exercise", "volumes": [vol(HAMA)]}, headers=auth(tokens["IL"]))
        assert r.status_code == 201 and r.json()["raised"] == [], r.text
    return tokens


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


PROBES: list[tuple[str, str, str, Any]] = [
    ("read it", "GET", "/activities/{id}", None),
    ("amend it", "PUT", "/activities/{id}", {"version": 1, "title": "mine now"}),
    ("cancel it", "POST", "/activities/{id}/cancel", {"version": 1}),
    ("cancel it, no version", "POST", "/activities/{id}/cancel", None),
    (
        "a message about it",
        "POST",
        "/messages",
        {"text": "What is this?", "to": ["TR"], "about": {"kind": "activity", "id": "{id}"}},
    ),
    (
        "a phrase about it",
        "POST",
        "/messages",
        {
            "template": "query_activity",
            "params": {"ref": "{id}", "t1": "2025-04-09T08:00:00Z", "t2": "2025-04-09T09:00:00Z"},
            "about": {"kind": "activity", "id": "{id}"},
        },
    ),
]


def _fill(body: Any, ident: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, ident) for k, v in body.items()}
    return body.replace("{id}", ident) if isinstance(body, str) else body


@pytest.mark.parametrize(("case", "method", "path", "body"), PROBES, ids=[p[0] for p in PROBES])
def test_a_hidden_notice_is_answered_as_one_that_does_not_exist(
    server: LiveServer, tok: dict[str, str], http: httpx.Client, case: str, method: str, path: str, body: Any
) -> None:
    before = len(server.service.entries_after(M, 0))
    answers = []
    for ident in ("TR-0001", "TR-0999"):  # TR's hidden notice, and none at all
        kwargs = {"json": _fill(body, ident)} if body is not None else {}
        r = http.request(method, A + path.replace("{id}", ident), headers=auth(tok["IL"]), **kwargs)
        answers.append((r.status_code, r.headers["content-type"], r.text.replace(ident, "<id>")))
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 404, answers
    assert len(server.service.entries_after(M, 0)) == before


ID_CASES: list[tuple[str, str, str]] = [
    ("another party's namespace", "TR-9090", "not in IL's namespace"),
    ("a Cyrillic look-alike", "\u0422R-1378", "ASCII"),
    ("a Cyrillic look-alike of one's own", "I\u041b-0005", "ASCII"),
    ("no namespace at all", "SORTIE-1", "not in IL's namespace"),
    ("the bare prefix", "IL-", "not in IL's namespace"),
    ("lower case another's", "tr-0001", "not in IL's namespace"),
]


@pytest.mark.parametrize(("case", "ident", "words"), ID_CASES, ids=[c[0] for c in ID_CASES])
def test_a_party_chooses_ids_only_in_its_own_namespace(
    server: LiveServer, tok: dict[str, str], http: httpx.Client, case: str, ident: str, words: str
) -> None:
    body = {"id": ident, "kind": "exercise", "volumes": [vol(HAMA, start_h=6)]}
    r = http.post(f"{A}/activities", json=body, headers=auth(tok["IL"]))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "id" and words in r.json()["detail"]


def test_an_own_id_is_accepted_and_a_taken_one_is_the_partys_own(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    body = {"id": "IL-SORTIE-7", "kind": "exercise", "volumes": [vol(HAMA, start_h=8)]}
    first = http.post(f"{A}/activities", json=body, headers=auth(tok["IL"]))
    assert first.status_code == 201, first.text
    again = http.post(f"{A}/activities", json=body, headers=auth(tok["IL"]))
    assert again.status_code == 409 and again.json()["field"] == "id"


def test_a_zone_id_in_another_partys_namespace_is_refused(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    zone = {"id": "TR-PROT-9", "kind": "protected", "forbids": ["air_sortie"], "centre": list(HAMA)}
    r = http.post(
        f"{A}/zones", json={**zone, "radius_m": 2000, "valid_from": "2025-04-09T06:00:00Z"}, headers=auth(tok["IL"])
    )
    assert r.status_code == 422 and "TR's namespace" in r.json()["detail"], r.text


def test_a_message_to_nobody_is_refused(server: LiveServer, tok: dict[str, str], http: httpx.Client) -> None:
    before = len(server.service.entries_after(M, 0))
    r = http.post(f"{A}/messages", json={"text": "to whom?", "to": []}, headers=auth(tok["IL"]))
    assert r.status_code == 422 and r.json()["field"] == "to" and "nobody" in r.json()["detail"], r.text
    assert len(server.service.entries_after(M, 0)) == before


def test_a_message_not_for_the_caller_is_answered_as_one_that_does_not_exist(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    sent = http.post(f"{A}/messages", json={"text": "For the facilitator only.", "to": ["AZ"]}, headers=auth(tok["TR"]))
    assert sent.status_code == 201, sent.text
    hidden, absent = sent.json()["id"], "M9999"
    answers = []
    for ident in (hidden, absent):
        r = http.post(f"{A}/messages/{ident}/acknowledge", headers=auth(tok["IL"]))
        answers.append((r.status_code, r.text.replace(ident, "<id>")))
    assert answers[0] == answers[1] and answers[0][0] == 404, answers


def test_text_is_stored_in_nfc(server: LiveServer, tok: dict[str, str], http: httpx.Client) -> None:
    body = {"kind": "exercise", "title": "Cafe\u0301 \u05e9\u05c1\u05b8", "volumes": [vol(HAMA, start_h=10)]}
    r = http.post(f"{A}/activities", json=body, headers=auth(tok["IL"]))
    assert r.status_code == 201, r.text
    title = r.json()["activity"]["title"]
    assert title == unicodedata.normalize("NFC", body["title"]) and title.startswith("Caf\u00e9 ")
    assert http.get(f"{A}/activities/{r.json()['activity']['id']}", headers=auth(tok["IL"])).json()["title"] == title


def test_a_conflict_that_does_not_concern_the_caller_is_answered_as_one_that_does_not_exist(
    server: LiveServer, tok: dict[str, str], http: httpx.Client
) -> None:
    """TR's own track strays outside TR's notices: a conformance conflict of TR's alone. IL acknowledging or
    resolving it is answered exactly as for a conflict that does not exist (it was 403 'awaits TR, not IL')."""
    from support.builders import position

    r = http.post(f"{A}/tracks", json={"reports": [position("UAV-9", T0, HAMA, 90)]}, headers=auth(tok["TR"]))
    assert r.status_code in (200, 201), r.text
    mine = [c for c in r.json()["raised"] if c["kind"] == "conformance"]
    assert mine and mine[0]["parties"] == ["TR"], r.text
    cid = mine[0]["id"]
    before = len(server.service.entries_after(M, 0))
    for method, path, body in (
        ("POST", "/conflicts/{id}/acknowledge", None),
        ("POST", "/conflicts/{id}/resolve", {"resolution": "accepted", "note": "fine"}),
        ("GET", "/conflicts/{id}", None),
    ):
        answers = []
        for ident in (cid, "C999"):
            kwargs = {"json": body} if body is not None else {}
            r = http.request(method, A + path.replace("{id}", ident), headers=auth(tok["IL"]), **kwargs)
            answers.append((r.status_code, r.text.replace(ident, "<id>")))
        assert answers[0] == answers[1] and answers[0][0] == 404, (method, path, answers)
    assert len(server.service.entries_after(M, 0)) == before
