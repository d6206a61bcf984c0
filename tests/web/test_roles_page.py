"""The page offers what the role table allows (docs/roles.md): the facilitator may resolve a conflict as
accepted only once the party it awaits acknowledged it; until then its Resolve form offers escalated."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect
from support.builders import T4
from support.live import LiveServer, post_notice


def test_the_facilitator_accepts_only_after_the_awaited_party_acknowledged(
    live: LiveServer, tokens: dict[str, str], officer: Any
) -> None:
    post_notice(live, tokens["TR"], "uav_patrol", T4[1], T4[0])
    conflict = post_notice(live, tokens["IL"], "air_sortie", T4[1], T4[0])["raised"][0]
    assert conflict["awaiting"] == ["TR"]
    cid = conflict["id"]
    for far in ((35.2, 36.7), (35.6, 39.3)):  # more conflicts above and below: the panel is full
        post_notice(live, tokens["TR"], "uav_patrol", *far)
        post_notice(live, tokens["IL"], "air_sortie", *far)
    az = officer("AZ")
    az.page.click(f"[data-resolve-conflict={cid}]")
    # the open form whole in view: its note and its button were below the panel's edge
    expect(az.page.locator(f"#resolve-{cid}-note")).to_be_in_viewport(ratio=1)
    expect(az.page.locator(f"[data-resolve-form={cid}] button[type=submit]")).to_be_in_viewport(ratio=1)
    bottom = az.page.locator("#conflicts").bounding_box()
    button = az.page.locator(f"[data-resolve-form={cid}] button[type=submit]").bounding_box()
    assert bottom is not None and button is not None
    assert button["y"] + button["height"] <= bottom["y"] + bottom["height"], (button, bottom)  # not under the hotline
    expect(az.page.locator(f"#resolve-{cid}-accepted")).to_be_disabled()
    expect(az.page.locator(f"#resolve-{cid}-escalated")).to_be_checked()
    expect(az.page.locator(f"#resolve-{cid}-escalated")).to_be_focused()
    live.service.acknowledge_conflict(mechanism_id="tr-il-syria", actor="TR", conflict_id=cid)
    expect(az.page.locator(f"#resolve-{cid}-accepted")).to_be_enabled()
