"""The duty officer's loop in real browsers (issue 11, "Done when"): Türkiye, Israel and Azerbaijan in
three browser contexts on one live server whose clock is pinned and advanced by the test, the hotline
ticker driven by hand so every escalation is the test's doing.

A red-line breach alarms the owner (Israel) and informs the facilitator (Azerbaijan) and the party
that caused it (Türkiye); Israel acknowledges the conflict once, its alert reads settled and nothing
climbs after the deadline; a separation conflict settled from the hotline (a phrase about the alert)
shows acknowledged; an amendment closes the old conflict's alerts, which then stop climbing; an
officer signing in late is alarmed for what waits. Israel's part is walked with the keyboard alone.
Screenshots of the Hebrew and Turkish pages go to tests/artifacts/, or to docs/ (the README's
pictures) when DECONFLICT_DOCS_SCREENSHOTS=1, so that a test run leaves the tracked files alone."""

from __future__ import annotations

import os
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from support.browser import Officer, Rx, say, words
from support.builders import A, vol
from support.live import LiveServer, auth
from support.paths import ARTIFACTS, DOCS

from deconflict.clock import FixedClock

PALMYRA_AIRFIELD = (34.5574, 38.3169)  # inside Israel's red line IL-RL-PALMYRA
PICTURES = DOCS if os.environ.get("DECONFLICT_DOCS_SCREENSHOTS") else ARTIFACTS


@pytest.fixture
def loop(live: LiveServer) -> tuple[LiveServer, dict[str, str]]:
    """The live server (no ticker: the test ticks) and tokens for Türkiye, Israel and Azerbaijan."""
    return live, live.tokens("TR", "IL", "AZ")


def volume(lat: float, lon: float) -> dict[str, Any]:
    """A 15 km circle at (lat, lon), 08:00–10:00Z."""
    return vol((lon, lat), radius_m=15_000)


def call(server: LiveServer, token: str, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, f"{server.url}{A}{path}", json=body, headers=auth(token), timeout=10)
    assert r.status_code < 300, r.text
    return r.json()


def notify(server: LiveServer, token: str, kind: str, lat: float, lon: float) -> dict[str, Any]:
    return call(server, token, "POST", "/activities", {"kind": kind, "title": kind, "volumes": [volume(lat, lon)]})


def messages(server: LiveServer, token: str) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in call(server, token, "GET", "/messages")}


def alert_of(server: LiveServer, token: str, conflict: str) -> str:
    return next(
        m["id"]
        for m in messages(server, token).values()
        if m["type"] == "alert" and (m.get("about") or {}) == {"kind": "conflict", "id": conflict}
    )


def record_after(server: LiveServer, token: str, seq: int) -> list[dict[str, Any]]:
    return call(server, token, "GET", f"/record?after={seq}&limit=5000")["entries"]


def last_seq(server: LiveServer, token: str) -> int:
    return int(call(server, token, "GET", "/record?limit=5000")["next_after"])


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has focus (the keyboard alone)."""
    for _ in range(limit):
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_the_loop_in_three_browsers_with_the_clock_past_the_deadlines(
    browser: Any,
    loop: tuple[LiveServer, dict[str, str]],
    clock: FixedClock,
) -> None:
    server, tokens = loop
    opened: list[Officer] = []

    def open_as(member: str) -> Officer:
        officer = Officer(browser, server, tokens[member])
        opened.append(officer)
        return officer

    try:
        notify(server, tokens["IL"], "air_sortie", 34.60, 38.25)  # IL-0001 by Palmyra, 08:00-10:00Z
        notify(server, tokens["IL"], "air_sortie", 35.12, 36.71)  # IL-0002 by Hama
        tr, il, az = open_as("TR"), open_as("IL"), open_as("AZ")

        # Türkiye deploys at Palmyra airfield: inside Israel's red line, and by Israel's sortie.
        raised = notify(server, tokens["TR"], "deployment", *PALMYRA_AIRFIELD)["raised"]
        kinds = {c["kind"]: c["id"] for c in raised}
        sep, red = kinds["separation"], kinds["zone"]
        alert_red, alert_sep = alert_of(server, tokens["IL"], red), alert_of(server, tokens["IL"], sep)

        # The owner of the red line is alarmed: banner, sound, tab title, the list of what waits on it.
        expect(il.page.locator("#alarm")).to_be_visible()
        expect(il.page.locator(f"#waiting-list [data-waiting={red}]")).to_be_visible()
        expect(il.page.locator(f"#waiting-list [data-waiting={sep}]")).to_be_visible()
        assert il.page.evaluate("cop.state.beeps") >= 1
        expect(il.page).to_have_title(re.compile(r"^\(2\) ⚠"))
        expect(il.page.locator(f"[data-conflict={red}] [data-ack-conflict={red}]")).to_be_visible()
        # The facilitator is informed (a copy, no acknowledgement asked); so is Türkiye, which caused it.
        copy = next(
            m
            for m in messages(server, tokens["AZ"]).values()
            if m["to"] == ["AZ"] and (m.get("about") or {}).get("id") == red
        )
        assert copy["needs_ack"] is False and copy["status"] == "info"
        expect(az.page.locator(f"[data-message={copy['id']}]")).to_be_visible()
        expect(az.page.locator(f"[data-conflict={red}]")).to_contain_text(
            words("en", "conflicts.awaitingOne", party="Israel", time=Rx(".*06:10 UTC"))
        )
        for page in (tr.page, az.page):
            expect(page.locator("#alarm")).to_be_hidden()
            expect(page.locator(f"[data-ack-conflict={red}]")).to_have_count(0)
        expect(tr.page.locator(f"[data-conflict={red}]")).to_contain_text(
            words("tr", "conflicts.awaitingOne", party="İsrail", time=Rx(".*UTC"))
        )
        il.page.evaluate("() => { cop.map.setView([34.58, 38.2], 9, { animate: false }); }")  # Palmyra, for the picture
        il.page.wait_for_timeout(300)
        PICTURES.mkdir(exist_ok=True)
        il.page.screenshot(path=str(PICTURES / "cop-he.png"), animations="disabled")

        # Israel, by keyboard alone: a skip link to the conflicts, Tab to Acknowledge, Enter.
        il.page.keyboard.press("Tab")
        expect(il.page.locator(".skip-link").first).to_be_focused()
        il.page.keyboard.press("Enter")
        expect(il.page.locator("#conflicts-h")).to_be_focused()
        tab_to(il.page, f"[data-ack-conflict={red}]")
        il.page.keyboard.press("Enter")
        expect(tr.page.locator(f"[data-conflict={red}]")).to_have_attribute("data-status", "acknowledged")
        expect(il.page.locator(f"[data-conflict={red}]")).to_be_focused()  # not the page body
        # One acknowledgement: the alert of the conflict reads settled, on every page.
        expect(il.page.locator(f"[data-message={alert_red}]")).to_have_attribute("data-status", "acknowledged")
        expect(il.page.locator(f"[data-message={alert_red}]")).to_contain_text(
            words("he", "hotline.settledAt", parties="ישראל", time=Rx(".*UTC"))
        )
        expect(az.page.locator(f"[data-message={alert_red}]")).to_have_attribute("data-status", "acknowledged")
        expect(il.page.locator(f"#waiting-list [data-waiting={red}]")).to_have_count(0)
        expect(il.page).to_have_title(re.compile(r"^\(1\) ⚠"))

        # The separation conflict, settled from the hotline: "Received and acknowledged" about its alert.
        tab_to(il.page, "[data-template=acknowledged]")
        il.page.keyboard.press("Enter")
        expect(il.page.locator("#pp-ref")).to_be_focused()
        expect(il.page.locator("#pp-ref")).to_have_value(sep)  # the most urgent item waiting on us
        # Escape inside the form closes the form only: the alarm stays, focus goes back to the button.
        il.page.keyboard.press("Escape")
        expect(il.page.locator("#phrase-form")).to_be_hidden()
        expect(il.page.locator("[data-template=acknowledged]")).to_be_focused()
        expect(il.page.locator("#alarm")).to_be_visible()
        il.page.keyboard.press("Enter")
        il.page.keyboard.type(alert_sep)  # the select's type-ahead: the alert itself
        expect(il.page.locator("#pp-ref")).to_have_value(alert_sep)
        expect(il.page.locator("#phrase-preview")).to_contain_text(alert_sep)
        tab_to(il.page, "#phrase-form button[type=submit]")
        il.page.keyboard.press("Enter")
        expect(il.page.locator("#phrase-form")).to_be_hidden()
        expect(il.page.locator("[data-template=acknowledged]")).to_be_focused()
        for page in (il.page, tr.page, az.page):
            expect(page.locator(f"[data-conflict={sep}]")).to_have_attribute("data-status", "acknowledged")
        expect(il.page.locator(f"[data-message={alert_sep}]")).to_have_attribute("data-status", "acknowledged")
        expect(il.page.locator("#alarm")).to_be_hidden()
        expect(il.page).to_have_title(say("he", "app.title"))
        tr.page.evaluate("() => { cop.map.setView([34.7, 38.0], 8, { animate: false }); }")
        tr.page.wait_for_timeout(300)
        tr.page.screenshot(path=str(PICTURES / "cop-tr.png"), animations="disabled")

        # Past the deadline: nothing that was settled climbs.
        before = last_seq(server, tokens["IL"])
        clock.advance(seconds=11 * 60)
        server.service.tick()
        climbed = [e for e in record_after(server, tokens["IL"], before) if e["type"] == "message.escalated"]
        assert [e["payload"]["id"] for e in climbed if e["payload"]["id"] in (alert_red, alert_sep)] == []
        got = messages(server, tokens["IL"])
        assert (got[alert_red]["status"], got[alert_red]["escalation_steps"]) == ("acknowledged", 0)
        assert (got[alert_sep]["status"], got[alert_sep]["escalation_steps"]) == ("acknowledged", 0)

        # A new separation conflict at Hama while Israel's officer is away; its deadline passes, it climbs.
        il.close()
        opened.remove(il)
        patrol = notify(server, tokens["TR"], "uav_patrol", 35.10, 36.75)
        hama = next(c["id"] for c in patrol["raised"] if c["kind"] == "separation")
        alert_hama = alert_of(server, tokens["IL"], hama)
        clock.advance(seconds=11 * 60)
        server.service.tick()
        assert messages(server, tokens["IL"])[alert_hama]["escalation_steps"] == 1

        # The next officer signs in late: alarmed at once for what waits, overdue, with the rung reached.
        late = open_as("IL")
        expect(late.page.locator("#alarm")).to_be_visible()
        row = late.page.locator(f"#waiting-list [data-waiting={hama}]")
        expect(row).to_be_visible()
        expect(row.locator(":scope > .countdown")).to_have_class(re.compile("overdue"))
        expect(row.locator("[data-rung]")).to_have_attribute("data-rung", "operations chief")
        expect(row).to_contain_text(say("he", "rungs.operations chief"))
        assert late.page.evaluate("cop.state.beeps") >= 1
        expect(late.page).to_have_title(re.compile(r"^\(\d+\) ⚠"))
        late.page.screenshot(path=str(ARTIFACTS / "il_late_1366x768.png"), animations="disabled")
        # Three conflicts at 1366×768 with the alarm showing: the first (awaiting us) whole, the others
        # a scroll of the panel away, which is bounded so that the hotline keeps room for its messages.
        expect(late.page.locator("[data-conflict]")).to_have_count(3)
        panel = late.page.locator("#conflicts").bounding_box()
        for card in late.page.locator("[data-conflict]").all():
            card.scroll_into_view_if_needed()
            box = card.bounding_box()
            assert box and box["y"] + box["height"] <= panel["y"] + panel["height"] + 1, (box, panel)

        # Türkiye amends its patrol away: the conflict closes as amended and so does its alert.
        version = call(server, tokens["TR"], "GET", f"/activities/{patrol['activity']['id']}")["version"]
        moved = {"version": version, "volumes": [volume(36.10, 37.00)]}
        call(server, tokens["TR"], "PUT", f"/activities/{patrol['activity']['id']}", moved)
        expect(late.page.locator(f"[data-message={alert_hama}]")).to_have_attribute("data-status", "closed")
        expect(late.page.locator(f"[data-message={alert_hama}] .closed")).to_contain_text(
            words("he", "hotline.closedAt", time=Rx(".*UTC"), note=Rx(".+"))
        )
        expect(late.page.locator(f"#waiting-list [data-waiting={hama}]")).to_have_count(0)
        expect(late.page.locator(f"[data-conflict={hama}]")).to_have_count(0)
        # … and stops climbing.
        before = last_seq(server, tokens["IL"])
        clock.advance(seconds=11 * 60)
        server.service.tick()
        climbed = [  # Israel's copy: the steps of what Israel sees (its alert among them), the others withheld
            e["payload"]["id"]
            for e in record_after(server, tokens["IL"], before)
            if e["type"] == "message.escalated" and "payload" in e
        ]
        assert alert_hama not in climbed
        assert messages(server, tokens["IL"])[alert_hama]["escalation_steps"] == 1
        for officer in opened:
            assert officer.outside == [], officer.outside
    finally:
        for officer in opened:
            officer.close()
