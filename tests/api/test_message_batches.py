"""Hotline messages that arrive while the record is busy are recorded together (api/fast.py ``Batches``,
``Service.send_messages``), over real HTTP on loopback: each request still gets the answer it would get alone,
one party's bad message fails no other's, every 201 is in the record once, and each party's event stream
carries what it may read, in the record's order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from support.batches import batches_begun, known_to_the_fast_path
from support.builders import A, M
from support.live import LiveServer, SSEReader, auth, next_events_of, wait_until

from deconflict.store import open_store

TEXTS = [("TR", "IL", f"Türkiye {n}") if n % 2 == 0 else ("IL", "TR", f"ישראל {n}") for n in range(10)]


def _post(live: LiveServer, token: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{live.url}/api/v1/mechanisms/{M}/messages",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


def test_messages_queued_behind_the_gate_are_answered_each_as_alone(
    live: LiveServer, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = [
        ("TR", {"template": "holding", "params": {"ref": "M1e3"}, "to": ["IL"]}),  # not a number: names nothing
        ("IL", {"text": "to nobody", "to": []}),  # 422, the service's words
        ("AZ", {"template": "holding", "params": {"ref": "C1"}}),  # a facilitator holds nothing: 403
        ("IL", {"template": "holding", "params": {"ref": "C1"}, "about": {"kind": "conflict", "id": "C404"}}),
    ]
    bodies = [
        (sender, {"text": text, "to": [to], "lang": "tr" if sender == "TR" else "he"}) for sender, to, text in TEXTS
    ]
    bodies[3:3] = hostile
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
                first = pool.submit(_post, live, tokens["TR"], {"text": "first", "to": ["IL"]})
                wait_until(
                    lambda: batches_begun(live, "send_messages") == 1,
                    "the first message taken alone, at the gate",
                    deadline_s=60,
                )
                queued = [pool.submit(_post, live, tokens[sender], body) for sender, body in bodies]
                wait_until(
                    lambda: batches.waiting == len(bodies), "every other message queued behind it", deadline_s=60
                )
                assert not first.done()
        finally:
            other.close()
        answers = [first.result(), *(q.result() for q in queued)]
    statuses = [a.status_code for a in answers]
    assert statuses == [201, 201, 201, 201, 201, 422, 403, 404, *[201] * 7], [a.text for a in answers]
    assert batches_begun(live, "send_messages") == 2  # the first alone, then all the others together
    for (sender, body), got in zip(hostile, answers[4:8], strict=True):  # what each gets alone, now
        alone = _post(live, tokens[sender], body)
        assert alone.status_code == got.status_code
        if got.status_code != 201:
            assert alone.json() == got.json()
    sent = [a.json() for a in answers if a.status_code == 201]
    assert len({m["id"] for m in sent}) == len(sent) == 12
    record = {e["payload"]["id"]: e["seq"] for e in live.service.entries_after(M, head) if e["type"] == "message.sent"}
    assert {m["id"]: m["seq"] for m in sent}.items() <= record.items()  # each recorded once, where its answer says
    assert [m["text"] for m in sent[1:4]] == [text for _, _, text in TEXTS[:3]]
    in_order = sorted(m["seq"] for m in sent)
    with httpx.Client(base_url=live.url) as client:
        for party in ("TR", "IL"):
            reader = SSEReader(client, f"{A}/events?after={head}", auth(tokens[party]))
            try:
                events = next_events_of(reader, {"message.sent"}, len(sent))
            finally:
                reader.close()
            assert [seq for seq, _, _ in events] == in_order  # each once, in the record's order
            assert all("payload" in e for _, _, e in events)  # between the two of them: none withheld
