"""Notices that arrive while the record is busy are recorded together (api/fast.py ``Batches``,
``Service.notify_many``), over real HTTP on loopback: each request still gets the answer it would get alone,
a bad notice fails no other, a notice meets those before it in the same batch, every 201 is in the record
once, and the other party's event stream carries the conflicts they raise."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from support.batches import batches_begun, known_to_the_fast_path
from support.builders import A, M, offset, vol
from support.live import LiveServer, SSEReader, auth, next_events_of, wait_until

from deconflict.store import open_store

FAR = offset((37.6298, 34.5227), 90, 150_000)


def _post(live: LiveServer, token: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{live.url}{A}/activities", headers=auth(token), json=body, timeout=30)


def _queued(batches: Any, n: int) -> None:
    wait_until(lambda: batches.waiting == n, f"notice {n} queued", deadline_s=60)


def test_notices_queued_behind_the_gate_are_recorded_together_and_answered_each_as_alone(
    live: LiveServer, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [
        ("TR", {"kind": "uav_patrol", "volumes": [vol(start_h=3)]}),  # TR-0002 (TR-0001 goes first, alone)
        ("IL", {"kind": "air_sortie", "volumes": [vol(start_h=3)]}),  # IL-0001: meets TR-0001 and TR-0002
        ("IL", {"kind": "air_sortie", "volumes": [vol(start_h=3, radius_m=-1)]}),  # 422
        ("AZ", {"kind": "uav_patrol", "volumes": [vol(FAR)]}),  # the facilitator notifies nothing: 403
        ("IL", {"kind": "exercise", "id": "IL-0009", "volumes": [vol(FAR, start_h=4)]}),
        ("IL", {"kind": "exercise", "id": "IL-0009", "volumes": [vol(FAR, start_h=5)]}),  # taken just before: 409
        ("TR", {"kind": "exercise", "volumes": [vol(FAR, start_h=4)]}),  # TR-0003: meets IL-0009, just before it
    ]
    known_to_the_fast_path(live, tokens, monkeypatch)
    # the first write waits at the gate while the others are sent and queued, one request at a time: on a loaded
    # machine that may take longer than the 10 s a process gives another holding the record (then a 503)
    monkeypatch.setattr(live.service.store.gate, "wait_s", 120.0)
    head = live.service.entries_after(M, 0)[-1]["seq"]
    batches = live.app.state.batches
    other = open_store(live.settings.db)  # another opening of the database: its gate shuts this server's out
    with ThreadPoolExecutor(len(bodies) + 1) as pool:
        try:
            with other.gate.hold(M):
                first = pool.submit(_post, live, tokens["TR"], {"kind": "uav_patrol", "volumes": [vol(start_h=3)]})
                wait_until(
                    lambda: batches_begun(live, "notify_many") == 1,
                    "the first notice taken alone, at the gate",
                    deadline_s=60,
                )
                queued = []
                for sender, body in bodies:  # one after the other: the batch takes them in the order they came
                    queued.append(pool.submit(_post, live, tokens[sender], body))
                    _queued(batches, len(queued))
                assert not first.done()
        finally:
            other.close()
        answers = [first.result(), *(q.result() for q in queued)]
    statuses = [a.status_code for a in answers]
    assert statuses == [201, 201, 201, 422, 403, 201, 409, 201], [(a.status_code, a.text[:90]) for a in answers]
    assert batches_begun(live, "notify_many") == 2  # the first alone, then all the others together
    made = [a.json() for a in answers if a.status_code == 201]
    assert [m["activity"]["id"] for m in made] == ["TR-0001", "TR-0002", "IL-0001", "IL-0009", "TR-0003"]
    raised = made[2]["raised"]  # IL-0001 meets both TR notices, the second notified in its own batch
    assert sorted(c["other_activity"] for c in raised) == ["TR-0001", "TR-0002"], raised
    assert [c["other_activity"] for c in made[4]["raised"]] == ["IL-0009"]
    assert not made[0]["raised"] and not made[1]["raised"] and not made[3]["raised"]
    assert "'IL-0009' already exists" in answers[6].json()["detail"]
    notified = [
        (e["payload"]["id"], e["seq"]) for e in live.service.entries_after(M, head) if e["type"] == "activity.notified"
    ]
    assert [i for i, _ in notified] == [m["activity"]["id"] for m in made]  # each recorded once, in order
    after = [seq for _, seq in notified[1:]] + [live.service.entries_after(M, head)[-1]["seq"] + 1]
    for (_, seq), m, following in zip(notified, made, after, strict=True):
        # an answer's seq: its notice's last entry (after a conflict, the conflict's alerts), where the record stands
        assert m["seq"] == following - 1 and (m["seq"] > seq) == bool(m["raised"])
    conflicts = {c["id"] for m in made for c in m["raised"]}
    assert len(conflicts) == 3
    with httpx.Client(base_url=live.url) as client:  # the other party hears of each conflict raised, once
        reader = SSEReader(client, f"{A}/events?after={head}", auth(tokens["TR"]))
        try:
            events = next_events_of(reader, {"conflict.detected"}, len(conflicts))
        finally:
            reader.close()
    assert {e["payload"]["id"] for _, _, e in events} == conflicts
    assert live.service.verify(M).ok
