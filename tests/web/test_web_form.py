"""The notice form, amend and cancel, the map's past and in-force activities and the time bar, in a
real browser (Debian's Chromium driven by Playwright) against a live server on loopback whose clock
is pinned at 06:00Z on 9 April 2025. What the page sent is checked through the API, not on the page.

Wording is read from the catalogues (the Turkish page for Türkiye), never written here."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from support.browser import Rx, rx, say, tr_num, words
from support.builders import A
from support.live import LiveServer, auth, post_notice

from deconflict.clock import FixedClock

PALMYRA = (34.5574, 38.3169)  # inside Israel's red line, which forbids deployments
ALEPPO = (36.2, 37.1)


@pytest.fixture
def page_timezone() -> str:
    """A browser far from UTC: nothing the page sends or shows may depend on it."""
    return "Pacific/Kiritimati"


def test_altitudes_in_feet_and_flight_levels_are_sent_in_metres(officer: Any) -> None:
    tr = officer("TR")
    page = tr.page
    page.click("#open-notify")
    # The window the form offers is in UTC, whatever the browser's zone (UTC+14 here).
    expect(page.locator("#n-start")).to_have_value("2025-04-09T08:00:00Z")
    expect(page.locator("#n-start-date")).to_have_value("2025-04-09")
    expect(page.locator("#n-start-hour")).to_have_value("08")
    tr.circle(*ALEPPO, 10)
    page.select_option("#n-alt-unit", "ft")
    page.fill("#n-floor", "5000")
    page.fill("#n-ceiling", "12000")
    expect(page.locator("#n-floor-conv")).to_contain_text("1.524")  # Turkish digits grouping: 1.524 m
    page.select_option("#n-end-hour", "11")
    page.click("#n-send")
    expect(page.locator("[data-sent]")).to_contain_text(words("tr", "notify.sentClear", id="TR-0001"))
    v = tr.get("/activities/TR-0001")["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"]) == (1524.0, 3657.6)
    assert (v["start"], v["end"]) == ("2025-04-09T08:00:00Z", "2025-04-09T11:00:00Z")

    # Flight levels: hundreds of feet; switching the unit keeps the band and rewrites it.
    page.select_option("#n-alt-unit", "FL")
    expect(page.locator("#n-floor")).to_have_value("50")
    page.fill("#n-ceiling", "95")
    expect(page.locator("#n-ceiling-conv")).to_contain_text("FL095")
    tr.circle(36.5, 37.5, 5)
    page.click("#n-send")
    expect(page.locator("[data-sent]")).to_contain_text(words("tr", "notify.sentClear", id="TR-0002"))
    v = tr.get("/activities/TR-0002")["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"]) == (1524.0, 2895.6)


def test_a_past_window_or_a_negative_radius_is_refused_in_words_and_nothing_typed_is_lost(officer: Any) -> None:
    tr = officer("TR")
    page = tr.page
    page.click("#open-notify")
    page.fill("#n-title", "Patrol north of Aleppo")
    tr.circle(*ALEPPO, -3)
    page.click("#n-send")
    radius = page.locator('#notify-form [data-error-for="radius_m"]')
    expect(radius).to_have_text(say("tr", "notify.errors.radiusPositive"))
    expect(page.locator("#n-radius")).to_have_attribute("aria-invalid", "true")

    tr.circle(*ALEPPO, 10)
    page.fill("#n-start-date", "2025-04-08")
    page.fill("#n-end-date", "2025-04-08")
    page.click("#n-send")
    end = page.locator('#notify-form [data-error-for="end"]')
    expect(end.locator(".worded")).to_have_text(say("tr", "notify.errors.windowEnded"))
    expect(end.locator(".detail")).to_contain_text("already ended")  # the service's own words, second
    expect(page.locator("#n-end-date")).to_have_attribute("aria-invalid", "true")
    expect(page.locator('#notify-form [data-error-for]:not([data-error-for="end"]):not(:empty)')).to_have_count(0)
    assert page.input_value("#n-title") == "Patrol north of Aleppo"
    assert page.input_value("#n-start-date") == "2025-04-08"
    assert page.input_value("#n-radius") == "10"
    assert tr.get("/activities") == []


def test_a_window_too_long_or_too_far_ahead_is_refused_in_the_rules_words(officer: Any) -> None:
    """Found by a walkthrough: both were worded "pick a date, hour and minute", which says nothing of why. The
    reason is the rules' (31 days at most, 180 days ahead at most), said in the reader's language."""
    tr = officer("TR")
    page = tr.page
    page.click("#open-notify")
    tr.circle(*ALEPPO, 10)
    page.fill("#n-end-date", "2025-05-20")  # 41 days after the start
    page.click("#n-send")
    end = page.locator('#notify-form [data-error-for="end"]')
    expect(end.locator(".worded")).to_have_text(words("tr", "notify.errors.windowTooLong", days="31"))
    expect(end.locator(".detail")).to_contain_text("longer than the 31 days")  # the service's own words, second
    page.fill("#n-start-date", "2026-01-09")  # 275 days ahead
    page.fill("#n-end-date", "2026-01-09")
    page.click("#n-send")
    start = page.locator('#notify-form [data-error-for="start"]')
    expect(start.locator(".worded")).to_have_text(words("tr", "notify.errors.tooFarAhead", days="180"))
    expect(page.locator("#n-start-date")).to_have_attribute("aria-invalid", "true")
    assert tr.get("/activities") == []


def test_a_red_line_breach_asks_first_and_going_back_sends_nothing(officer: Any) -> None:
    tr = officer("TR")
    page = tr.page
    page.click("#open-notify")
    page.select_option("#n-kind", "deployment")
    tr.circle(*PALMYRA, 5)
    page.click("#n-send")
    dialog = page.locator("dialog[data-confirm=red-line]")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(say("tr", "notify.redLine.title"))
    expect(dialog.locator("li")).to_contain_text("IL-RL-PALMYRA")
    # The band of the breach is the notice's own, never "any altitude".
    expect(dialog.locator("li")).to_contain_text("1.000–4.000 m")
    assert page.evaluate("document.activeElement.dataset.answer") == "no"
    page.keyboard.press("Escape")  # = go back; the form stays open
    expect(dialog).to_have_count(0)
    expect(page.locator("#notify")).to_be_visible()
    expect(page.locator("[data-not-sent]")).to_have_text(say("tr", "notify.redLine.notSent"))
    assert tr.get("/activities") == []

    page.click("#n-send")
    page.click("dialog[data-confirm=red-line] [data-answer=yes]")
    expect(page.locator("[data-sent]")).to_contain_text("TR-0001")
    zone = [c for c in tr.get("/conflicts") if c["kind"] == "zone"]
    assert [c["activity"] for c in zone] == ["TR-0001"]


def test_amend_from_the_map_makes_version_2_closes_the_conflict_and_survives_a_concurrent_change(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1: separation with IL-0001
    tr = officer("TR")
    page = tr.page
    expect(page.locator("[data-conflict=C1]")).to_be_visible()
    tr.popup_of(34.56, 38.32)
    page.click("[data-amend=TR-0001]")
    form = page.locator("#notify")
    expect(form).to_have_attribute("data-mode", "amend")
    expect(page.locator("#notify-h")).to_have_text(words("tr", "amend.heading", id="TR-0001", version="1"))
    expect(page.locator("#n-lat")).to_have_value("34,5600")  # written as the Turkish page writes numbers
    expect(page.locator("#n-start")).to_have_value("2025-04-09T08:00:00Z")
    # Meanwhile someone at Türkiye's cell amends it from elsewhere (the CLI, say): now version 2, renamed, its
    # floor raised to 1,500 m and its ceiling to 4,500 m.
    first = tr.get("/activities/TR-0001")["volumes"][0]
    theirs = {k: first[k] for k in ("id", "geometry", "radius_m", "start", "end")} | {
        "floor_m": 1500,
        "ceiling_m": 4500,
    }
    r = httpx.put(
        f"{live.url}{A}/activities/TR-0001",
        json={"version": 1, "title": "renamed", "volumes": [theirs]},
        headers=auth(tokens["TR"]),
    )
    assert r.status_code == 200, r.text
    tr.circle(*ALEPPO, 10)  # move it well clear of Israel's sortie
    page.select_option("#n-alt-unit", "m")
    page.fill("#n-ceiling", "3000")
    page.click("#n-send")
    # The send checks (preview), is refused (PUT, 409) and reads the version now current (GET) before it says
    # so: three requests one after another, which at load 10-17 took over 5 s (Playwright's default wait). A
    # helper held each of them, and the stream's entries, every way round: the page always ended right.
    # What the officer changed (the footprint, the ceiling) is kept; what only version 2 changed (the title, the
    # floor) is taken into the form, and said: sent again as it stood, the form put version 1's title and floor
    # back without a word (a lost update).
    taken = f"{say('tr', 'notify.title')}, {say('tr', 'notify.floor')}"
    said = Rx(
        rx("tr", "amend.stale", id="TR-0001", version="2")
        + " "
        + rx("tr", "amend.taken", version="2", fields=taken)
        + " "
        + rx("tr", "amend.both", version="2", fields=say("tr", "notify.ceiling"))
    )
    expect(page.locator("[data-stale]")).to_have_text(re.compile(said), timeout=15_000)
    assert page.input_value("#n-lat") == tr_num(ALEPPO[0]) and page.input_value("#n-ceiling") == "3000"  # edits kept
    assert page.input_value("#n-title") == "renamed" and page.input_value("#n-floor") == "1500"  # theirs taken
    page.click("#n-send")
    expect(page.locator("[data-amended]")).to_have_attribute("data-version", "3", timeout=15_000)
    a = tr.get("/activities/TR-0001")
    assert a["version"] == 3 and a["title"] == "renamed"
    assert a["volumes"][0]["geometry"]["coordinates"] == [ALEPPO[1], ALEPPO[0]]
    assert (a["volumes"][0]["floor_m"], a["volumes"][0]["ceiling_m"]) == (1500, 3000)
    # The form, still open, now stands on version 3, the officer's own: a colleague's version 4 (the ceiling to
    # 3,500 m) is taken into it when the officer's next change (the title) is refused. It was still measured
    # from version 1, the officer's sent ceiling counted as an edit "changed by both", kept, and sent again over
    # the colleague's value.
    now = a["volumes"][0]
    theirs = {k: now[k] for k in ("id", "geometry", "radius_m", "start", "end", "floor_m")} | {"ceiling_m": 3500}
    r = httpx.put(
        f"{live.url}{A}/activities/TR-0001", json={"version": 3, "volumes": [theirs]}, headers=auth(tokens["TR"])
    )
    assert r.status_code == 200, r.text
    page.fill("#n-title", "moved to Aleppo")
    page.click("#n-send")
    said = Rx(
        rx("tr", "amend.stale", id="TR-0001", version="4")
        + " "
        + rx("tr", "amend.taken", version="4", fields=say("tr", "notify.ceiling"))
    )
    stale = page.locator("[data-stale='4']")
    expect(stale).to_have_text(re.compile(f"^{said}$"), timeout=15_000)  # and nothing "changed by both"
    assert page.input_value("#n-ceiling") == "3500" and page.input_value("#n-title") == "moved to Aleppo"
    page.click("#n-send")
    expect(page.locator("[data-amended]")).to_have_attribute("data-version", "5", timeout=15_000)
    a = tr.get("/activities/TR-0001")
    assert (a["title"], a["volumes"][0]["ceiling_m"]) == ("moved to Aleppo", 3500)
    # The separation is gone: every conflict raised against TR-0001's versions is closed.
    assert tr.get("/conflicts/C1")["status"] == "resolved"
    assert tr.get("/conflicts?status=unresolved") == []
    expect(page.locator("[data-conflict]")).to_have_count(0)


def test_past_activities_are_drawn_as_past_those_in_force_say_so_and_cancel_asks_first(
    live: LiveServer, clock: FixedClock, tokens: dict[str, str], officer: Any
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 3)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 3)  # in conflict with Israel's, 08:00-09:00Z
    clock.advance(seconds=4 * 3600)  # 10:00Z: both over
    post_notice(live, tokens["TR"], "uav_patrol", *ALEPPO, 0, 2)  # in force now
    tr = officer("TR")
    page = tr.page
    past = page.locator("path[data-activity=TR-0001]")
    expect(past).to_have_attribute("data-when", "past")
    expect(past).to_have_class(re.compile(r"\bpast\b"))
    assert past.get_attribute("data-hot") is None  # not "in conflict" once over
    assert past.get_attribute("stroke") == "#8a94a6"
    expect(page.locator("path[data-activity=TR-0002]")).to_have_attribute("data-when", "in_force")
    tr.popup_of(*ALEPPO)
    popup = page.locator(".activity-popup[data-activity=TR-0002]")
    expect(popup.locator(".when")).to_have_text(words("tr", "map.inForceUntil"))
    expect(popup.locator(".when")).to_contain_text("12:00")
    expect(popup.locator("[data-amend=TR-0002]")).to_be_visible()
    tr.popup_of(34.56, 38.32)
    expect(page.locator(".activity-popup[data-activity=TR-0001] [data-amend]")).to_have_count(
        0
    )  # the past is not amended

    # Cancel from the popup: asked first; "keep it" changes nothing, "cancel" cancels.
    tr.popup_of(*ALEPPO)
    page.click("[data-cancel=TR-0002]")
    dialog = page.locator("dialog[data-confirm=cancel]")
    expect(dialog).to_contain_text(words("tr", "amend.cancelTitle", id="TR-0002"))
    assert "null" not in dialog.inner_text()  # no list of items: nothing where it would be
    dialog.locator("[data-answer=no]").click()
    assert tr.get("/activities/TR-0002")["state"] != "cancelled"
    tr.popup_of(*ALEPPO)
    page.click("[data-cancel=TR-0002]")
    page.click("dialog[data-confirm=cancel] [data-answer=yes]")
    expect(page.locator("#action-status")).to_contain_text(words("tr", "amend.cancelled", id="TR-0002"))
    assert tr.get("/activities/TR-0002")["state"] == "cancelled"
    expect(page.locator("path[data-activity=TR-0002]")).to_have_count(0)


def slide(page: Any, minutes: int) -> None:
    """Move the time bar to ``minutes`` from now, as dragging it would."""
    page.evaluate(
        "v => { const s = document.querySelector('#timeline'); s.value = v; s.dispatchEvent(new Event('input')); }",
        str(minutes),
    )


def test_time_bar_ticks_in_utc_and_looking_ahead_filters_the_conflicts(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1, 08:00-10:00Z
    post_notice(live, tokens["IL"], "air_sortie", 36.20, 37.10, 6, 8)
    post_notice(live, tokens["TR"], "uav_patrol", 36.22, 37.12, 6, 8)  # C2, 12:00-14:00Z
    tr = officer("TR")
    page = tr.page
    ticks = page.locator("#timeline-ticks .tick-label")
    expect(ticks.first).to_be_visible()
    labels = ticks.all_inner_texts()
    assert "12:00" in labels and len(labels) >= 10
    assert all(re.fullmatch(r"\d\d:00", x) or "Nis" in x for x in labels), labels
    assert page.locator("#timeline").get_attribute("dir") == "ltr"
    expect(page.locator("[data-conflict]")).to_have_count(2)
    slide(page, 150)
    expect(page.locator("#mode-badge")).to_be_visible()
    expect(page.locator("[data-conflict]")).to_have_count(1)
    expect(page.locator("[data-conflict=C1]")).to_be_visible()
    slide(page, 420)
    expect(page.locator("[data-conflict=C2]")).to_be_visible()
    expect(page.locator("[data-conflict]")).to_have_count(1)
    page.click("#live")
    expect(page.locator("[data-conflict]")).to_have_count(2)


def test_an_amendment_in_flight_levels_keeps_a_band_it_did_not_touch(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """A band of 1,000–4,000 m reads as FL33–FL131 (1,005.84–3,992.88 m read back): amending the window
    alone, with the form in flight levels, keeps the band to the metre; a level typed is a level."""
    post_notice(live, tokens["TR"], "uav_patrol", *ALEPPO, 2, 4)
    tr = officer("TR")
    page = tr.page
    tr.popup_of(*ALEPPO)
    page.click("[data-amend=TR-0001]")
    expect(page.locator("#notify")).to_have_attribute("data-mode", "amend")
    page.select_option("#n-alt-unit", "FL")
    expect(page.locator("#n-floor")).to_have_value("33")
    expect(page.locator("#n-floor-conv")).to_contain_text("1.000")  # the band as it is, not FL33's 1.006 m
    page.select_option("#n-end-hour", "11")
    page.click("#n-send")
    expect(page.locator("[data-amended]")).to_have_attribute("data-version", "2", timeout=15_000)
    v = tr.get("/activities/TR-0001")["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"], v["end"]) == (1000.0, 4000.0, "2025-04-09T11:00:00Z")
    page.fill("#n-ceiling", "95")
    page.click("#n-send")
    expect(page.locator("[data-amended]")).to_have_attribute("data-version", "3", timeout=15_000)
    v = tr.get("/activities/TR-0001")["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"]) == (1000.0, 2895.6)
    # an edited field switched to feet, then given the text it once showed ("131", FL131 of 4,000 m): 131 ft,
    # not the 4,000 m it stood for then (below the floor: refused, nothing sent)
    page.fill("#n-ceiling", "120")
    page.select_option("#n-alt-unit", "ft")
    page.fill("#n-ceiling", "131")
    expect(page.locator("#n-ceiling-conv")).to_contain_text("131")
    page.click("#n-send")
    expect(page.locator("#n-floor-err, #n-ceiling-err, [data-error-for=floor_m]").first).not_to_have_text("")
    assert tr.get("/activities/TR-0001")["version"] == 3


def test_an_amend_form_open_when_the_activity_is_cancelled_elsewhere_says_so_and_sends_nothing(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """Two of Türkiye's windows: one has the amend form of TR-0001 open, the other cancels TR-0001. The open form
    stayed as it was, Send on, and said only once sent that the activity could no longer change: it now says so
    as the cancellation reaches it, and Send is off (a new notice's form has it on again)."""
    post_notice(live, tokens["TR"], "uav_patrol", *ALEPPO, 2, 4)
    tr = officer("TR")
    page = tr.page
    tr.popup_of(*ALEPPO)
    page.click("[data-amend=TR-0001]")
    expect(page.locator("#notify")).to_have_attribute("data-mode", "amend")
    page.fill("#n-title", "half typed")
    r = httpx.post(f"{live.url}{A}/activities/TR-0001/cancel", json={"version": 1}, headers=auth(tokens["TR"]))
    assert r.status_code == 200, r.text
    said = words("tr", "amend.gone", id="TR-0001", state=Rx(".+"))
    expect(page.locator("span[data-gone=TR-0001]")).to_have_text(said, timeout=15_000)
    expect(page.locator("#n-send")).to_be_disabled()
    page.press("#n-title", "Enter")  # no way round it
    page.wait_for_timeout(500)
    assert tr.get("/activities/TR-0001")["version"] == 2  # the cancellation, nothing after it
    page.keyboard.press("Escape")
    page.keyboard.press("Alt+n")
    expect(page.locator("#notify")).to_have_attribute("data-mode", "notify")
    expect(page.locator("#n-send")).to_be_enabled()
