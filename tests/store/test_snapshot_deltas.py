"""A whole replay snapshot stored as what changed since the one before (migration 0016): the deltas put on
the full state give, row for row and in the same order, the state each snapshot stands for, whatever rows
came, changed or went in between (the projection never deletes a row today; a delta still says so)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.store import replay, snapshots

Rows = dict[str, list[dict[str, Any]]]


def _state(members: dict[str, str], versions: dict[tuple[str, int], str]) -> Rows:
    return {
        "members": [{"id": k, "name": v} for k, v in sorted(members.items())],
        "activity_versions": [
            {"activity_id": a, "version": n, "kind": kind} for (a, n), kind in sorted(versions.items())
        ],
    }


ids = st.sampled_from(["AZ", "IL", "IL-2", "TR", "TR-ops", "az"])
steps = st.lists(
    st.tuples(
        st.dictionaries(ids, st.sampled_from(["a", "b", "c"]), max_size=6),
        st.dictionaries(st.tuples(ids, st.integers(1, 3)), st.sampled_from(["sortie", "patrol"]), max_size=8),
    ),
    min_size=2,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_deltas_put_on_the_full_state_give_each_state(states: list[tuple[dict[str, str], dict[Any, str]]]) -> None:
    rows = [_state(*s) for s in states]
    pairs = list(zip(rows, rows[1:], strict=False))
    made = [snapshots.delta(replay.Start(i, f"h{i}", before), after) for i, (before, after) in enumerate(pairs)]
    for upto in range(1, len(rows)):
        assert snapshots.apply_deltas(rows[0], made[:upto]) == rows[upto]
    for d, (before, after) in zip(made, pairs, strict=True):
        gone = {tuple(k) for k in d["gone"].get("members", [])}
        assert gone == {(r["id"],) for r in before["members"]} - {(r["id"],) for r in after["members"]}


def test_a_row_gone_and_back_comes_back_in_key_order_as_the_snapshot_that_took_it_back_holds_it() -> None:
    """The projection's merge puts a table in key order whenever a row comes into it (and keeps the order it
    read otherwise): the deltas give the same order, even from a base read in another order."""
    base: Rows = {"members": [{"id": "TR", "name": "a"}, {"id": "IL", "name": "b"}]}  # not in key order
    went: Rows = {"members": [{"id": "TR", "name": "a"}]}
    back: Rows = {"members": [{"id": "IL", "name": "b"}, {"id": "TR", "name": "a"}]}
    d1 = snapshots.delta(replay.Start(1, "h1", base), went)
    d2 = snapshots.delta(replay.Start(2, "h2", went), back)
    assert d1["gone"] == {"members": [["IL"]]} and d1["rows"] == {}
    assert snapshots.apply_deltas(base, [d1]) == went
    assert snapshots.apply_deltas(base, [d1, d2]) == back
    renamed: Rows = {"members": [{"id": "TR", "name": "z"}, {"id": "IL", "name": "b"}]}
    d3 = snapshots.delta(replay.Start(1, "h1", base), renamed)
    assert d3 == {"base": 1, "base_hash": "h1", "rows": {"members": [{"id": "TR", "name": "z"}]}, "gone": {}}
    assert snapshots.apply_deltas(base, [d3])["members"] == renamed["members"]  # changed in place: order kept
