"""VolumeIndex: batches through the delta and the rebuilt tree, removals, all checked against brute force."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from support.builders import CENTRAL_SYRIA, random_footprint

from deconflict.geo import Frame
from deconflict.volumes import VolumeIndex

BOX = CENTRAL_SYRIA
PARTIES = ("TR", "IL", "RU")
HOUR = 3600.0


@dataclass
class Record:
    """One volume as the index takes it: frame geometry, radius (m), window (epoch s), band (m)."""

    key: Any
    party: str
    geom: Any
    radius_m: float
    t0: float
    t1: float
    z0: float
    z1: float


def random_records(frame: Frame, rng: np.random.Generator, keys: list[Any]) -> list[Record]:
    footprints = [random_footprint(rng, BOX, max_radius_m=15_000.0, max_corners=7, max_reach_m=12_000.0) for _ in keys]
    geoms, radii = frame.project_footprints(footprints)
    out = []
    for key, geom, radius in zip(keys, geoms, radii, strict=True):
        t0 = 1_744_185_600.0 + 1800.0 * int(rng.integers(0, 12))
        z0 = 250.0 * int(rng.integers(0, 12))
        out.append(
            Record(
                key=key,
                party=PARTIES[int(rng.integers(3))],
                geom=geom,
                radius_m=float(radius),
                t0=t0,
                t1=t0 + 1800.0 * int(rng.integers(1, 8)),
                z0=z0,
                z1=z0 + 250.0 * int(rng.integers(1, 8)),
            )
        )
    return out


def add(index: VolumeIndex, records: list[Record]) -> None:
    geoms = np.empty(len(records), dtype=object)
    geoms[:] = [r.geom for r in records]
    index.add(
        [r.key for r in records],
        [r.party for r in records],
        geoms,
        np.array([r.radius_m for r in records]),
        np.array([r.t0 for r in records]),
        np.array([r.t1 for r in records]),
        np.array([r.z0 for r in records]),
        np.array([r.z1 for r in records]),
    )


def query(index: VolumeIndex, q: Record, m: float, v: float, exclude: str | None) -> dict[Any, float]:
    found = index.query(
        q.geom, q.radius_m, q.t0, q.t1, q.z0, q.z1, separation_m=m, vertical_separation_m=v, exclude_party=exclude
    )
    keys = [c.key for c in found]
    assert len(keys) == len(set(keys)), "a volume was returned twice"
    for c in found:
        assert index.slot(c.key) == c.slot
        assert index.keys[c.slot] == c.key
    return {c.key: c.distance_m for c in found}


def brute(
    frame: Frame, live: dict[Any, Record], q: Record, m: float, v: float, exclude: str | None
) -> dict[Any, float]:
    """Every live record tested against the query, no index."""
    cand = [
        r
        for r in live.values()
        if (exclude is None or r.party != exclude)
        and r.t0 < q.t1
        and q.t0 < r.t1
        and r.z0 < q.z1 + v
        and q.z0 < r.z1 + v
    ]
    if not cand:
        return {}
    geoms = np.empty(len(cand), dtype=object)
    geoms[:] = [r.geom for r in cand]
    dist = frame.ground_distance(q.geom, q.radius_m, geoms, np.array([r.radius_m for r in cand]))
    return {r.key: float(d) for r, d in zip(cand, dist, strict=True) if d <= m}


def assert_same_as_brute(
    index: VolumeIndex, frame: Frame, live: dict[Any, Record], queries: list[Record], removed: set
) -> int:
    """Compare every query under a few rule sets; returns how many hits there were (so the test can't be vacuous)."""
    hits = 0
    for q in queries:
        for m, v, exclude in ((0.0, 0.0, None), (5_000.0, 300.0, q.party), (25_000.0, 1_000.0, None)):
            got = query(index, q, m, v, exclude)
            want = brute(frame, live, q, m, v, exclude)
            assert got.keys() == want.keys(), (q.key, m, v, exclude)
            for key, d in want.items():
                assert got[key] == pytest.approx(d, abs=1e-6)
            assert not (got.keys() & removed)
            hits += len(got)
    return hits


@pytest.mark.parametrize(
    ("batches", "delta_share", "capacity", "delta_before_rebuild"),
    [
        pytest.param([3, 40, 300, 7, 120, 600, 30], 0.02, 16, True, id="small-delta-share"),
        pytest.param([1] * 20 + [280, 5], 0.5, 4, True, id="one-by-one-then-a-big-batch"),
        pytest.param([800], 0.05, 1024, False, id="one-big-batch"),
    ],
)
def test_batches_and_removals_match_brute_force(
    batches: list[int], delta_share: float, capacity: int, delta_before_rebuild: bool
) -> None:
    rng = np.random.default_rng(sum(batches))
    frame = Frame.for_bounds(BOX)
    index = VolumeIndex(frame, capacity=capacity, delta_share=delta_share)
    live: dict[Any, Record] = {}
    removed: set = set()
    queries = random_records(frame, rng, [f"q{i}" for i in range(12)])
    saw_delta = saw_tree = False
    hits = 0
    next_key = 0
    for size in batches:
        records = random_records(frame, rng, [("act", next_key + i) for i in range(size)])
        next_key += size
        add(index, records)
        live.update({r.key: r for r in records})
        saw_delta |= index._n_tree < len(index.keys)
        saw_tree |= index._tree is not None
        assert len(index) == len(live)
        hits += assert_same_as_brute(index, frame, live, queries, removed)
        # remove about a fifth of what is live, some of it from the delta, some from the tree
        keys = list(live)
        for pick in rng.permutation(len(keys))[: len(keys) // 5].tolist():
            key = keys[pick]
            assert index.remove(key) is True
            assert index.remove(key) is False
            del live[key]
            removed.add(key)
        assert len(index) == len(live)
        hits += assert_same_as_brute(index, frame, live, queries, removed)
    assert saw_tree and saw_delta is delta_before_rebuild
    assert hits > 0
    # compaction: slots move, answers do not
    index.rebuild()
    assert len(index) == len(live) == len(index.keys)
    hits += assert_same_as_brute(index, frame, live, queries, removed)
    # and the delta works on top of a compacted tree
    more = random_records(frame, rng, [("late", i) for i in range(50)])
    add(index, more)
    live.update({r.key: r for r in more})
    assert index._n_tree < len(index.keys)
    assert_same_as_brute(index, frame, live, queries, removed)


def test_removed_key_is_never_returned() -> None:
    frame = Frame.for_bounds(BOX)
    rng = np.random.default_rng(7)
    index = VolumeIndex(frame)
    (target,) = random_records(frame, rng, ["target"])
    twin = Record(**{**target.__dict__, "key": "twin"})
    add(index, [target, twin])
    q = Record(**{**target.__dict__, "key": "q", "party": "other"})
    assert set(query(index, q, 0.0, 0.0, None)) == {"target", "twin"}
    assert index.remove("target") is True
    assert set(query(index, q, 0.0, 0.0, None)) == {"twin"}
    assert index.slot("target") is None
    index.rebuild()
    assert set(query(index, q, 0.0, 0.0, None)) == {"twin"}
    assert index.remove("target") is False
    assert index.remove("never-added") is False


def test_a_removed_key_can_be_added_again() -> None:
    frame = Frame.for_bounds(BOX)
    rng = np.random.default_rng(8)
    index = VolumeIndex(frame)
    first, second = random_records(frame, rng, ["k", "k"])
    add(index, [first])
    index.remove("k")
    add(index, [second])
    assert len(index) == 1
    q = Record(**{**second.__dict__, "key": "q"})
    assert set(query(index, q, 0.0, 0.0, None)) == {"k"}
    assert query(index, q, 0.0, 0.0, None)["k"] == 0.0


@pytest.mark.parametrize("rebuilt", [False, True], ids=["in-delta", "in-tree"])
def test_adding_a_duplicate_key_raises_and_changes_nothing(rebuilt: bool) -> None:
    frame = Frame.for_bounds(BOX)
    rng = np.random.default_rng(9)
    index = VolumeIndex(frame)
    add(index, random_records(frame, rng, ["a", "b"]))
    if rebuilt:
        index.rebuild()
    with pytest.raises(ValueError, match="'b'"):
        add(index, random_records(frame, rng, ["c", "b"]))
    assert len(index) == 2
    assert index.slot("c") is None


def test_duplicate_key_within_one_batch_raises() -> None:
    frame = Frame.for_bounds(BOX)
    rng = np.random.default_rng(10)
    index = VolumeIndex(frame)
    with pytest.raises(ValueError):
        add(index, random_records(frame, rng, ["a", "a"]))


def test_exclude_party_and_unknown_party() -> None:
    frame = Frame.for_bounds(BOX)
    rng = np.random.default_rng(11)
    (base,) = random_records(frame, rng, ["x"])
    index = VolumeIndex(frame)
    add(index, [Record(**{**base.__dict__, "key": k, "party": p}) for k, p in (("t", "TR"), ("i", "IL"))])
    q = Record(**{**base.__dict__, "key": "q"})
    assert set(query(index, q, 0.0, 0.0, "TR")) == {"i"}
    assert set(query(index, q, 0.0, 0.0, "IL")) == {"t"}
    assert set(query(index, q, 0.0, 0.0, "US")) == {"t", "i"}
    assert set(query(index, q, 0.0, 0.0, None)) == {"t", "i"}


def test_empty_index_answers_nothing() -> None:
    frame = Frame.for_bounds(BOX)
    index = VolumeIndex(frame)
    (q,) = random_records(frame, np.random.default_rng(12), ["q"])
    assert len(index) == 0
    assert query(index, q, 1e6, 1e6, None) == {}
    add(index, [])
    index.rebuild()
    assert query(index, q, 1e6, 1e6, None) == {}


DAY = 86_400.0


@pytest.mark.parametrize(
    "durations_s",
    [
        pytest.param([1.0, 600.0, 3 * HOUR], id="seconds-to-hours"),
        pytest.param([900.0, 901.0, 3600.0, 3601.0, 4 * HOUR, 4 * HOUR + 1], id="level-edges"),
        pytest.param([30 * DAY, 400 * DAY, 2 * HOUR], id="deployments-of-a-month-and-a-year"),
        pytest.param([1e12, math.inf], id="unbounded"),
    ],
)
def test_time_buckets_find_every_window_length(durations_s: list[float]) -> None:
    """Windows of any length, in the tree and in the delta, against queries short and very long."""
    rng = np.random.default_rng(len(durations_s))
    frame = Frame.for_bounds(BOX)
    index = VolumeIndex(frame, capacity=8, delta_share=0.2)
    base = 1_744_185_600.0
    live: dict[Any, Record] = {}
    for batch, size in enumerate((500, 500, 100)):
        records = random_records(frame, rng, [("t", batch, i) for i in range(size)])
        for r in records:
            r.t0 = base + float(rng.uniform(-60 * DAY, 60 * DAY))
            r.t1 = r.t0 + durations_s[int(rng.integers(len(durations_s)))]
        add(index, records)
        live.update({r.key: r for r in records})
    assert index._n_tree < len(index.keys), "the last batch should still be in the delta"
    queries = random_records(frame, rng, [f"q{i}" for i in range(8)])
    for i, q in enumerate(queries):
        q.t0 = base + float(rng.uniform(-70 * DAY, 70 * DAY))
        q.t1 = q.t0 + (1.0, 2 * HOUR, 10 * DAY, 1e12)[i % 4]
    hits = assert_same_as_brute(index, frame, live, queries, set())
    index.rebuild()
    hits += assert_same_as_brute(index, frame, live, queries, set())
    assert hits > 0


def test_slots_move_at_rebuild_but_keys_and_fields_follow() -> None:
    frame = Frame.for_bounds(BOX)
    rng = np.random.default_rng(13)
    index = VolumeIndex(frame)
    records = random_records(frame, rng, [("r", i) for i in range(300)])
    add(index, records)
    index.rebuild()
    for r in records:
        slot = index.slot(r.key)
        assert slot is not None and index.keys[slot] == r.key
        assert (index.t0[slot], index.t1[slot], index.z0[slot], index.z1[slot]) == (r.t0, r.t1, r.z0, r.z1)
        assert index.radii[slot] == r.radius_m and index.geoms[slot].equals(r.geom)


def test_exact_step_on_no_candidates_is_empty() -> None:
    """Frame.ground_distance against an empty array answers an empty array (the index's exact step)."""
    frame = Frame.for_bounds(BOX)
    (q,) = random_records(frame, np.random.default_rng(14), ["q"])
    got = frame.ground_distance(q.geom, q.radius_m, np.empty(0, dtype=object), np.empty(0))
    assert got.shape == (0,)
