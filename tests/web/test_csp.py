"""The page under its strict Content-Security-Policy (api/web.py): signed in, live, with activities and a
conflict drawn, the notice form and the time bar open, the browser reports no violation: the page needs
nothing inline and nothing from elsewhere."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from support.browser import VIEWPORT
from support.builders import T4
from support.live import LiveServer, post_notice

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def test_the_page_runs_under_its_csp_with_no_violation(browser: Any, live: LiveServer, tokens: dict[str, str]) -> None:
    post_notice(live, tokens["TR"], "uav_patrol", T4[1], T4[0], title="Patrol T4")
    post_notice(live, tokens["IL"], "air_sortie", T4[1], T4[0])
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.add_init_script(RECORD_VIOLATIONS)
        response = page.goto(live.url + "/")
        assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
        page.fill("#token", tokens["IL"])
        page.press("#token", "Enter")
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#stream-state")).to_have_class(re.compile("live"))
        page.wait_for_selector("path.leaflet-interactive")
        page.keyboard.press("Alt+n")
        page.wait_for_timeout(500)
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        violations = page.evaluate("window.__csp")
        assert violations == [], violations
        assert not [m for m in console if "Content Security Policy" in m], console
    finally:
        context.close()
