"""The role table over real HTTP: who may do what to a conflict and a hotline message, each row tried by
every member of the Syria mechanism (TR and IL parties, AZ the facilitator, US the observer) on a fresh
service, the refused ones first so that a refusal never changes what the permitted one finds.

The rules (docs/roles.md): only a party a conflict awaits acknowledges it; observers never write, not
even an acknowledgement of a message sent to them; resolving as ``accepted`` needs the awaited party
(itself, or the facilitator once every awaited party acknowledged); the party whose activity caused a
conflict never resolves it by hand (it amends or cancels, and the conflict closes by itself); the
facilitator may escalate any conflict. Every refusal is 403 and records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support.builders import HAMA, T4, A, M
from support.live import LiveServer, auth, post_notice


@dataclass
class World:
    """A service with two open separation conflicts: ``by_il`` (IL's sortie over TR's patrol: awaits TR)
    and ``by_tr`` (TR's patrol over IL's sortie: awaits IL), each with its alert to the awaited party, and
    a free-text query from TR to the observer."""

    live: LiveServer
    client: httpx.Client
    tokens: dict[str, str]
    by_il: str
    by_tr: str
    alert_to_tr: str
    to_observer: str

    def as_(self, role: str) -> dict[str, str]:
        return auth(self.tokens[role])

    def record_size(self) -> int:
        return len(self.live.service.entries_after(M, 0, limit=100_000))


def _alert(client: httpx.Client, token: str, conflict: str) -> str:
    messages = client.get(f"{A}/messages", headers=auth(token)).json()
    found = [m["id"] for m in messages if (m.get("about") or {}).get("id") == conflict and m["type"] == "alert"]
    assert found, messages
    return str(found[0])


@pytest.fixture
def world(live: LiveServer, tokens: dict[str, str], client: httpx.Client) -> World:
    post_notice(live, tokens["TR"], "uav_patrol", T4[1], T4[0])
    by_il = post_notice(live, tokens["IL"], "air_sortie", T4[1], T4[0])["raised"][0]
    assert by_il["awaiting"] == ["TR"]
    post_notice(live, tokens["IL"], "air_sortie", HAMA[1], HAMA[0])
    by_tr = post_notice(live, tokens["TR"], "uav_patrol", HAMA[1], HAMA[0])["raised"][0]
    assert by_tr["awaiting"] == ["IL"]
    query = {"text": "Please confirm you read this.", "lang": "en", "to": ["US"]}
    sent = client.post(f"{A}/messages", json=query, headers=auth(tokens["TR"]))
    assert sent.status_code == 201, sent.text
    return World(
        live, client, tokens, by_il["id"], by_tr["id"], _alert(client, tokens["TR"], by_il["id"]), sent.json()["id"]
    )


Step = Callable[[World, str], httpx.Response]


def ack_conflict(which: str) -> Step:
    return lambda w, role: w.client.post(f"{A}/conflicts/{getattr(w, which)}/acknowledge", headers=w.as_(role))


def resolve(which: str, how: str) -> Step:
    def step(w: World, role: str) -> httpx.Response:
        body = {"resolution": how, "note": f"{role} resolves as {how}"}
        return w.client.post(f"{A}/conflicts/{getattr(w, which)}/resolve", json=body, headers=w.as_(role))

    return step


def acknowledged(which: str) -> Callable[[World], None]:
    """Before the row: every party the conflict awaits acknowledges it."""

    def prepare(w: World) -> None:
        cid = getattr(w, which)
        for party in w.live.service.conflict(M, cid)["awaiting"]:
            w.live.service.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=cid)

    return prepare


def nothing(w: World) -> None:
    """Before the row: nothing."""


def ack_message(which: str) -> Step:
    return lambda w, role: w.client.post(f"{A}/messages/{getattr(w, which)}/acknowledge", headers=w.as_(role))


def phrase(template: str, which: str) -> Step:
    def step(w: World, role: str) -> httpx.Response:
        body = {"template": template, "params": {"ref": getattr(w, which)}}
        return w.client.post(f"{A}/messages", json=body, headers=w.as_(role))

    return step


NOT_YOURS = frozenset({403, 404})
"""A message not addressed to the reader's party: refused, as forbidden or, where the reader may not
read it, as one that does not exist (the disclosure rule answers hidden and absent alike)."""

TABLE: list[tuple[str, Callable[[World], None], Step, dict[str, int | frozenset[int]]]] = [
    (
        "acknowledge a conflict awaiting TR",
        nothing,
        ack_conflict("by_il"),
        {"US": 403, "AZ": 403, "IL": 403, "TR": 200},
    ),
    (
        "acknowledge a conflict awaiting IL",
        nothing,
        ack_conflict("by_tr"),
        {"US": 403, "AZ": 403, "TR": 403, "IL": 200},
    ),
    (
        "resolve as accepted before the awaited party said anything",
        nothing,
        resolve("by_il", "accepted"),
        {"US": 403, "AZ": 403, "IL": 403, "TR": 200},
    ),
    (
        "resolve as accepted once the awaited party acknowledged",
        acknowledged("by_il"),
        resolve("by_il", "accepted"),
        {"US": 403, "IL": 403, "AZ": 200, "TR": 409},
    ),
    (
        "resolve as accepted by the causer, even after the awaited party acknowledged",
        acknowledged("by_tr"),
        resolve("by_tr", "accepted"),
        {"US": 403, "TR": 403, "IL": 200, "AZ": 409},
    ),
    (
        "resolve as escalated by the facilitator",
        nothing,
        resolve("by_tr", "escalated"),
        {"US": 403, "TR": 403, "AZ": 200, "IL": 409},
    ),
    (
        "resolve as escalated by the awaited party",
        nothing,
        resolve("by_tr", "escalated"),
        {"US": 403, "TR": 403, "IL": 200, "AZ": 409},
    ),
    (
        "acknowledge the alert sent to TR",
        nothing,
        ack_message("alert_to_tr"),
        {"US": 403, "AZ": 403, "IL": NOT_YOURS, "TR": 200},
    ),
    (
        "acknowledge a message sent to the observer",
        nothing,
        ack_message("to_observer"),
        {"US": 403, "AZ": 403, "IL": NOT_YOURS},
    ),
    (
        "send on the hotline",
        nothing,
        phrase("holding", "by_tr"),
        {"US": 403, "AZ": 403, "TR": 201, "IL": 201},  # a facilitator holds no activity
    ),
]


@pytest.mark.parametrize(("what", "prepare", "step", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_the_role_table(
    world: World, what: str, prepare: Callable[[World], None], step: Step, expected: dict[str, int | frozenset[int]]
) -> None:
    prepare(world)
    got: dict[str, Any] = {}
    for role in expected:  # refused ones first
        before = world.record_size()
        r = step(world, role)
        got[role] = r.status_code
        assert r.headers["content-type"].startswith("application/json")
        if r.status_code >= 400:
            assert world.record_size() == before, f"{role}: a refused request wrote to the record"
            assert r.json()["detail"], r.text
    wanted = {role: got[role] if isinstance(e, frozenset) and got[role] in e else e for role, e in expected.items()}
    assert got == wanted, what


def test_a_phrase_settles_only_what_awaits_its_sender(world: World) -> None:
    """'Received and acknowledged: C1' from a party C1 does not await is a message, not an acknowledgement."""
    assert phrase("acknowledged", "by_il")(world, "IL").status_code == 201
    assert phrase("holding", "by_tr")(world, "TR").status_code == 201
    assert "IL" not in world.live.service.conflict(M, world.by_il)["acknowledged"]
    assert "TR" not in world.live.service.conflict(M, world.by_tr)["acknowledged"]
    assert phrase("acknowledged", "by_il")(world, "TR").status_code == 201
    assert list(world.live.service.conflict(M, world.by_il)["acknowledged"]) == ["TR"]


def test_refusals_say_who_may(world: World) -> None:
    r = ack_message("to_observer")(world, "US")
    assert r.status_code == 403 and "observer" in r.json()["detail"]
    acknowledged("by_tr")(world)
    r = resolve("by_tr", "accepted")(world, "TR")
    assert r.status_code == 403 and "caused" in r.json()["detail"]
    r = resolve("by_il", "accepted")(world, "AZ")
    assert r.status_code == 403 and "TR" in r.json()["detail"] and "acknowledged" in r.json()["detail"]


def test_nothing_awaits_an_observer(world: World) -> None:
    """An observer never answers, so a phrase that asks for an acknowledgement is not sent to it (it would
    climb the ladder for ever); free text for its information is."""
    incident = {"template": "incident_at", "params": {"place": "T4", "t1": "2025-04-09T06:00:00Z", "party": "TR"}}
    before = world.record_size()
    r = world.client.post(f"{A}/messages", json={**incident, "to": ["US"]}, headers=world.as_("TR"))
    assert r.status_code == 422 and r.json()["field"] == "to" and "observes" in r.json()["detail"]
    r = world.client.post(f"{A}/messages", json={**incident, "to": ["IL", "US"]}, headers=world.as_("TR"))
    assert r.status_code == 422 and world.record_size() == before
    r = world.client.post(f"{A}/messages", json={**incident, "to": ["IL", "AZ"]}, headers=world.as_("TR"))
    assert r.status_code == 201, r.text
    seen = world.client.get(f"{A}/messages", headers=world.as_("US")).json()
    assert [m["needs_ack"] for m in seen if m["id"] == world.to_observer] == [False]
