"""Defects found by a tester using the page as Turkish, Israeli and Azerbaijani duty officers, each
checked in a real browser (Debian's Chromium via Playwright) against a live server on loopback.

Wording is read from the catalogues, never written here."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from support.browser import Rx, rx, say, wait_in_page, wait_until, words
from support.builders import A
from support.live import LiveServer, auth, post_notice


@pytest.fixture
def page_timezone() -> str:
    """A browser far from UTC: nothing the page sends or shows may depend on it."""
    return "Pacific/Kiritimati"


def test_numbers_are_read_by_the_pages_locale_and_anything_ambiguous_is_refused_in_words(
    officer: Any,
) -> None:
    tr = officer("TR")
    page = tr.page
    page.click("#open-notify")
    page.fill("#n-title", "Patrol north of Aleppo")
    # Turkish: '.' groups thousands, ',' is the decimal separator.
    page.fill("#n-lat", "36,2")
    page.fill("#n-lon", "37,1")
    page.fill("#n-radius", "5,5")
    page.select_option("#n-alt-unit", "m")
    page.fill("#n-floor", "1.000")
    page.fill("#n-ceiling", "4.000")
    expect(page.locator("#n-radius-conv")).to_contain_text("5,5")
    expect(page.locator("#n-floor-conv")).to_contain_text("1.000 m")
    expect(page.locator("#n-ceiling-conv")).to_contain_text("4.000 m")
    page.click("#n-send")
    expect(page.locator("[data-sent]")).to_contain_text(words("tr", "notify.sentClear", id="TR-0001"))
    v = tr.get("/activities/TR-0001")["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"], v["radius_m"]) == (1000, 4000, 5500)
    assert v["geometry"]["coordinates"] == [37.1, 36.2]
    page.click("#n-close")
    page.click("#open-notify")
    assert page.input_value("#n-title") == ""  # the notice sent does not lend its title to the next

    # Coordinates pasted with a decimal point (from a GPS, another tool): 36.25 cannot be a Turkish number
    # and 37.125 would be 37,125 degrees here, so each is read the only way a coordinate can be.
    page.fill("#n-lat", "36.25")
    page.fill("#n-lon", "37.125")
    expect(page.locator("#n-lat-conv")).to_have_text("36,25°")
    expect(page.locator("#n-lon-conv")).to_have_text("37,125°")
    page.fill("#n-lon", "3.712.500")  # grouped: out of a longitude's range either way, refused
    page.click("#n-check")
    expect(page.locator('#notify-form [data-error-for="geometry"]')).not_to_be_empty()
    expect(page.locator("[data-preview]")).to_have_count(0)

    # "1,000" means 1 here, and 1000 in English: refused, both readings shown; every error at once.
    page.fill("#n-lat", "36,2")
    page.fill("#n-lon", "37,1")
    page.fill("#n-radius", "5.5")  # not a Turkish number; nothing is truncated from it
    page.fill("#n-floor", "1,000")
    page.click("#n-check")
    expect(page.locator("[data-preview]")).to_have_count(0)
    floor = page.locator('#notify-form [data-error-for="floor_m"]')
    expect(floor).to_contain_text(words("tr", "notify.errors.numberAmbiguous", value="1", other="1.000"))
    radius = page.locator('#notify-form [data-error-for="radius_m"]')
    expect(radius).to_contain_text(words("tr", "notify.errors.numberDidYouMean", value="5,5"))
    expect(page.locator("#n-floor")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#n-radius")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#n-floor-conv")).to_have_text("")

    # Corrected while still in the field, the error goes at once (the range is judged again on leaving it).
    page.locator("#n-floor").press("Control+a")
    page.locator("#n-floor").press_sequentially("1000")
    expect(floor).to_be_empty()
    expect(page.locator("#n-floor")).not_to_have_attribute("aria-invalid", "true")
    expect(radius).not_to_be_empty()  # the radius still reads "5.5": its error stays
    # "1.500" km is 1500 here, over the 500 km a radius may be; 1,5 is offered, as the other way reads it
    page.fill("#n-radius", "1.500")
    page.click("#n-check")
    expect(radius).to_contain_text(words("tr", "notify.errors.numberDidYouMean", value="1,5"))

    # A preview shown before goes as soon as the form has an error: it would read as this notice's.
    page.fill("#n-radius", "5")
    page.fill("#n-floor", "1000")
    page.click("#n-check")
    expect(page.locator("[data-preview=none]")).to_be_visible()
    page.fill("#n-ceiling", "4,5,6")
    page.click("#n-check")
    expect(page.locator("[data-preview]")).to_have_count(0)
    expect(page.locator("#n-ceiling")).to_have_attribute("aria-invalid", "true")
    assert [a["id"] for a in tr.get("/activities")] == ["TR-0001"]


def test_the_hebrew_page_reads_commas_as_thousands_and_a_decimal_comma_only_in_a_coordinate(
    officer: Any,
) -> None:
    il = officer("IL")
    page = il.page
    page.click("#open-notify")
    page.fill("#n-lat", "34,6")  # a coordinate with a decimal comma: 34,6 cannot be a latitude here, 34.6 it is
    page.fill("#n-lon", "38.3")
    page.fill("#n-radius", "5,5")  # a radius is read this page's way only: refused, the other reading offered
    page.select_option("#n-alt-unit", "m")
    page.fill("#n-floor", "1,000")
    page.fill("#n-ceiling", "1.000")  # 1 here, 1000 on a Turkish page: ambiguous
    page.click("#n-send")
    expect(page.locator("#n-lat-conv")).to_have_text("34.6°")
    expect(page.locator('#notify-form [data-error-for="geometry"]')).to_be_empty()
    expect(page.locator('#notify-form [data-error-for="radius_m"]')).to_contain_text(
        words("he", "notify.errors.numberDidYouMean", value="5.5")
    )
    expect(page.locator('#notify-form [data-error-for="ceiling_m"]')).to_contain_text(
        words("he", "notify.errors.numberAmbiguous", value="1", other="1,000")
    )
    expect(page.locator("#n-floor-conv")).to_contain_text("1,000")
    expect(page.locator('#notify-form [data-error-for="floor_m"]')).to_be_empty()
    assert il.get("/activities") == []
    page.fill("#n-radius", "5.5")
    page.fill("#n-ceiling", "4,000")
    page.click("#n-send")
    expect(page.locator("[data-sent]")).to_contain_text("IL-0001")
    v = il.get("/activities/IL-0001")["volumes"][0]
    assert (v["floor_m"], v["ceiling_m"], v["radius_m"]) == (1000, 4000, 5500)
    assert v["geometry"]["coordinates"] == [38.3, 34.6]


START_OF_TEXT = """el => {
  // Where the line's first letter is drawn, against the box: its logical start must be in view.
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let node, range = document.createRange();
  while ((node = walker.nextNode())) {
    const i = [...node.data].findIndex(ch => /[\\p{L}\\p{N}]/u.test(ch));
    if (i >= 0) { range.setStart(node, i); range.setEnd(node, i + 1); break; }
  }
  const r = range.getBoundingClientRect(), box = el.getBoundingClientRect();
  return { left: r.left - box.left, right: box.right - r.right, width: box.width, text: range.toString() };
}"""


def test_the_hebrew_alarm_line_reads_right_to_left_from_its_start(
    live: LiveServer,
    tokens: dict[str, str],
    officer: Any,
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1 awaits Israel
    il = officer("IL")
    page = il.page
    text = page.locator("#alarm-text")
    expect(text).to_contain_text("C1")
    expect(text).to_have_attribute("dir", "rtl")
    assert text.evaluate("el => getComputedStyle(el).unicodeBidi") != "plaintext"
    start = text.evaluate(START_OF_TEXT)
    # Its first letter sits at the right edge of the line (a right-to-left start), not cut off.
    assert 0 <= start["right"] < 12, start

    # In the alert's Hebrew text each ISO time stays on one line (it broke as "2025-04-" / "09T08:00").
    stamps = page.locator("[data-message=M1] .text .ts")
    expect(stamps.first).to_have_text(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d"))
    page.evaluate("document.querySelector('#side').style.width = '260px'")  # narrow: the text wraps a lot
    for rects in stamps.evaluate_all(
        "els => els.map(e => [getComputedStyle(e).whiteSpace, e.getClientRects().length])"
    ):
        assert rects == ["nowrap", 1], rects


def test_a_closed_alert_says_why_in_the_readers_language_and_the_system_and_credits_are_worded(
    live: LiveServer,
    tokens: dict[str, str],
    officer: Any,
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1; its alert M1 awaits Israel
    r = httpx.post(
        f"{live.url}{A}/conflicts/C1/resolve", json={"resolution": "accepted"}, headers=auth(tokens["IL"]), timeout=10
    )
    assert r.status_code == 200, r.text
    il = officer("IL")
    page = il.page
    closed = page.locator("[data-message=M1] .closed")
    expect(closed).to_have_attribute("data-resolution", "accepted")
    how = say("he", "resolutions.accepted")
    expect(closed).to_contain_text(words("he", "hotline.closedResolved", id="C1", how=how))
    assert "resolved" not in closed.inner_text()
    expect(page.locator("[data-message=M1] .meta")).to_contain_text(say("he", "hotline.system"))
    assert "system" not in page.locator("[data-message=M1] .meta").inner_text()
    credit = page.locator(".leaflet-control-attribution")
    expect(credit).to_contain_text(say("he", "maptools.attribution"))
    assert "Place names" not in credit.inner_text()


def test_cards_awaiting_us_come_first_whole_and_the_hotline_keeps_room_at_1366x768(
    live: LiveServer,
    tokens: dict[str, str],
    officer: Any,
) -> None:
    # C1 awaits Türkiye (Israel's sortie came second), C2 and C3 await Israel; C1 has the nearest deadline.
    post_notice(live, tokens["TR"], "uav_patrol", 36.20, 37.10, 2, 4)
    post_notice(live, tokens["IL"], "air_sortie", 36.22, 37.12, 2, 4)
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 3, 5)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 3, 5)
    post_notice(live, tokens["IL"], "air_sortie", 35.60, 39.25, 3, 5)
    post_notice(live, tokens["TR"], "uav_patrol", 35.56, 39.32, 3, 5)
    il = officer("IL")
    page = il.page
    expect(page.locator("#alarm")).to_be_visible()
    cards = page.locator("[data-conflict]")
    expect(cards).to_have_count(3)
    order = cards.evaluate_all("els => els.map(e => e.dataset.conflict)")
    assert order[-1] == "C1", order  # the one awaiting the other side goes after ours
    panel = page.locator("#conflicts").bounding_box()
    ack = page.locator(f"[data-ack-conflict={order[0]}]").bounding_box()
    assert panel["y"] <= ack["y"] and ack["y"] + ack["height"] <= panel["y"] + panel["height"], (panel, ack)
    assert page.locator("#messages").evaluate("el => el.clientHeight") >= 240  # three short messages, two alerts
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size == [1366, 768], size


def test_an_open_conflict_stays_whole_in_view_however_long_the_hotline_at_1366x768(
    live: LiveServer,
    tokens: dict[str, str],
    officer: Any,
) -> None:
    """A conflict that awaits the other party (Türkiye's page, the facilitator's): with some 30 messages on the
    hotline the panel of open conflicts shrank to its heading (30 px), the hotline's list taking the height its
    messages would fill, and the card (status, deadline, its buttons) was out of sight."""
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 3, 5)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 3, 5)  # C1 awaits Israel, not Türkiye
    for n in range(30):
        _send_to_israel(live, tokens["TR"], {"text": f"Routine traffic {n}", "lang": "en"})
    for member in ("TR", "AZ"):
        page = officer(member).page
        card = page.locator("[data-conflict=C1]")
        expect(card).to_be_visible()
        expect(page.locator("#messages li").nth(29)).to_be_attached()  # the channel holds the 30 and more
        panel, box = page.locator("#conflicts").bounding_box(), card.bounding_box()
        assert panel["y"] <= box["y"] and box["y"] + box["height"] <= panel["y"] + panel["height"], (member, panel, box)
        assert page.locator("#messages").evaluate("el => el.clientHeight") >= 240  # the hotline keeps its room
        size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert size == [1366, 768], size


def test_after_a_reload_the_alarm_says_its_sound_is_off_until_a_click(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """A browser plays a page's sound only once someone clicked or typed in it: reloaded with an alert waiting
    (a browser restarted at 03:00), the banner came back and stayed silent ("The AudioContext was not allowed to
    start"), and nothing on screen said so. The tests' Chromium plays sound without a gesture, so the page here
    gets the browser's rule as an officer's browser applies it: its audio held suspended until a click or a key."""
    held_back = """
      let gesture = false;
      for (const e of ['pointerdown', 'keydown']) addEventListener(e, () => { gesture = true; }, true);
      const Real = window.AudioContext;
      window.AudioContext = class extends Real {
        constructor(...a) { super(...a); this.suspend(); }
        resume() { return gesture ? super.resume() : Promise.resolve(); }
      };
    """
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1 awaits Israel
    il = officer("IL")
    page = il.page
    expect(page.locator("#alarm")).to_be_visible()
    expect(page.locator("#alarm-sound-off")).to_be_hidden()  # the sound plays
    page.context.add_init_script(held_back)
    page.reload()  # signed in again from the tab's storage: nobody has clicked or typed in it since
    note = page.locator("#alarm-sound-off")
    expect(page.locator("#alarm")).to_be_visible()
    expect(note).to_be_visible()
    expect(note).to_have_text(say("he", "alarm.soundOff"))
    page.locator("#clock").click()
    expect(note).to_be_hidden()


def test_a_text_longer_than_its_field_holds_is_said_so_and_not_cut(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """A free text pasted at 4,103 characters went out cut to 4,000 without a word (the input's maxlength), the
    notice's title and a resolution's note the same at 500: the page says how long it is, and sends nothing."""
    il = officer("IL")
    page = il.page
    before = httpx.get(f"{live.url}{A}/messages", headers=auth(tokens["IL"]), timeout=10).json()
    text = "x" * 4_100 + "END"
    page.fill("#free-text", text)
    page.press("#free-text", "Enter")
    expect(page.locator("#hotline-error")).to_have_text(words("he", "hotline.form.tooLong", count="4,103", max="4,000"))
    expect(page.locator("#free-text")).to_have_value(text)  # nothing typed is lost
    assert httpx.get(f"{live.url}{A}/messages", headers=auth(tokens["IL"]), timeout=10).json() == before
    page.click("#open-notify")
    page.fill("#n-title", "t" * 501)
    page.click("#n-send")
    expect(page.locator("#notify")).to_contain_text(
        re.compile(rx("he", "hotline.form.tooLong", count="501", max="500"))
    )
    assert httpx.get(f"{live.url}{A}/activities", headers=auth(tokens["IL"]), timeout=10).json() == []


@pytest.mark.parametrize("template", ["incident_at", "query_activity"])
def test_a_phrase_form_can_be_sent_with_alerts_waiting_at_1366x768(
    live: LiveServer, tokens: dict[str, str], officer: Any, template: str
) -> None:
    """Three items waiting on Israel (the alarm's list open above the page): the form of a phrase with fields
    (report an incident, ask about an activity) ran below the time bar, its Send button out of reach of the mouse,
    and nothing scrolled to it."""
    for n, (lat, lon) in enumerate([(34.60, 38.25), (35.60, 39.25), (36.20, 37.10)]):
        post_notice(live, tokens["IL"], "air_sortie", lat, lon, 2 + n, 4 + n)
        post_notice(live, tokens["TR"], "uav_patrol", lat - 0.04, lon + 0.07, 2 + n, 4 + n)  # C1-C3 await Israel
    page = officer("IL").page
    expect(page.locator("#waiting-list li")).to_have_count(3)
    page.click(f"[data-template={template}]")
    send = page.locator("#phrase-form button[type=submit]")
    send.scroll_into_view_if_needed()
    box, bar = send.bounding_box(), page.locator("#timebar").bounding_box()
    assert box is not None and box["y"] + box["height"] <= bar["y"], (box, bar)  # above the time bar, in the page
    send.click(timeout=5_000)  # the mouse reaches it (a refusal or a message: either way it was pressed)
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size == [1366, 768], size


def test_new_messages_arriving_while_the_hotline_is_scrolled_down_are_cued_not_hidden(
    live: LiveServer,
    tokens: dict[str, str],
    officer: Any,
) -> None:
    for n in range(12):  # enough messages to scroll
        r = httpx.post(
            f"{live.url}{A}/messages",
            json={"text": f"Routine traffic {n}", "lang": "en", "to": ["IL"]},
            headers=auth(tokens["TR"]),
            timeout=10,
        )
        assert r.status_code == 201, r.text
    il = officer("IL")
    page = il.page
    expect(page.locator("#messages li")).to_have_count(12)
    page.locator("#messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    cue = page.locator("#new-above")
    expect(cue).to_be_hidden()
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1: an alert to Israel, out of sight
    expect(cue).to_be_visible()
    expect(cue).to_contain_text(words("he", "hotline.newAbove", count="1"))
    cue.click()
    expect(cue).to_be_hidden()
    assert page.locator("#messages").evaluate("el => el.scrollTop") < 24
    # What Israel's officer sends is no news to it: the list goes to it, and nothing is counted as new above (its
    # own message was: "1 new above", the sender seeing nothing of what it had just sent)
    page.locator("#messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    r = httpx.post(
        f"{live.url}{A}/messages",
        json={"text": "Israel here, reading you", "lang": "en", "to": ["TR"]},
        headers=auth(tokens["IL"]),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    expect(page.locator("#messages li").first).to_contain_text("Israel here, reading you")
    wait_in_page(page, lambda: page.locator("#messages").evaluate("el => el.scrollTop") < 24, 10.0)
    expect(cue).to_be_hidden()


def _send_to_israel(server: LiveServer, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """A message to Israel posted with ``token`` (Türkiye's in these tests); its answer (asserted 201)."""
    r = httpx.post(f"{server.url}{A}/messages", json={**body, "to": ["IL"]}, headers=auth(token), timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _copy_db(source: str, target: str) -> None:
    """An SQLite database copied whole (SQLite's backup API), as a backup or a restore makes it."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _restored(live: LiveServer, db: str, backup: str, clock: Any) -> LiveServer:
    """``live`` stopped, its database restored from ``backup``, and a server on it again at the same address
    (the open page reconnects to it)."""
    live.stop()
    live.service.store.close()
    _copy_db(backup, db)
    return _again(live, db, clock)


def _again(live: LiveServer, db: str, clock: Any) -> LiveServer:
    """A server on ``db`` again, with ``live``'s settings at its address (``live`` stopped and closed)."""
    from deconflict.service import Service
    from deconflict.store import open_store

    return LiveServer(Service(open_store(db), clock=clock), live.settings, port=live.port).start()


def test_the_page_says_plainly_when_it_has_lost_the_service_and_when_it_is_back(
    live: LiveServer, officer: Any, db: str, clock: Any, tokens: dict[str, str]
) -> None:
    """A walkthrough stopped the service under an open page: the clock kept ticking, the lines said up and the
    time bar live; only a small grey "reconnecting" in the header said that nothing reached the page any more,
    new alerts included. After a few seconds without its stream the page now says so in a banner (an alert
    for screen readers), and takes it down once the stream is back."""
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # C1 awaits Israel
    page = officer("IL").page
    expect(page.locator("#stream-state")).to_have_class(re.compile("live"))
    expect(page.locator("#offline")).to_be_hidden()
    live.stop()
    live.service.store.close()
    expect(page.locator("#offline")).to_be_visible(timeout=30_000)
    expect(page.locator("#offline")).to_have_text(words("he", "header.streamLost", time=Rx(".*UTC.*")))
    expect(page.locator("#offline")).to_have_attribute("role", "alert")
    # Acknowledging then was answered by the browser's own "Failed to fetch", in English on the Hebrew page,
    # saying nothing of whether it went through: now in the page's words, that nothing was sent.
    page.locator("#waiting-list button.ack[data-id=C1]").click()
    expect(page.locator("#alarm-error")).to_have_text(say("he", "notify.errors.network"))
    again = _again(live, db, clock)
    try:
        expect(page.locator("#stream-state")).to_have_class(re.compile("live"))
        expect(page.locator("#offline")).to_be_hidden()
        # still true once the service is back: C1 waits, nothing was sent
        expect(page.locator("#alarm-error")).to_have_text(say("he", "notify.errors.network"))
        # acknowledged from another of Israel's windows: the failure's words go with C1 (they stayed, and read as
        # if a later action had failed too)
        again.service.acknowledge_conflict(mechanism_id="tr-il-syria", actor="IL", conflict_id="C1")
        expect(page.locator("#alarm")).to_be_hidden()  # nothing waits on Israel any more
        expect(page.locator("#alarm-error")).to_have_text("")
    finally:
        again.stop()
        again.service.store.close()


def test_a_stream_gone_silent_is_taken_for_dead_and_opened_again(live: LiveServer, officer: Any) -> None:
    """A link that drops without a reset leaves the page's stream open with nothing coming, not even the
    keep-alives the service sends when quiet: without a closed connection to notice, the page showed "live"
    for as long as the browser kept the socket. It now reads the service's keep-alive period from the stream's
    answer and, after several periods of silence (at least 20 s), opens another stream. The service is made
    to go quiet by raising its keep-alive period under the open stream (object.__setattr__: the settings are
    frozen)."""
    page = officer("IL").page
    expect(page.locator("#stream-state")).to_have_class(re.compile("live"))
    opened: list[float] = []
    page.on("request", lambda r: opened.append(time.monotonic()) if "/events" in r.url else None)
    period = live.settings.stream_keepalive_s
    object.__setattr__(live.settings, "stream_keepalive_s", 3600.0)
    try:
        quiet = time.monotonic()
        wait_in_page(page, lambda: bool(opened), 60.0)  # none on the code before: it waited on the silent one
    finally:
        object.__setattr__(live.settings, "stream_keepalive_s", period)
    assert opened[0] - quiet >= 15, opened[0] - quiet  # not before several keep-alive periods (20 s here)
    expect(page.locator("#stream-state")).to_have_class(re.compile("live"))
    expect(page.locator("#offline")).to_be_hidden()


def test_the_page_goes_on_when_the_service_comes_back_from_a_backup_without_what_it_had_shown(
    live: LiveServer, tokens: dict[str, str], officer: Any, db: str, clock: Any, tmp_path: Any
) -> None:
    """The service is restored from a backup taken before messages the open page had shown (its database lost,
    or failed over to a copy without them). The page, never reloaded, must not wait for the record to grow
    past what it had seen: it says the record was restored, drops what is gone, shows what was written since,
    and sounds again for what waits on us, even where a new message takes the number of a lost one that had
    already sounded (a walkthrough found it silent), and whether it was written before the page reconnected
    or after. It did wait: no new message or alert reached it until the record grew past its last position."""
    query = {"template": "incident_at", "params": {"place": "T4", "t1": "2025-04-09T08:00", "party": "TR"}}
    page = officer("IL").page
    backup = str(tmp_path / "backup.db")
    _copy_db(db, backup)
    lost = _send_to_israel(live, tokens["TR"], query)  # waits on Israel: it sounds
    for n in (1, 2):
        _send_to_israel(live, tokens["TR"], {"text": f"Shown then lost {n}", "lang": "en"})
    expect(page.locator("#messages li")).to_have_count(3)
    expect(page.locator("#alarm")).to_be_visible()
    sounded = page.evaluate("cop.state.beeps")
    assert sounded >= 1
    again = _restored(live, db, backup, clock)  # the record as it was before the three messages
    try:
        asked = _send_to_israel(again, tokens["TR"], query)  # the lost query's number, perhaps before the page is back
        assert asked["id"] == lost["id"]
        _send_to_israel(again, tokens["TR"], {"text": "Written after the restore", "lang": "en"})
        expect(page.locator("#messages li")).to_have_count(2, timeout=15_000)
        expect(page.locator("#messages")).to_contain_text("Written after the restore")
        expect(page.locator("#messages")).not_to_contain_text("Shown then lost")
        expect(page.locator("#stream-state")).to_have_text(words("he", "header.streamRewound"))
        expect(page.locator("#alarm")).to_be_visible()
        wait_until(lambda: page.evaluate("cop.state.beeps") > sounded, 15.0)
    finally:
        again.stop()
        again.service.store.close()


def test_the_page_finds_out_when_the_record_it_held_was_written_over_while_it_was_away(
    live: LiveServer, tokens: dict[str, str], officer: Any, db: str, clock: Any, tmp_path: Any
) -> None:
    """The page is offline while the service is restored from a backup and then writes as many entries as
    were lost: when the page comes back, the record is as long as what it holds, so sequence numbers alone
    cannot tell. The page sends the hash of the last entry it holds (``Last-Event-Hash``); the service says
    its entry there is another, and the page reads everything again: the lost messages go, the new show."""
    page = officer("IL").page
    backup = str(tmp_path / "backup.db")
    _copy_db(db, backup)
    for n in (1, 2, 3):
        _send_to_israel(live, tokens["TR"], {"text": f"Shown then lost {n}", "lang": "en"})
    expect(page.locator("#messages li")).to_have_count(3)
    page.context.set_offline(True)
    again = _restored(live, db, backup, clock)
    try:
        for n in (1, 2, 3):  # as many entries as were lost: the record is as long as the page's
            _send_to_israel(again, tokens["TR"], {"text": f"Written over {n}", "lang": "en"})
        page.context.set_offline(False)
        expect(page.locator("#messages")).to_contain_text("Written over 3", timeout=15_000)
        expect(page.locator("#messages")).not_to_contain_text("Shown then lost")
        expect(page.locator("#stream-state")).to_have_text(words("he", "header.streamRewound"))
    finally:
        again.stop()
        again.service.store.close()


def test_the_channel_shows_its_newest_messages_once_it_holds_more_than_a_page(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """The page read the channel's first 500 messages: once it held more, the duty officer never saw a new
    one in the channel again (after a few weeks of hourly line checks). It reads the last 500
    (``?newest=true``), and a message arriving while it is open shows at the top. A question that still
    waits on us from before them stays in reach (``?awaiting=true``): its card is there for the waiting
    list's Show, and it is offered as what an answer is about; a party is never offered its own question."""
    from support.builders import M

    query = {"template": "incident_at", "params": {"place": "T4", "t1": "2025-04-09T08:00", "party": "TR"}}
    asked = live.service.send_message(mechanism_id=M, actor="TR", to=["IL"], **query)["id"]
    for n in range(505):
        live.service.send_message(mechanism_id=M, actor="TR", text=f"Routine traffic {n}", lang="en", to=["IL"])
    late = live.service.send_message(mechanism_id=M, actor="TR", to=["IL"], **query)["id"]
    page = officer("IL").page
    listed = page.locator("#messages li")
    expect(listed).to_have_count(501, timeout=15_000)  # the newest 500, and the question older than them
    expect(listed.first).to_have_attribute("data-message", late)  # newest first
    expect(listed.nth(1)).to_contain_text(re.compile(r"Routine traffic 504(?!\d)"))
    expect(listed.nth(499)).to_contain_text(re.compile(r"Routine traffic 6(?!\d)"))  # the oldest of the last 500
    page.locator(f'#alarm button[data-action="show"][data-id="{asked}"]').click()
    expect(page.locator(f'#messages [data-message="{asked}"]')).to_be_focused()
    for question in (asked, late):
        expect(page.locator(f'#re option[value="{question}"]')).to_have_count(1)
    expect(officer("TR").page.locator(f'#re option[value="{late}"]')).to_have_count(0)  # Türkiye asked it
    _send_to_israel(live, tokens["TR"], {"text": "Arrived while the page was open", "lang": "en"})
    expect(listed.first).to_contain_text("Arrived while the page was open")
    expect(listed).to_have_count(501)


def test_the_channel_is_read_again_while_messages_never_stop_coming(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """The page reads what changed 80 ms after the last entry streamed in: under traffic that never paused that
    long, it read nothing again until the traffic stopped (a walkthrough saw 18 s). It reads at least once a
    second now, whatever comes."""
    import threading

    page = officer("IL").page
    listed = page.locator("#messages li")
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=live.url, headers=auth(tokens["TR"]), timeout=10) as c:
            n = 0
            ends = time.monotonic() + 60  # longer than the wait below: the traffic never pauses while it waits
            while not stop.is_set() and time.monotonic() < ends:
                c.post(f"{A}/messages", json={"text": f"Burst {n}", "lang": "en", "to": ["IL"]})
                n += 1
                stop.wait(0.02)

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        # once a second, and then a GET and a render: 15 s for a loaded machine (the old page waited for a pause)
        expect(listed.first).to_contain_text(re.compile(r"Burst \d+"), timeout=15_000)
        assert sender.is_alive(), "the traffic stopped before the page was read again: the test proves nothing"
    finally:
        stop.set()
        sender.join()


def test_signing_in_before_the_sign_in_page_has_its_words_signs_in_once_and_stays(
    browser: Any, live: LiveServer, tokens: dict[str, str]
) -> None:
    """A duty officer who types the token and presses Enter while the sign-in page is still loading its
    language (a slow link; the form is live already) is signed in once and stays signed in. The page used to
    sign in a second time with the token the first sign-in had just kept in the tab, fail (the map was drawn
    already), forget the token under the first, whose next requests then said ``Bearer null``: 401, and the
    page signed itself out before it ever went live (seen as a rare CI failure under load)."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        held: list[Any] = []
        context.route("**/web/i18n/en.json", lambda route: held.append(route))  # the sign-in page's words, held back
        bearers: list[str] = []
        page = context.new_page()
        page.on("request", lambda r: bearers.append(r.headers.get("authorization", "")))
        page.goto(live.url + "/", wait_until="commit")
        wait_in_page(page, lambda: held, 10)  # the page asked for its English words
        page.fill("#token", tokens["TR"])
        page.press("#token", "Enter")
        # the sign-in keeps the token in the tab once /me has answered
        wait_in_page(page, lambda: page.evaluate("sessionStorage.getItem('deconflict.token')"), 10)
        held[0].continue_()  # the words arrive: the page's start goes on
        expect(page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=15_000)
        page.wait_for_timeout(1500)  # the first sign-in's reads and the stream, all answered
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#stream-state")).to_have_class(re.compile("live"))
        assert "Bearer null" not in bearers
        assert page.evaluate("sessionStorage.getItem('deconflict.token')") == tokens["TR"]
    finally:
        context.close()


def test_a_token_typed_while_the_kept_one_signs_in_after_a_reload_waits_for_it(
    browser: Any, live: LiveServer, tokens: dict[str, str]
) -> None:
    """After a reload the page signs in with the token the tab kept; the sign-in form shows meanwhile. A token
    typed there then (another member's, here) waits for that sign-in, one at a time: the page is the kept
    member's, every request says that member's token, and none says ``Bearer null``. Two sign-ins at once
    drew the map twice, and the one that failed left the page with the other's token or none."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.goto(live.url + "/")
        page.fill("#token", tokens["TR"])
        page.press("#token", "Enter")
        expect(page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=15_000)
        held: list[Any] = []
        released = [False]
        # the kept token's sign-in, held at /me (and any other sign-in's /me, until they are let go)
        page.route("**/api/v1/me", lambda route: route.continue_() if released[0] else held.append(route))
        bearers: list[str] = []
        page.on("request", lambda r: bearers.append(r.headers.get("authorization", "")))
        page.reload(wait_until="commit")
        wait_in_page(page, lambda: held, 10)  # the reloaded page signs in with the token it kept
        expect(page.locator("#signin")).to_be_visible()
        page.fill("#token", tokens["IL"])
        page.press("#token", "Enter")
        page.wait_for_timeout(300)
        released[0] = True
        for route in held:
            route.continue_()
        expect(page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=15_000)
        page.wait_for_timeout(1500)
        expect(page.locator("#app")).to_be_visible()
        assert page.evaluate("document.documentElement.dataset.member") == "TR"
        sent = {b for b in bearers if b}
        assert sent == {f"Bearer {tokens['TR']}"}, sorted(b[:20] for b in sent)
    finally:
        context.close()


def test_a_coordinate_written_the_other_way_is_read_on_every_page_and_a_radius_never(officer: Any) -> None:
    """A centre's latitude or longitude typed the other usual way is read on every page's locale, the Russian
    one too (it groups with a space, so both other ways are tried: 37.125 and 37125, of which one is in range);
    a field that is not a coordinate is read only this page's way."""
    page = officer("TR").page
    read = """([text, loc, eitherWay]) => import('/web/js/numbers.js').then((m) =>
        m.readNumber(text, { range: [-180, 180], loc, eitherWay }))"""
    for loc in ("ru", "tr", "en", "he", "ar"):
        for text, value in (("37.125", 37.125), ("34.567", 34.567), ("-36.125", -36.125), ("36.25", 36.25)):
            assert page.evaluate(read, [text, loc, True]) == {"value": value}, (loc, text)
    assert page.evaluate(read, ["37,125", "en", False]) == {"value": 37125}  # not a coordinate: this page's way
    assert page.evaluate(read, ["37,125", "ru", True]) == {"value": 37.125}


def test_a_free_text_half_typed_survives_a_reload_and_keeps_its_subject_while_typed(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """Türkiye's officer types a free text about Israel's activity to Israel alone. A new conflict arriving
    meanwhile does not change what the text is about under the officer's hands (it moved to the new alert).
    The page reloaded, the text, its subject and its addressee are as they were (they were lost); sent, the
    box stays empty after another reload; signing out by hand leaves nothing for whoever signs in next."""
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, title="air_sortie near Palmyra")  # IL-0001
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, title="uav_patrol near Palmyra")  # C1
    tr = officer("TR")
    page = tr.page
    page.select_option("#re", "IL-0001")
    page.uncheck("#to-parties input[value=AZ]")
    text = "İHA devriyemiz 3 km doğuya kayıyor; lütfen teyit edin"
    page.fill("#free-text", text)
    post_notice(live, tokens["IL"], "air_sortie", 34.57, 38.30, title="a second sortie")  # a new conflict, C2
    expect(page.locator("[data-conflict=C2]")).to_be_visible(timeout=15_000)
    page.wait_for_timeout(500)  # the About list drawn again after the conflict's alert
    expect(page.locator("#re")).to_have_value("IL-0001")

    page.reload()
    expect(page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=15_000)
    expect(page.locator("#free-text")).to_have_value(text)
    expect(page.locator("#re")).to_have_value("IL-0001")
    expect(page.locator("#to-parties input[value=IL]")).to_be_checked()
    expect(page.locator("#to-parties input[value=AZ]")).not_to_be_checked()

    page.press("#free-text", "Enter")
    expect(page.locator("#free-text")).to_have_value("")
    r = httpx.get(f"{live.url}{A}/messages", headers=auth(tokens["TR"]), timeout=10)
    (sent,) = [m for m in r.json() if m.get("free_text")]
    assert (sent["to"], sent["about"]) == (["IL"], {"kind": "activity", "id": "IL-0001"})
    page.reload()
    expect(page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=15_000)
    expect(page.locator("#free-text")).to_have_value("")
    expect(page.locator("#to-parties input[value=AZ]")).to_be_checked()  # everyone again

    page.fill("#free-text", "not for the next officer")
    with page.expect_navigation():
        page.click("#signout")
    expect(page.locator("#signin")).to_be_visible(timeout=15_000)
    page.fill("#token", tokens["TR"])
    page.press("#token", "Enter")
    expect(page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=15_000)
    expect(page.locator("#free-text")).to_have_value("")
