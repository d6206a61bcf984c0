"""The time bar's lists in the live lists' order: a replayed state listed its messages and conflicts by id as
text, so M10 came between M1 and M2 and the page, which shows the newest first, put the newest message in the
middle of the hotline once ids reached ten (found using it as an investigator)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from support.builders import A
from support.live import LiveServer, auth, post_notice

from deconflict.clock import FixedClock, iso


def test_a_replayed_hotline_and_its_conflicts_come_in_the_order_they_happened(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, clock: FixedClock
) -> None:
    for i in range(6):  # twelve notices over one place: a conflict each after the first, an alert to each party
        post_notice(live, tokens["IL" if i % 2 else "TR"], "uav_patrol", 34.5, 37.6 + i * 0.01, title=f"n{i}")
        clock.advance(seconds=30)
        post_notice(live, tokens["TR" if i % 2 else "IL"], "air_sortie", 34.5, 37.6 + i * 0.01, title=f"m{i}")
        clock.advance(seconds=30)
    # two conflicts in one second, the later at half past it (as text ".500000Z" sorts before "Z")
    post_notice(live, tokens["TR"], "uav_patrol", 34.9, 38.0, title="half")
    post_notice(live, tokens["IL"], "air_sortie", 34.9, 38.0, title="whole")
    clock.advance(seconds=0.5)
    post_notice(live, tokens["IL"], "air_sortie", 34.9, 38.0, title="half past")
    clock.advance(seconds=30)
    for i in range(3):
        sent = client.post(f"{A}/messages", json={"text": f"say {i}"}, headers=auth(tokens["TR"]))
        assert sent.status_code == 201, sent.text
        clock.advance(seconds=5)
    live_messages = client.get(f"{A}/messages", headers=auth(tokens["TR"]), params={"limit": 500}).json()
    live_conflicts = client.get(f"{A}/conflicts", headers=auth(tokens["TR"])).json()
    assert len(live_messages) >= 12 and len(live_conflicts) >= 10  # ids past ten: M10, C10 and after
    replayed = client.get(f"{A}/replay", headers=auth(tokens["TR"]), params={"at": iso(clock())}).json()
    seqs = [m["seq"] for m in replayed["messages"]]
    assert seqs == sorted(seqs)
    assert [m["id"] for m in replayed["messages"]] == sorted(
        (m["id"] for m in live_messages), key=lambda i: next(m["seq"] for m in live_messages if m["id"] == i)
    )
    assert [c["id"] for c in replayed["conflicts"]] == [c["id"] for c in live_conflicts]
    around = client.get(f"{A}/replay", headers=auth(tokens["TR"]), params={"at": iso(clock()), "window_h": 24}).json()
    assert [m["seq"] for m in around["messages"]] == sorted(m["seq"] for m in around["messages"])
    assert [c["id"] for c in around["conflicts"]] == [c["id"] for c in live_conflicts if c["id"] in
                                                      {x["id"] for x in around["conflicts"]}]  # fmt: skip


def test_a_replay_at_an_instant_still_to_come_says_it_is_the_record_as_it_stands_now(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client, clock: FixedClock
) -> None:
    """As ``deconflict replay --at`` says in its note: a duty officer who asks the state at tomorrow 08:00 gets
    today's record, in which no deadline has passed yet and no alert has climbed, and is told so."""
    post_notice(live, tokens["TR"], "uav_patrol", 34.5, 37.6, title="n")
    post_notice(live, tokens["IL"], "air_sortie", 34.5, 37.6, title="m")
    now = clock()
    for at, window, to_come in [
        (now, None, False),
        (now + timedelta(hours=20), None, True),
        (now + timedelta(hours=20), 24, True),
        (now - timedelta(seconds=1), 24, False),
    ]:
        params = {"at": iso(at), **({"window_h": window} if window else {})}
        answer = client.get(f"{A}/replay", headers=auth(tokens["TR"]), params=params)
        assert answer.status_code == 200, answer.text
        assert answer.json()["still_to_come"] is to_come, params
    # the earliest instant a caller may name, with a window reaching before it: answered, not refused in a field
    # 'since' the request does not have
    early = client.get(f"{A}/replay", headers=auth(tokens["TR"]), params={"at": "2000-01-01T00:00:00Z", "window_h": 24})
    assert early.status_code == 200, early.text
