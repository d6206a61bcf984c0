"""The two engines of tactical detection: numba loaded only when it runs, and the same answers to the last bit.

``import deconflict``, the command line's modules and ``deconflict tracks --help`` must
not pay for numba. The compiled engine (``_kernel``, from ``NUMBA_FROM`` tracks) and the
numpy one (below) must give the same table, bit for bit, as each other and as the brute
force, on inputs dense enough that cells hold hundreds of tracks and on the property
test's random inputs.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import level_traffic

from deconflict.tactical import TrackConflictTable, Tracks, brute_force_track_conflicts, find_track_conflicts, predict
from deconflict.units import FT_M, KT_MPS

COLUMNS = ("a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s")


def engines(t: Tracks, monkeypatch: pytest.MonkeyPatch, **kw: object) -> TrackConflictTable:
    """The table from both engines' fast paths and brute forces, checked to be one and the same."""
    tables = []
    for numba_from in (0, 10**9):  # compiled, then numpy
        monkeypatch.setattr(predict, "NUMBA_FROM", numba_from)
        tables.append(find_track_conflicts(t, **kw))  # type: ignore[arg-type]
        kw_brute = {k: v for k, v in kw.items() if k != "slices"}
        tables.append(brute_force_track_conflicts(t, **kw_brute))  # type: ignore[arg-type]
    for other in tables[1:]:
        for col in COLUMNS:
            assert getattr(other, col).tolist() == getattr(tables[0], col).tolist(), col
    return tables[0]


PROBE = (
    "import sys, deconflict, deconflict.cli, deconflict.service.tracks, deconflict.tactical;"
    "from deconflict.cli import app;"
    "from typer.testing import CliRunner;"
    "r = CliRunner().invoke(app, ['tracks', '--help']);"
    "assert r.exit_code == 0, r.output;"
    "print('numba' in sys.modules)"
)


def test_numba_is_not_imported_by_the_package_nor_by_help() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_dense_cells_are_the_same_in_both_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 tracks in 150 × 150 km (cells of hundreds), climbing and level."""
    rng = np.random.default_rng(5)
    n = 2000
    lat, lon = rng.uniform(34.0, 35.35, n), rng.uniform(37.0, 38.6, n)
    climbing = rng.uniform(size=n) < 0.3
    t = Tracks.of(
        [f"D{k}" for k in rng.permutation(n)],
        lat,
        lon,
        rng.uniform(20000.0, 24000.0, n) * FT_M,
        rng.uniform(0.0, 500.0, n) * KT_MPS,
        rng.uniform(0.0, 360.0, n),
        np.where(climbing, rng.uniform(-15.0, 15.0, n), 0.0),
    )
    for slices in (1, 4):
        assert len(engines(t, monkeypatch, slices=slices)) > 5000


def test_pairs_in_doubt_get_the_same_answer_refined_in_each_slice_or_all_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled engine refines a slice's pairs in doubt in its thread when it has many, the few of all
    slices in one call at the end: both ways give the table the numpy engine and the brute force give."""
    t = level_traffic(3000, 8, "Q")  # pairs in doubt in each of the 4 slices (29, 91, 29 and 20)
    calls: list[int] = []
    refine = predict.refine

    def counted(tracks: Tracks, a: np.ndarray, *rest: object) -> tuple[np.ndarray, ...]:
        calls.append(len(a))
        return refine(tracks, a, *rest)  # type: ignore[arg-type]

    reference = engines(t, monkeypatch, slices=4)  # the numpy engine's and the brute forces', all alike
    monkeypatch.setattr(predict, "refine", counted)
    for each_slice in (1, 10**9):  # each slice refines its own; all wait for one call
        monkeypatch.setattr(predict, "REFINE_IN_SLICE_FROM", each_slice)
        calls.clear()
        table = find_track_conflicts(t, slices=4, numba_from=0)
        if each_slice == 1:
            assert len(calls) > 1 and all(calls), calls  # a call in each slice that has pairs in doubt
        else:
            assert len(calls) == 1 and calls[0] > 0, calls  # one call for all of them
        for col in COLUMNS:
            assert getattr(table, col).tolist() == getattr(reference, col).tolist(), col


state = st.tuples(
    st.floats(34.0, 34.8),
    st.floats(37.0, 37.9),
    st.one_of(st.sampled_from([30000.0, 31000.0, 30999.0]), st.floats(25000.0, 35000.0)),
    st.one_of(st.just(0.0), st.floats(0.0, 300.0)),
    st.one_of(st.sampled_from([0.0, 90.0, 180.0, 270.0]), st.floats(-360.0, 720.0)),
    st.one_of(st.just(0.0), st.floats(-30.0, 30.0)),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    states=st.lists(state, max_size=30),
    copies=st.lists(st.integers(0, 29), max_size=4),
    rpz_m=st.sampled_from([9260.0, 2000.0, 30000.0]),
    hpz_m=st.sampled_from([304.8, 100.0]),
    lookahead_s=st.sampled_from([300.0, 60.0, 900.0]),
    slices=st.integers(1, 7),
)
def test_random_inputs_are_the_same_in_both_engines(
    monkeypatch: pytest.MonkeyPatch,
    states: list[tuple[float, ...]],
    copies: list[int],
    rpz_m: float,
    hpz_m: float,
    lookahead_s: float,
    slices: int,
) -> None:
    rows = [(f"T{k:02d}", lat, lon, ft * FT_M, gs, trk, vs) for k, (lat, lon, ft, gs, trk, vs) in enumerate(states)]
    rows += [(f"C{k}", *rows[c][1:]) for k, c in enumerate(copies) if c < len(rows)]
    if not rows:
        return
    ids, lat, lon, alt, gs, trk, vs = zip(*rows, strict=True)
    t = Tracks.of(ids, lat, lon, alt, gs, trk, vs)
    engines(t, monkeypatch, rpz_m=rpz_m, hpz_m=hpz_m, lookahead_s=lookahead_s, slices=slices)
