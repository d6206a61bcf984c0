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
    az = officer("AZ")
    az.page.click(f"[data-resolve-conflict={cid}]")
    expect(az.page.locator(f"#resolve-{cid}-accepted")).to_be_disabled()
    expect(az.page.locator(f"#resolve-{cid}-escalated")).to_be_checked()
    expect(az.page.locator(f"#resolve-{cid}-escalated")).to_be_focused()
    live.service.acknowledge_conflict(mechanism_id="tr-il-syria", actor="TR", conflict_id=cid)
    expect(az.page.locator(f"#resolve-{cid}-accepted")).to_be_enabled()
