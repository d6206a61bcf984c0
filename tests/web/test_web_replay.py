"""The time bar's replay (issue 17): the page asks for what matters around the instant (``window_h=24``) and
draws it: a notice that ended more than a day before the instant is left out, what was in force, open or
to come then is there, and the conflicts open then are listed, as replay from entry 1 cut the same way gives."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect
from support.builders import M
from support.live import LiveServer, post_notice

from deconflict.clock import FixedClock
from deconflict.store import replay


def slide(page: Any, minutes: int) -> None:
    """Move the time bar to ``minutes`` from now, as dragging it would."""
    page.evaluate(
        "v => { const s = document.querySelector('#timeline'); s.value = v; s.dispatchEvent(new Event('input')); }",
        str(minutes),
    )


def test_the_time_bar_replays_what_matters_around_the_instant(
    live: LiveServer, tokens: dict[str, str], officer: Any, clock: FixedClock
) -> None:
    post_notice(live, tokens["IL"], "air_sortie", 34.60, 38.25, 2, 4)  # IL-0001, ends 4 h from now
    post_notice(live, tokens["TR"], "uav_patrol", 34.56, 38.32, 2, 4)  # TR-0001 and C1, left open
    post_notice(live, tokens["IL"], "air_sortie", 35.10, 36.75, 2, 4)  # IL-0002
    (acked,) = post_notice(live, tokens["TR"], "uav_patrol", 35.12, 36.77, 2, 4)["raised"]  # TR-0002 and C2
    for party in acked["awaiting"]:  # acknowledged, never resolved: it counts until a day after its window
        live.service.acknowledge_conflict(mechanism_id=M, actor=party, conflict_id=acked["id"])
    clock.advance(seconds=39 * 3600)
    post_notice(live, tokens["IL"], "air_sortie", 36.20, 37.10, 2, 4)  # IL-0003
    post_notice(live, tokens["TR"], "uav_patrol", 36.22, 37.12, 2, 4)  # TR-0003 and C3
    clock.advance(seconds=3600)
    il = officer("IL")
    page = il.page
    expect(page.locator("[data-conflict]")).to_have_count(2)  # C1 too: open, however old; not C2
    expect(page.locator("path[data-activity='IL-0003']").first).to_be_attached()
    # live holds what ended in the last day, as the time bar's window does: IL-0001 ended 36 h ago
    expect(page.locator("path[data-activity='IL-0001']")).to_have_count(0)
    with page.expect_request(lambda r: "/replay?" in r.url) as asked:
        slide(page, -30)  # half an hour ago: after both pairs
    query = parse_qs(urlparse(asked.value.url).query)
    assert query["window_h"] == ["24"]
    expect(page.locator("#mode-badge")).to_be_visible()
    expect(page.locator("[data-conflict=C1]")).to_be_visible()  # open then, however old
    expect(page.locator("[data-conflict=C3]")).to_be_visible()
    expect(page.locator("[data-conflict=C2]")).to_have_count(0)  # acknowledged, its window over 35 h before
    expect(page.locator("path[data-activity='IL-0003']").first).to_be_attached()  # to come then
    expect(page.locator("path[data-activity='IL-0001']")).to_have_count(0)  # ended 35 h before
    # what the page was given is replay from entry 1 at that instant, cut the same way
    instant = datetime.fromisoformat(query["at"][0])
    cut = live.service.replay_around(M, instant, snapshots=False)
    assert cut == replay.cut(live.service.replay_stored(M, instant, snapshots=False))
    assert [a["id"] for a in cut["activities"]] == ["IL-0003", "TR-0003"]
    assert [c["id"] for c in cut["conflicts"]] == ["C1", "C3"]
    page.click("#live")
    expect(page.locator("#mode-badge")).to_be_hidden()
    expect(page.locator("path[data-activity='IL-0003']").first).to_be_attached()
    expect(page.locator("[data-conflict]")).to_have_count(2)


def test_a_window_out_of_range_is_refused_naming_it(client: Any, tokens: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {tokens['IL']}"}
    for bad in ("0", "49", "x"):
        r = client.get(f"/api/v1/mechanisms/{M}/replay?at=2025-04-09T06:00:00Z&window_h={bad}", headers=auth)
        assert r.status_code == 422, r.text
        assert "window_h" in r.text and "Traceback" not in r.text
    r = client.get(f"/api/v1/mechanisms/{M}/replay?at=2025-04-09T06:00:00Z&window_h=6", headers=auth)
    assert r.status_code == 200 and r.json()["window"]["hours"] == 6


def test_the_time_bar_keeps_its_size_whatever_its_label_says(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    """The slider keeps its width under the pointer while it is dragged: its label took the room of a long
    sentence ("İleri: 07 Ara 21:59 UTC saatinde yürürlükteki faaliyetler ve çakışmalar") and the slider shrank from
    910 to 617 px mid-drag, the instant under the pointer jumping by hours. Turkish and Hebrew, past and future."""
    for party in ("TR", "IL"):
        page = officer(party).page
        bar = page.locator("#timeline")
        live_box = bar.bounding_box()
        assert live_box is not None
        for minutes in (-30, 600, 2880, -1440):
            slide(page, minutes)
            expect(page.locator("#timeline-label")).not_to_have_text(re.compile(r"^\s*$"))
            page.wait_for_timeout(150)
            box = bar.bounding_box()
            assert (
                box is not None and abs(box["width"] - live_box["width"]) < 1 and abs(box["x"] - live_box["x"]) < 1
            ), (
                party,
                minutes,
                live_box,
                box,
            )
        page.click("#live")
