"""The entries a write hands to the entry listeners once it commits (the event streams keep them instead of
reading them back) are the entries the store gives back, field for field and in order, for every kind of entry
a scripted hour of the mechanism writes (notices, conflicts, alerts, acknowledgements, escalations, line
checks, an amendment) and for messages with text beyond ASCII and numbers of every size. Real SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.builders import M
from support.day import build_day

from deconflict.service import Service


def test_the_entries_handed_over_are_the_entries_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[tuple[str, dict[str, Any]]] = []
    init = Service.__init__

    def listening(self: Service, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.entry_listeners.append(lambda mid, docs: heard.extend((mid, d) for d in docs))

    monkeypatch.setattr(Service, "__init__", listening)
    svc = build_day(str(tmp_path / "day.db"))
    svc.send_message(mechanism_id=M, actor="TR", text='Ünïcödé \u2014 \U0001f6e9 "quoted" \\ back', to=["IL"])
    for place in (2**70, 0.1, -0.0, 1e300):  # numbers as a phrase's parameter, written as given
        params = {"place": place, "t1": "2025-04-09T08:00", "party": "IL"}
        svc.send_message(mechanism_id=M, actor="IL", template="incident_at", params=params, to=["TR"])
    stored = svc.entries_after(M, 0, limit=100_000)
    kinds = {e["type"] for e in stored}
    assert {"message.sent", "activity.notified", "conflict.detected", "message.escalated"} <= kinds
    assert [d for mid, d in heard if mid == M] == stored  # every entry, the declaration's too
    assert [repr(d) for mid, d in heard if mid == M] == [repr(e) for e in stored]  # the same types and order
