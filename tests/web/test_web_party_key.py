"""The page where a party holds its own key: its duty officer loads the key file in the page and every write
is signed there (prepared by the service, checked and signed in the page, sent again with the signature),
as `deconflict … --key` does. In a real browser (Debian's Chromium via Playwright) against a live server on
loopback whose mechanism holds no key of either party.

Wording is read from the catalogues, never written here."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from support.browser import wait_in_page, words
from support.builders import M, vol
from support.live import LiveServer

from deconflict.client import Client
from deconflict.clock import parse_utc
from deconflict.record import signing
from deconflict.record.chain import entry_hash

KEYS = {"TR": signing.KeyPair.from_seed(bytes(range(32))), "IL": signing.KeyPair.from_seed(bytes(range(1, 33)))}


@pytest.fixture
def party_keys() -> dict[str, signing.KeyPair]:
    """Both parties sign their own entries: the service holds neither key."""
    return KEYS


@pytest.fixture
def key_files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for party, key in KEYS.items():
        out[party] = tmp_path / f"{party.lower()}.key"
        signing.write_key_file(out[party], key, party=party)
    return out


def _query_to_israel(live: LiveServer, token: str) -> str:
    """Türkiye reports an incident to Israel, signed with Türkiye's key (the CLI's client): it waits on Israel."""
    tr = Client(live.url, token, key=KEYS["TR"])
    sent = tr.send_message(template="holding", params={"ref": "TR-0001"}, to=["IL"])
    query = tr.send_message(
        template="incident_at", to=["IL"], params={"place": "T4", "t1": "2025-04-09T07:00:00Z", "party": "TR"}
    )
    assert sent["id"] and query["needs_ack"], query
    return str(query["id"])


def _entries(live: LiveServer, token: str) -> list[dict[str, Any]]:
    return list(Client(live.url, token).record_all())


def _signed_by(entry: dict[str, Any], party: str) -> bool:
    """Whether the entry is signed with the party's key, and its signature verifies over its hash."""
    key = KEYS[party]
    return entry["key_id"] == key.key_id and signing.verify(
        key.public_key, signing.entry_message(entry["hash"]), entry["signature"]
    )


def test_a_party_holding_its_own_key_acknowledges_from_the_page_signed_with_it(
    officer: Any, live: LiveServer, tokens: dict[str, str], key_files: dict[str, Path]
) -> None:
    il = officer("IL")
    page = il.page
    mid = _query_to_israel(live, tokens["TR"])
    expect(page.locator("#alarm-ack")).to_be_visible(timeout=10_000)
    page.click("#alarm-ack")
    # the service holds no key of Israel's: the page asks for the key file, and nothing is written yet
    dialog = page.locator("dialog[data-confirm=key]")
    expect(dialog).to_be_visible()
    assert not any(e["type"] == "message.acknowledged" for e in _entries(live, tokens["IL"]))
    # Türkiye's key in Israel's page: refused in words, nothing loaded, the dialog stays
    page.set_input_files("#key-file", str(key_files["TR"]))
    expect(page.locator("#key-error")).not_to_have_text("")
    assert page.evaluate("() => import('/web/js/state.js').then((m) => m.S.key === null)")
    expect(dialog).to_be_visible()
    # Israel's own: the acknowledgement goes on, signed in the page with Israel's key
    page.set_input_files("#key-file", str(key_files["IL"]))
    expect(dialog).to_be_hidden()
    expect(page.locator("#key-state")).to_be_visible()
    expect(page.locator("#key-state")).to_have_attribute("title", re.compile(re.escape(KEYS["IL"].key_id)))
    expect(page.locator("#alarm")).to_be_hidden(timeout=10_000)
    acked = [e for e in _entries(live, tokens["IL"]) if e["type"] == "message.acknowledged"]
    assert len(acked) == 1 and acked[0]["payload"]["id"] == mid, acked
    assert acked[0]["actor"] == "IL" and _signed_by(acked[0], "IL"), acked[0]
    assert page.locator("#alarm-error").text_content() == ""

    # with the key loaded, a write is signed at once: no dialog, signed with Israel's key
    sent = page.evaluate(
        """() => import('/web/js/api.js').then((m) =>
             m.api('POST', m.M('/messages'), { template: 'holding', params: { ref: 'M2' }, to: ['TR'] }))"""
    )
    assert page.locator("dialog[data-confirm=key]").count() == 0
    entry = next(e for e in _entries(live, tokens["IL"]) if e["type"] == "message.sent" and e["actor"] == "IL")
    assert entry["payload"]["id"] == sent["id"] and _signed_by(entry, "IL"), entry
    # a polygon's notice, its coordinates read back from the payload as sent
    ring = [[37.5, 34.4], [37.8, 34.4], [37.8, 34.7], [37.5, 34.7], [37.5, 34.4]]
    polygon = {**vol(), "geometry": {"type": "Polygon", "coordinates": [ring]}}
    del polygon["radius_m"]
    drawn = page.evaluate(
        "(n) => import('/web/js/api.js').then((m) => m.api('POST', m.M('/activities'), n))",
        {"kind": "exercise", "title": "drawn", "volumes": [polygon]},
    )
    assert drawn["activity"]["id"].startswith("IL-")
    # a notice (its floats written by Python's canonical JSON, not the page's) and its cancellation
    notice = {"kind": "air_sortie", "volumes": [vol(floor_m=1000.0, ceiling_m=4000.0)]}
    made = page.evaluate("(n) => import('/web/js/api.js').then((m) => m.api('POST', m.M('/activities'), n))", notice)
    amended = page.evaluate(
        """([id, body]) => import('/web/js/api.js').then((m) =>
             m.api('PUT', m.M(`/activities/${encodeURIComponent(id)}`), body))""",
        [made["activity"]["id"], {"version": made["activity"]["version"], **notice, "title": "later"}],
    )
    # Türkiye's patrol in the same place and hours: a conflict awaiting Israel, acknowledged and resolved
    tr = Client(live.url, tokens["TR"], key=KEYS["TR"])
    raised = tr.notify(kind="uav_patrol", volumes=[vol(floor_m=1000.0, ceiling_m=4000.0)])["raised"]
    assert raised, "Türkiye's patrol raised no conflict with Israel's sortie"
    conflict = raised[0]["id"]
    for path, body in (
        (f"/conflicts/{conflict}/acknowledge", None),
        (f"/conflicts/{conflict}/resolve", {"resolution": "accepted"}),
    ):
        page.evaluate(
            "([path, body]) => import('/web/js/api.js').then((m) => m.api('POST', m.M(path), body ?? undefined))",
            [path, body],
        )
    page.evaluate(
        """([id, version]) => import('/web/js/api.js').then((m) =>
             m.api('POST', m.M(`/activities/${encodeURIComponent(id)}/cancel`), { version }))""",
        [amended["activity"]["id"], amended["activity"]["version"]],
    )
    settled = [e for e in _entries(live, tokens["IL"]) if e["type"] in ("conflict.acknowledged", "conflict.resolved")]
    assert [(e["type"], e["payload"]["id"]) for e in settled if e["actor"] == "IL"] == [
        ("conflict.acknowledged", conflict),
        ("conflict.resolved", conflict),
    ], settled
    assert all(_signed_by(e, "IL") for e in settled if e["actor"] == "IL")
    kinds = ("activity.notified", "activity.notified", "activity.amended", "activity.cancelled")
    mine = [e for e in _entries(live, tokens["IL"]) if e["type"] in kinds and e["actor"] == "IL"]
    assert [e["type"] for e in mine] == list(kinds), mine
    assert all(e["actor"] == "IL" and _signed_by(e, "IL") for e in mine), mine


def _forging(mutate: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[[Any], None]:
    """A route handler standing for a service that prepares another entry than the one asked for:
    ``mutate(entry, payload)`` changes it, and the payload's text, its hash and the entry's hash are made to
    agree again, as a service bent on it would make them."""

    def forged(route: Any) -> None:
        if route.request.headers.get("deconflict-prepare") != "true":
            route.continue_()
            return
        real = route.fetch()
        doc = real.json()
        e, payload = doc["prepared"], json.loads(doc["canonical_payload"])
        mutate(e, payload)
        doc["canonical_payload"] = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        e["payload"] = payload
        e["payload_hash"] = hashlib.sha256(doc["canonical_payload"].encode()).hexdigest()
        e["hash"] = entry_hash(
            mechanism=e["mechanism"], seq=e["seq"], at=parse_utc(e["at"], field="at"), actor=e["actor"],
            type=e["type"], payload_hash=e["payload_hash"], prev_hash=e["prev_hash"],
        )  # fmt: skip
        route.fulfill(response=real, body=json.dumps(doc))

    return forged


def _another_message(e: dict[str, Any], payload: dict[str, Any]) -> None:
    payload["id"] = "M1"  # another message's acknowledgement


def _backdated(e: dict[str, Any], payload: dict[str, Any]) -> None:
    e["at"] = "2025-04-09T05:00:00Z"  # "acknowledged" an hour before the service's now


def _elsewhere(e: dict[str, Any], payload: dict[str, Any]) -> None:
    e["seq"], e["prev_hash"] = 2, "0" * 64  # over entry 2, on another chain


@pytest.mark.parametrize(
    ("mutate", "words"),
    [(_another_message, "message.acknowledged"), (_backdated, "2025-04-09T05:00:00Z"), (_elsewhere, "2")],
    ids=["another-message", "backdated", "another-place-in-the-chain"],
)
def test_the_page_signs_nothing_the_service_prepared_other_than_what_was_asked(
    officer: Any,
    live: LiveServer,
    tokens: dict[str, str],
    key_files: dict[str, Path],
    mutate: Callable[[dict[str, Any], dict[str, Any]], None],
    words: str,
) -> None:
    """A service that prepares another entry than the one asked for, its hashes made to agree, gets no
    signature: the page says so, in the catalogue's words naming what it was given, and sends nothing signed."""
    il = officer("IL")
    page = il.page
    _query_to_israel(live, tokens["TR"])
    expect(page.locator("#alarm-ack")).to_be_visible(timeout=10_000)
    signed_requests: list[str] = []
    page.on("request", lambda r: signed_requests.append(r.url) if "deconflict-signature" in r.headers else None)
    page.route("**/acknowledge", _forging(mutate))
    page.click("#alarm-ack")
    page.set_input_files("#key-file", str(key_files["IL"]))
    expect(page.locator("#alarm-error")).to_contain_text(words, timeout=10_000)
    assert signed_requests == []
    assert not any(e["type"] == "message.acknowledged" for e in _entries(live, tokens["IL"]))
    expect(page.locator("#alarm-ack")).to_be_visible()


def _load_key(page: Any, path: Path) -> None:
    """Israel's officer loads the key file before any write asks for it (the dialog opened as a write would)."""
    page.evaluate("() => { import('/web/js/signing.js').then((m) => m.askForKey()); }")
    page.set_input_files("#key-file", str(path))
    expect(page.locator("dialog[data-confirm=key]")).to_have_count(0)


SEND = """(body) => import('/web/js/api.js').then((m) => m.api('POST', m.M('/messages'), body))
            .then((d) => 'sent ' + d.text, (e) => e.message)"""


def _start(page: Any, body: dict[str, Any]) -> None:
    """A message sent from the page without waiting for it (a dialog may stand in its way)."""
    page.evaluate(f"(body) => {{ window.__said = null; ({SEND})(body).then((r) => {{ window.__said = r; }}); }}", body)


def _said(page: Any) -> str:
    """What became of the message :func:`_start` sent: ``sent TEXT``, or the page's words of refusal."""
    wait_in_page(page, lambda: page.evaluate("() => window.__said") is not None, 10)
    return str(page.evaluate("() => window.__said"))


def test_a_message_whose_words_the_service_changed_is_not_signed(
    officer: Any, live: LiveServer, tokens: dict[str, str], key_files: dict[str, Path]
) -> None:
    """Every field the officer wrote is read back from the payload: a free text made to say something
    else, or sent to one more member, is not signed."""
    page = officer("IL").page
    _load_key(page, key_files["IL"])
    body = {"text": "hold your fire", "lang": "en", "to": ["TR"]}

    def louder(e: dict[str, Any], payload: dict[str, Any]) -> None:
        payload["text"] = "ALL CLEAR, proceed"

    def wider(e: dict[str, Any], payload: dict[str, Any]) -> None:
        payload["to"] = ["TR", "US"]

    def acknowledging(e: dict[str, Any], payload: dict[str, Any]) -> None:  # a free text made an acknowledgement
        payload.update(template="holding", params={"ref": "C1"}, settles={"conflicts": ["C1"], "messages": []})

    def about(e: dict[str, Any], payload: dict[str, Any]) -> None:
        payload["about"] = {"kind": "conflict", "id": "C1"}

    refused = words("he", "key.notAsked", type="message.sent", actor="IL")
    for mutate in (louder, wider, acknowledging, about):
        page.route("**/messages", _forging(mutate))
        said = page.evaluate(SEND, body)
        page.unroute("**/messages")
        assert refused.fullmatch(said), said

    # a phrase that acknowledges, made to acknowledge what its ref does not name
    def elsewhere(e: dict[str, Any], payload: dict[str, Any]) -> None:
        payload["settles"] = {"conflicts": ["C9"], "messages": ["M9"]}

    phrase = {"template": "holding", "params": {"ref": "TR-0001"}, "to": ["TR"]}
    page.route("**/messages", _forging(elsewhere))
    said = page.evaluate(SEND, phrase)
    page.unroute("**/messages")
    assert refused.fullmatch(said), said
    assert not [e for e in _entries(live, tokens["IL"]) if e["type"] == "message.sent" and e["actor"] == "IL"]
    assert page.evaluate(SEND, body) == "sent hold your fire"
    # the spaces around a text, which the service trims, are not "other words"
    assert page.evaluate(SEND, {**body, "text": "hold on "}) == "sent hold on"


def test_an_alert_acknowledged_from_the_channel_acknowledges_its_conflict_signed(
    officer: Any, live: LiveServer, tokens: dict[str, str], key_files: dict[str, Path]
) -> None:
    """Acknowledging a conflict's alert (the hotline's route) appends the conflict's acknowledgement with the
    alert among its messages: the page signs that, and nothing that leaves the alert out."""
    page = officer("IL").page
    _load_key(page, key_files["IL"])
    Client(live.url, tokens["IL"], key=KEYS["IL"]).notify(kind="air_sortie", volumes=[vol()])
    conflict = Client(live.url, tokens["TR"], key=KEYS["TR"]).notify(kind="uav_patrol", volumes=[vol()])["raised"][0]
    alert = next(
        m["id"]
        for m in Client(live.url, tokens["IL"]).http.get(f"/mechanisms/{M}/messages").json()
        if m["type"] == "alert" and "IL" in m["to"]
    )
    ack = """(id) => import('/web/js/api.js').then((m) =>
               m.api('POST', m.M(`/messages/${id}/acknowledge`))).then(() => 'ok', (e) => e.message)"""

    def unrelated(e: dict[str, Any], payload: dict[str, Any]) -> None:
        payload["messages"] = []

    page.route("**/acknowledge", _forging(unrelated))
    assert words("he", "key.notAsked", type="conflict.acknowledged", actor="IL").fullmatch(page.evaluate(ack, alert))
    page.unroute("**/acknowledge")
    assert page.evaluate(ack, alert) == "ok"
    acked = [e for e in _entries(live, tokens["IL"]) if e["type"] == "conflict.acknowledged"]
    assert len(acked) == 1 and acked[0]["payload"]["id"] == conflict["id"] and alert in acked[0]["payload"]["messages"]
    assert _signed_by(acked[0], "IL")


def test_a_key_file_that_is_not_the_partys_key_is_refused_and_the_officer_asked_again(
    officer: Any, live: LiveServer, tokens: dict[str, str], key_files: dict[str, Path], tmp_path: Path
) -> None:
    """A damaged key file is refused when read; a whole key of Israel's the mechanism does not know is refused
    by the service, forgotten, and the file asked for again with the service's words; declining says that
    nothing was sent. Nothing of the key is left in the page's storage, and the key cannot be exported."""
    page = officer("IL").page
    damaged = tmp_path / "damaged.key"
    text = key_files["IL"].read_text(encoding="utf-8")
    other = signing.KeyPair.from_seed(bytes(range(7, 39)))
    damaged.write_text(text.replace(KEYS["IL"].public_key, other.public_key), encoding="utf-8")
    page.evaluate("() => { import('/web/js/signing.js').then((m) => m.askForKey()); }")
    page.set_input_files("#key-file", str(damaged))
    expect(page.locator("#key-error")).to_have_text(words("he", "key.damaged", name="damaged.key"))
    page.click("dialog[data-confirm=key] [data-answer=no]")
    # declined at a write: nothing sent, and said so
    _start(page, {"text": "one", "lang": "en"})
    page.click("dialog[data-confirm=key] [data-answer=no]")
    assert words("he", "key.needed").fullmatch(_said(page))
    # a key of Israel's the mechanism never registered: the service refuses it, the page asks again
    unknown = tmp_path / "unknown.key"
    signing.write_key_file(unknown, other, party="IL")
    _load_key(page, unknown)
    _start(page, {"text": "two", "lang": "en"})
    expect(page.locator("#key-error")).to_contain_text("is not registered")
    page.set_input_files("#key-file", str(key_files["IL"]))
    assert _said(page) == "sent two"
    sent = [e for e in _entries(live, tokens["IL"]) if e["type"] == "message.sent" and e["actor"] == "IL"]
    assert [e["payload"]["text"] for e in sent] == ["two"] and _signed_by(sent[0], "IL")
    stored = page.evaluate(
        """async () => ({ local: JSON.stringify(localStorage), session: JSON.stringify(sessionStorage),
                          dbs: (await indexedDB.databases()).length,
                          extractable: (await import('/web/js/state.js')).S.key.key.extractable })"""
    )
    seed = signing.b64(KEYS["IL"].seed)
    assert seed not in stored["local"] and seed not in stored["session"] and stored["dbs"] == 0
    assert stored["extractable"] is False
