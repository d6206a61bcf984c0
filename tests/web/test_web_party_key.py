"""The page where a party holds its own key: its duty officer loads the key file in the page and every write
is signed there (prepared by the service, checked and signed in the page, sent again with the signature),
as `deconflict … --key` does. In a real browser (Debian's Chromium via Playwright) against a live server on
loopback whose mechanism holds no key of either party.

Wording is read from the catalogues, never written here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from support.builders import vol
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
    """Türkiye asks Israel about an activity, signed with Türkiye's key (the CLI's client): it waits on Israel."""
    tr = Client(live.url, token, key=KEYS["TR"])
    sent = tr.send_message(template="holding", params={"ref": "TR-0001"}, to=["IL"])
    query = tr.send_message(
        template="query_activity",
        to=["IL"],
        params={"ref": "TR-0001", "t1": "2025-04-09T07:00:00Z", "t2": "2025-04-09T08:00:00Z"},
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
    kinds = ("activity.notified", "activity.amended", "activity.cancelled")
    mine = [e for e in _entries(live, tokens["IL"]) if e["type"] in kinds and e["actor"] == "IL"]
    assert [e["type"] for e in mine] == list(kinds), mine
    assert all(e["actor"] == "IL" and _signed_by(e, "IL") for e in mine), mine


def test_the_page_signs_nothing_the_service_prepared_other_than_what_was_asked(
    officer: Any, live: LiveServer, tokens: dict[str, str], key_files: dict[str, Path]
) -> None:
    """A service that prepares another entry than the one asked for (here: the acknowledgement of another
    message, its text and hash made to agree) gets no signature: the page says so and sends nothing signed."""
    il = officer("IL")
    page = il.page
    mid = _query_to_israel(live, tokens["TR"])
    expect(page.locator("#alarm-ack")).to_be_visible(timeout=10_000)
    signed_requests: list[str] = []
    page.on("request", lambda r: signed_requests.append(r.url) if "deconflict-signature" in r.headers else None)

    def swapped(route: Any) -> None:
        if route.request.headers.get("deconflict-prepare") != "true":
            route.continue_()
            return
        real = route.fetch()
        doc = real.json()
        payload = json.loads(doc["canonical_payload"])
        payload["id"] = "M1"  # another message's acknowledgement, consistently hashed
        doc["canonical_payload"] = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        doc["prepared"]["payload"] = payload
        e = doc["prepared"]
        e["payload_hash"] = hashlib.sha256(doc["canonical_payload"].encode()).hexdigest()
        e["hash"] = entry_hash(
            mechanism=e["mechanism"], seq=e["seq"], at=parse_utc(e["at"], field="at"), actor=e["actor"],
            type=e["type"], payload_hash=e["payload_hash"], prev_hash=e["prev_hash"],
        )  # fmt: skip
        route.fulfill(response=real, body=json.dumps(doc))

    page.route("**/acknowledge", swapped)
    page.click("#alarm-ack")
    page.set_input_files("#key-file", str(key_files["IL"]))
    # the catalogue's words, naming what the service prepared
    expect(page.locator("#alarm-error")).to_contain_text("message.acknowledged", timeout=10_000)
    assert signed_requests == []
    assert not any(e["type"] == "message.acknowledged" for e in _entries(live, tokens["IL"]))
    assert page.locator("#alarm-ack").is_visible() and mid
