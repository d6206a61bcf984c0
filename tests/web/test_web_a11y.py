"""The page with a screen reader and a keyboard in mind: axe-core (vendored under tests/vendor/, never
served by the service) finds no WCAG 2.1 A/AA violation in any state of the page: signed out, signed
in, the alarm showing (every frame of its flash), the notice form open, a phrase form open, replay.
And the keyboard rules of issue 11: focus stays where it was through live updates, Escape closes
what holds focus and never dismisses the alarm, countdowns are outside every live region."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from support.browser import VIEWPORT, Officer, say
from support.live import LiveServer, post_notice
from support.paths import VENDOR

AXE = VENDOR / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Any, context: str = "document", rules: list[str] | None = None) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations in the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe === 'object'"):
        # evaluated by the test driver, not as an inline <script>: the page's CSP refuses inline scripts
        page.evaluate(AXE.read_text(encoding="utf-8"))
    options: dict[str, Any] = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
    if rules:
        options = {"runOnly": {"type": "rule", "values": rules}, "resultTypes": ["violations"]}
    found = page.evaluate(
        """async ([context, options]) => {
            const out = await axe.run(context === 'document' ? document : document.querySelector(context), options);
            const where = (v) => v.nodes.map((n) => n.target.join(' ')).join(' | ');
            return out.violations.map((v) => `${v.id} (${v.impact}): ${where(v)} — ${v.nodes[0].failureSummary}`);
        }""",
        [context, options],
    )
    return list(found)


def test_axe_finds_no_violation_in_any_state_of_the_page(
    browser: Any,
    live: LiveServer,
    tokens: dict[str, str],
) -> None:
    # Signed out: the sign-in page.
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(live.url + "/")
        expect(page.locator("#token")).to_be_visible()
        assert violations(page) == [], "signed out"
        # The check can fail: the old banner's second frame (white on #ff4d4d, 3.3:1) is caught.
        page.evaluate(
            "() => { const p = document.createElement('p'); p.id = 'bad'; p.textContent = 'ALERT';"
            " p.style.cssText = 'color:#fff;background:#ff4d4d'; document.querySelector('#signin form').append(p); }"
        )
        assert [v.split(" ")[0] for v in violations(page)] == ["color-contrast"]
    finally:
        context.close()

    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, title="air_sortie near Palmyra")
    il, tr = Officer(browser, live, tokens["IL"]), Officer(browser, live, tokens["TR"])
    try:
        assert violations(tr.page) == [], "signed in"

        # a separation and a red-line conflict
        post_notice(live, tokens["TR"], "deployment", 34.5574, 38.3169, title="deployment near Palmyra")
        page = il.page
        expect(page.locator("#alarm")).to_be_visible()
        expect(page.locator("#waiting-list li")).to_have_count(2)
        assert violations(page) == [], "alarm showing"
        # Every frame of the flashing banner, and the silenced one, at ≥ 4.5:1.
        for frame in ("0s", "-0.5s"):
            page.evaluate(
                "(delay) => { const a = document.querySelector('#alarm');"
                " a.style.animationDelay = delay; a.style.animationPlayState = 'paused'; }",
                frame,
            )
            assert violations(page, "#alarm", ["color-contrast"]) == [], f"alarm frame at {frame}"
        page.click("#alarm-silence")
        assert violations(page, "#alarm", ["color-contrast"]) == [], "alarm silenced"
        expect(page.locator("#alarm")).to_be_visible()  # silenced, not dismissed

        # No countdown inside a live region (they tick every second); new things are said once, politely.
        in_live = page.evaluate(
            "[...document.querySelectorAll('.countdown')].filter((n) =>"
            " n.closest('[aria-live], [role=alert], [role=status], [role=log], [role=timer]')).length"
        )
        assert in_live == 0
        expect(page.locator("#announce")).to_have_attribute("aria-live", "polite")
        expect(page.locator("#announce")).to_contain_text("C1")

        # The notice form open (Türkiye's page).
        tr.page.click("#open-notify")
        expect(tr.page.locator("#notify")).to_be_visible()
        assert violations(tr.page) == [], "notice form open"
        tr.page.keyboard.press("Escape")
        expect(tr.page.locator("#notify")).to_be_hidden()

        # A phrase form open, with its preview (Israel's page, the alarm still showing).
        page.click("[data-template=query_activity]")
        expect(page.locator("#phrase-form")).to_be_visible()
        expect(page.locator("#pp-ref")).to_be_focused()
        expect(page.locator("#phrase-preview")).to_contain_text("TR-0001")
        assert violations(page) == [], "phrase form open"
        # Escape closes the form (focus back on its button) and never the alarm.
        page.keyboard.press("Escape")
        expect(page.locator("#phrase-form")).to_be_hidden()
        expect(page.locator("[data-template=query_activity]")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("#alarm")).to_be_visible()

        # Replay: the time bar back in time.
        page.focus("#timeline")
        page.keyboard.press("Home")
        expect(page.locator("#mode-badge")).to_be_visible()
        assert violations(page) == [], "replay"
        page.keyboard.press("Escape")
        expect(page.locator("#timeline-label")).to_have_text(say("he", "timebar.live"))
        assert il.outside == [] and tr.outside == []
    finally:
        il.close()
        tr.close()


def test_focus_stays_put_through_live_updates(
    browser: Any,
    live: LiveServer,
    tokens: dict[str, str],
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, title="air_sortie near Palmyra")
    # C1 and C2 await Israel
    post_notice(live, tokens["TR"], "deployment", 34.5574, 38.3169, title="deployment near Palmyra")
    il = Officer(browser, live, tokens["IL"])
    try:
        page = il.page
        # Focus on C2's Acknowledge; a new conflict and new messages arrive and the lists are redrawn.
        page.focus("[data-ack-conflict=C2]")
        page.evaluate("document.activeElement.kept = 'kept'")  # a property: the node itself, not its attributes
        # no conflict with Israel's notices here
        post_notice(live, tokens["TR"], "uav_patrol", 35.10, 36.75, title="uav_patrol near Palmyra")
        post_notice(
            live, tokens["IL"], "air_sortie", 35.12, 36.71, title="air_sortie near Palmyra"
        )  # a third conflict, C3
        expect(page.locator("[data-conflict=C3]")).to_be_visible()
        expect(page.locator("[data-ack-conflict=C2]")).to_be_focused()
        assert page.evaluate("document.activeElement.kept") == "kept"  # the same element, not a copy
        # A Resolve form being typed into survives a live update too, and Escape gives focus back.
        page.click("[data-resolve-conflict=C1]")
        page.fill("#resolve-C1-note", "agreed on the phone")
        # another update to the picture
        post_notice(live, tokens["TR"], "uav_patrol", 36.2, 37.1, title="uav_patrol near Palmyra")
        page.wait_for_timeout(400)
        expect(page.locator("#resolve-C1-note")).to_have_value("agreed on the phone")
        expect(page.locator("#resolve-C1-note")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("[data-resolve-form=C1]")).to_have_count(0)
        expect(page.locator("[data-resolve-conflict=C1]")).to_be_focused()
        expect(page.locator("#alarm")).to_be_visible()
        # Tab order: the skip links, the header, the alarm, the conflicts and hotline, then the map.
        order = page.evaluate(
            """() => [...document.querySelectorAll('a[href], button, input, select, [tabindex="0"]')]
                .filter((n) => n.offsetParent !== null && !n.closest('[hidden]'))
                .map((n) => n.closest('#side') ? 'side' : n.closest('#map-wrap') ? 'map' : 'other')"""
        )
        assert order.index("side") < order.index("map"), order
        assert re.match(r"^\(2\) ⚠", page.title()), page.title()  # C3 awaits Türkiye, whose patrol was there first
        assert il.outside == []
    finally:
        il.close()


def test_alt_n_opens_a_new_notice_whatever_the_keyboard_layout(
    browser: Any, live: LiveServer, tokens: dict[str, str]
) -> None:
    """Alt+N, as the button's tooltip says: the N key with a Hebrew layout (which types מ there), and a Mac's
    Option+N (a dead key), opened nothing; a Latin layout's letter N opens it wherever the key sits (and that
    layout's other letter on the N key does not: Alt+B on a Dvorak keyboard is not Alt+N)."""
    il = Officer(browser, live, tokens["IL"])
    try:
        page = il.page
        form = page.locator("#notify")
        for key, opens in (("b", False), ("מ", True), ("Dead", True), ("N", True)):
            page.evaluate(
                "([key]) => document.dispatchEvent(new KeyboardEvent('keydown', "
                "{key, code: 'KeyN', altKey: true, bubbles: true, cancelable: true}))",
                [key],
            )
            if opens:
                expect(form).to_be_visible()
                page.keyboard.press("Escape")
            page.wait_for_timeout(200)
            expect(form).to_be_hidden()
        assert il.outside == []
    finally:
        il.close()
