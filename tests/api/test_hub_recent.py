"""The streams' shared reading of the newest entries (api.hub.Recent): the same entries as reading the store
each time, one read of the store for every stream a commit wakes, and a store that no longer continues the
entries kept is read anew."""

from __future__ import annotations

from typing import Any

from deconflict.api.hub import Recent


def chain(n: int, salt: str = "") -> list[dict[str, Any]]:
    """``n`` entries linked by their hashes (``salt`` makes another record)."""
    out, prev = [], "0" * 64
    for seq in range(1, n + 1):
        h = f"{salt}h{seq}"
        out.append({"seq": seq, "prev_hash": prev, "hash": h, "type": "t", "payload": {"n": seq}})
        prev = h
    return out


class Store:
    """A record that grows, read as ``service.entries_after`` reads it (counting the reads)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.reads = 0

    def read(self, mechanism_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        self.reads += 1
        return [e for e in self.entries if e["seq"] > after][:limit]


def test_every_stream_gets_what_the_store_holds_and_one_read_serves_them_all() -> None:
    full = chain(60)
    store = Store(full[:10])
    recent = Recent(keep=25)
    streams = {"a": 0, "b": 0, "c": 5}
    got: dict[str, list[int]] = {k: [] for k in streams}
    for head in range(10, 61, 5):
        store.entries = full[:head]
        recent.heard("m", head)  # the commit is heard, then every stream wakes and reads
        reads_before = store.reads
        for name in streams:
            while True:
                page = recent.after(store.read, "m", streams[name], 4)
                if not page:
                    break
                assert page == store.read("m", streams[name], 4)  # the store's own answer
                store.reads -= 1
                got[name] += [e["seq"] for e in page]
                streams[name] = page[-1]["seq"]
        assert store.reads - reads_before <= 3  # one per page the commit added, not one per stream
    for name, first in (("a", 1), ("b", 1), ("c", 6)):
        assert got[name] == list(range(first, 61))


def test_a_record_that_does_not_continue_the_entries_kept_is_read_anew() -> None:
    store = Store(chain(8))
    recent = Recent()
    recent.heard("m", 8)
    assert [e["seq"] for e in recent.after(store.read, "m", 0, 100)] == list(range(1, 9))
    store.entries = chain(9, salt="x")  # rewritten (a restore): its entry 9 does not follow the kept 8
    recent.heard("m", 9)
    page = recent.after(store.read, "m", 8, 100)
    assert page == store.read("m", 8, 100)
    assert recent.after(store.read, "m", 0, 100) == chain(9, salt="x")


def test_fresh_reads_the_store_even_when_nothing_was_heard() -> None:
    store = Store(chain(3))
    recent = Recent()
    assert len(recent.after(store.read, "m", 0, 10)) == 3
    store.entries = chain(5)  # written by a process whose commit this one did not hear of
    assert recent.after(store.read, "m", 3, 10) == []  # not heard: the entries kept are the answer
    assert [e["seq"] for e in recent.after(store.read, "m", 3, 10, fresh=True)] == [4, 5]


def test_kept_answers_only_without_a_read_of_the_store() -> None:
    store = Store(chain(4))
    recent = Recent()
    assert recent.kept("m", 0, 10) is None  # nothing kept yet
    recent.heard("m", 4)
    recent.after(store.read, "m", 0, 10)
    assert [e["seq"] for e in recent.kept("m", 2, 10) or []] == [3, 4]
    assert recent.kept("m", 4, 10) == []
    store.entries = chain(5)
    recent.heard("m", 5)
    assert recent.kept("m", 4, 10) is None  # entry 5 was heard of but is not kept: the store must be read
    assert [e["seq"] for e in recent.after(store.read, "m", 4, 10)] == [5]
    assert [e["seq"] for e in recent.kept("m", 4, 10) or []] == [5]


def test_commits_while_a_wake_up_is_scheduled_share_it_and_none_is_missed() -> None:
    import asyncio
    import threading

    from deconflict.api.hub import Hub

    async def run() -> None:
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        sub = hub.subscribe("m", "TR", "token")
        calls = 0
        original = hub._wake

        def counting(mechanism_id: str) -> None:
            nonlocal calls
            calls += 1
            original(mechanism_id)

        hub._wake = counting  # type: ignore[method-assign]
        publisher = threading.Thread(target=lambda: [hub.publish("m", seq) for seq in range(1, 101)])
        publisher.start()
        publisher.join()  # 100 commits heard while the loop was busy here: one wake-up scheduled
        await asyncio.wait_for(sub.wake.wait(), timeout=5)
        assert calls == 1 and hub.recent.kept("m", 0, 10) is None  # heard of up to 100, none kept yet
        sub.wake.clear()
        threading.Thread(target=hub.publish, args=("m", 101)).start()  # after it ran: a wake-up of its own
        await asyncio.wait_for(sub.wake.wait(), timeout=5)
        assert calls == 2

    asyncio.run(run())


def test_entries_a_commit_hands_over_are_kept_when_they_continue_the_entries_kept() -> None:
    full = chain(12)
    store = Store(full[:4])
    recent = Recent(keep=5)
    recent.committed("m", full[4:5])  # nothing kept yet: left to the first read of the store
    assert recent.kept("m", 0, 10) is None
    recent.heard("m", 4)
    assert recent.after(store.read, "m", 0, 10) == full[:4]
    store.entries = full[:6]
    recent.committed("m", full[4:6])  # continue the kept: no read of the store serves them
    recent.heard("m", 6)
    reads = store.reads
    assert recent.kept("m", 3, 10) == full[3:6]
    assert recent.after(store.read, "m", 3, 10) == full[3:6] and store.reads == reads
    recent.committed("m", full[7:8])  # a gap (entry 7 came from another process): left out
    store.entries = full[:8]
    recent.heard("m", 8)
    assert recent.kept("m", 6, 10) is None
    assert recent.after(store.read, "m", 6, 10) == full[6:8] and store.reads == reads + 1
    recent.committed("m", chain(9, salt="x")[8:9])  # a ninth that does not follow the kept eighth: left out
    assert recent.kept("m", 7, 10) == full[7:8]
    for seq in range(9, 13):  # kept on and trimmed now and then, always reaching the newest
        recent.committed("m", full[seq - 1 : seq])
        recent.heard("m", seq)
        assert recent.kept("m", seq - 1, 10) == full[seq - 1 : seq]


def test_entries_handed_over_while_the_store_is_read_are_left_to_that_read() -> None:
    store = Store(chain(3))
    recent = Recent()
    recent.heard("m", 3)
    recent.after(store.read, "m", 0, 10)
    store.entries = chain(4)

    def reading(mechanism_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        recent.committed("m", chain(5)[4:5])  # a commit heard while the lock is held: not waited for, left
        return store.read(mechanism_id, after, limit)

    recent.heard("m", 4)
    assert [e["seq"] for e in recent.after(reading, "m", 3, 10, fresh=True)] == [4]
    assert recent.kept("m", 4, 10) == []


def test_a_record_cut_back_is_no_longer_answered_from_the_entries_kept() -> None:
    """The record is cut back under a running process (its database failed over to a copy without the last
    entries): a fresh read that finds nothing after what is kept asks whether the store still holds it, and
    reads anew when it does not, instead of answering from the lost entries; the same when it is written
    over to a shorter length since."""
    store = Store(chain(8))
    recent = Recent()
    recent.heard("m", 8)
    assert [e["seq"] for e in recent.after(store.read, "m", 0, 100)] == list(range(1, 9))
    store.entries = chain(5)  # cut back to 5
    assert recent.after(store.read, "m", 3, 100, fresh=True) == chain(5)[3:5]
    assert recent.kept("m", 3, 100) == chain(5)[3:5]  # what is kept now is the store's
    assert recent.after(store.read, "m", 8, 100, fresh=True) == []
    store.entries = chain(5) + chain(7, salt="y")[5:]  # written on from 5: 6 and 7, another 6 and 7
    store.entries[5]["prev_hash"] = store.entries[4]["hash"]
    recent.heard("m", 7)
    assert [e["hash"] for e in recent.after(store.read, "m", 5, 100)] == ["yh6", "yh7"]
    reads = store.reads
    assert recent.after(store.read, "m", 7, 100, fresh=True) == [] and store.reads == reads + 2  # the check
