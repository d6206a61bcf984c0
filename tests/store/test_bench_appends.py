"""bench/ledger.py's figures for the target of 5,000 durable signed appends a second (issue 17) measure what
they say: every entry appended in order into a chain that verifies, each writer answered only after a sync of
the log that covers its entry, and, batched, several entries a transaction and a sync."""

from __future__ import annotations

import pytest
from support.bench_record import bench

from deconflict.store import durable as durable_module

N = 240


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each sync the store's group commit makes, counted (the real ``fdatasync`` still runs)."""
    made: list[int] = []
    real = durable_module.GroupSync.__init__

    def counting(self: durable_module.GroupSync, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        sync = self._sync

        def counted(fd: int) -> None:
            sync(fd)
            made.append(fd)

        self._sync = counted

    monkeypatch.setattr(durable_module.GroupSync, "__init__", counting)
    return made


def test_batched_writers_share_transactions_and_syncs(syncs: list[int]) -> None:
    rate, cpu_us, made, per_batch = bench().bench_batched(N, writers=6)  # asserts the count and the head itself
    assert rate > 0 and cpu_us > 0
    assert 1 <= made <= len(syncs)  # (the store's first transaction and its closing add their own)
    assert per_batch > 1.5, "the writers' entries were not batched"
    assert made <= N / per_batch + 1, "more syncs than batches: each batch should need one"


def test_one_entry_a_transaction_writers_each_wait_for_a_sync(syncs: list[int]) -> None:
    rate, cpu_us, made = bench().bench_writers(N, group=True, writers=4)
    assert rate > 0 and cpu_us > 0
    assert 1 <= made <= len(syncs)
    assert made <= N
