"""What the tests of writes recorded together (hotline messages, notices) compare: how many transactions
wrote to the record, whether a batch's answer is the one writing alone gave, and how many batches a live
server took."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, text

from deconflict.service import Service, credentials
from support.builders import M
from support.live import LiveServer, auth

__all__ = ["batches_begun", "in_place", "known_to_the_fast_path", "one_by_one", "same_answer", "transactions"]


def transactions(svc: Service) -> Callable[[], int]:
    """How many transactions wrote to the record since this call: on SQLite its commits (its gate is a file
    lock), on PostgreSQL the distinct transaction ids (``xmin``) of the entries since (the gate's advisory
    lock commits on a connection of its own)."""
    head = svc.entries_after(M, 0)[-1]["seq"]
    if svc.store.engine.dialect.name == "postgresql":
        statement = text("SELECT count(DISTINCT xmin::text) FROM ledger WHERE mechanism_id = :m AND seq > :head")

        def written() -> int:
            with svc.store.engine.connect() as c:
                return int(c.execute(statement, {"m": M, "head": head}).scalar_one())

        return written
    commits: list[object] = []
    event.listen(svc.store.engine, "commit", commits.append)
    return lambda: len(commits)


def same_answer(mine: Any, theirs: Any) -> bool:
    """Whether a batch's answer is the one writing alone gave: equal, or an error of the same type and words."""
    if isinstance(theirs, Exception):
        return type(mine) is type(theirs) and str(mine) == str(theirs)
    return bool(mine == theirs)


def in_place(groups: Iterable[list[tuple[int, Any]]], count: int) -> list[Any]:
    """A batch's answers, given in groups of (place, answer), each at its write's place: every one of the
    ``count`` writes answered, and once."""
    answers: dict[int, Any] = {}
    for group in groups:
        for i, answer in group:
            assert i not in answers, f"write {i} answered twice"
            answers[i] = answer
    assert sorted(answers) == list(range(count))
    return [answers[i] for i in range(count)]


def one_by_one(items: Iterable[Any], send: Callable[[Any], Any]) -> list[Any]:
    """Each item written alone, in turn: its answer, or the error it raised."""
    answers: list[Any] = []
    for item in items:
        try:
            answers.append(send(item))
        except Exception as e:  # noqa: BLE001 - compared with the batch's answer
            answers.append(e)
    return answers


def known_to_the_fast_path(live: LiveServer, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each token presented once and its answer kept, so that each plain write goes the fast way (api/fast.py)
    and is batched. The cache keeps an answer 1 s: on a loaded machine, opening a database after this took
    longer, the first write went FastAPI's way and waited at the gate unbatched (a test failed once so in
    ci-fresh)."""
    monkeypatch.setattr(credentials, "TOKEN_CACHE_S", 300.0)
    for token in tokens.values():
        assert httpx.get(f"{live.url}/api/v1/me", headers=auth(token), timeout=10).status_code == 200


def batches_begun(live: LiveServer, batch: str) -> float:
    """How many batches the server's ``batch`` function (``send_messages``, ``notify_many``) has taken, from its
    metrics."""
    found = httpx.get(f"{live.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(found):
        for sample in family.samples:
            if sample.name == "deconflict_write_batch_size_count" and sample.labels == {"batch": batch}:
                return float(sample.value)
    return 0.0
