"""Which engine runs, and the compiled engine's table on inputs split into several frames.

``deconflict tracks`` runs once per process: it loads numba only where the compiled engine
pays for its start-up (``one_shot_numba_from``), and prints the same table either way.
The compiled engine builds its table by placing rows by rank (``_compiled_table``); with
several frames the frames' tables are merged: both must equal the numpy engine's and the
brute force's to the last bit.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.builders import level_traffic

from deconflict.formats.tracks_csv import read_tracks_csv, write_track_conflicts
from deconflict.tactical import Tracks, brute_force_track_conflicts, find_track_conflicts, predict
from deconflict.units import FPM_MPS, FT_M, KT_MPS

COLUMNS = ("a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s")


def random_tracks(rng: np.random.Generator, n: int, box: tuple[float, float, float, float], tag: str) -> Tracks:
    lon, lat = rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)
    vs = np.where(rng.uniform(size=n) < 0.3, rng.uniform(-15.0, 15.0, n), 0.0)
    alt = rng.uniform(20000.0, 26000.0, n) * FT_M
    gs = rng.uniform(150.0, 500.0, n) * KT_MPS
    return Tracks.of([f"{tag}{k}" for k in rng.permutation(n)], lat, lon, alt, gs, rng.uniform(0, 360, n), vs)


def joined(parts: list[Tracks]) -> Tracks:
    cols = ("lat_deg", "lon_deg", "alt_m", "gs_mps", "trk_deg", "vs_mps")
    return Tracks.of([i for p in parts for i in p.ids], *(np.concatenate([getattr(p, c) for p in parts]) for c in cols))


def test_compiled_engine_over_several_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Syria and Paris (a frame each) and the antimeridian: compiled = numpy = brute force, bit for bit."""
    rng = np.random.default_rng(11)
    boxes = [
        (36.0, 33.0, 38.0, 35.0),
        (2.0, 47.0, 4.0, 49.0),
        (179.0, -17.0, 180.0, -16.0),
        (-180.0, -17.0, -179.0, -16.0),
    ]
    t = joined([random_tracks(rng, 250, b, f"{k}-") for k, b in enumerate(boxes)])
    tables = [find_track_conflicts(t, numba_from=0), find_track_conflicts(t, numba_from=10**9)]
    monkeypatch.setattr(predict, "NUMBA_FROM", 0)
    tables.append(brute_force_track_conflicts(t))
    assert len(tables[0]) > 200
    for other in tables[1:]:
        for col in COLUMNS:
            assert getattr(other, col).tolist() == getattr(tables[0], col).tolist(), col


def test_one_shot_choice_follows_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached machine code newer than the module: from ONE_SHOT_NUMBA_FROM; none: from COLD_NUMBA_FROM."""
    module = tmp_path / "pkg" / "predict.py"
    module.parent.mkdir()
    (module.parent / "_kernel.py").write_text("")
    monkeypatch.setattr(predict, "__file__", str(module))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delitem(sys.modules, "deconflict.tactical._kernel", raising=False)
    assert predict.one_shot_numba_from() == predict.COLD_NUMBA_FROM
    cache = tmp_path / "cache" / "pkg"
    cache.mkdir(parents=True)
    (cache / "_kernel.grid_slice-200.py311.nbi").write_text("")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    assert predict.one_shot_numba_from() == predict.ONE_SHOT_NUMBA_FROM
    monkeypatch.setitem(sys.modules, "deconflict.tactical._kernel", sys)  # already loaded: no start-up to pay
    assert predict.one_shot_numba_from() == predict.NUMBA_FROM


PROBE = """
import json, sys
from deconflict.cli import main
try:
    main()
finally:
    print(json.dumps({"numba": "numba" in sys.modules}), file=sys.stderr)
"""


def test_cli_on_a_small_input_does_not_load_numba(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t = random_tracks(rng, 1000, (36.0, 33.0, 37.0, 34.0), "T")
    path = tmp_path / "tracks.csv"
    cols = (t.lat_deg, t.lon_deg, t.alt_m / FT_M, t.gs_mps / KT_MPS, t.trk_deg, t.vs_mps / FPM_MPS)
    rows = zip(t.ids, *(c.tolist() for c in cols), strict=True)
    path.write_text(
        "id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\n"
        + "".join(f"{i},{a!r},{o!r},{z!r},{g!r},{k!r},{v!r}\n" for i, a, o, z, g, k, v in rows)
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "tracks", str(path)], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"numba": False}
    states = read_tracks_csv(path.read_text(), source=str(path))
    compiled = io.StringIO()
    write_track_conflicts(find_track_conflicts(states, numba_from=0), states, compiled)
    assert len(json.loads(done.stdout)["conflicts"]) > 100
    assert done.stdout == compiled.getvalue()


@pytest.mark.parametrize("bucket_rows", [1, 16, 4096])
def test_compiled_table_in_buckets_and_threads(monkeypatch: pytest.MonkeyPatch, bucket_rows: int) -> None:
    """The compiled table built in many buckets (down to a rank each) and in threads: numpy's table, bit for bit."""
    rng = np.random.default_rng(23)
    t = random_tracks(rng, 1500, (36.0, 33.0, 37.2, 34.0), "B")
    monkeypatch.setattr(predict, "BUCKET_ROWS", bucket_rows)
    monkeypatch.setattr(predict, "TABLE_THREADS_FROM", 0)
    compiled, numpy = find_track_conflicts(t, numba_from=0), find_track_conflicts(t, numba_from=10**9)
    assert len(compiled) > 3000
    for col in COLUMNS:
        assert getattr(compiled, col).tolist() == getattr(numpy, col).tolist(), col


def test_a_process_forked_after_a_detection_detects_with_threads_of_its_own() -> None:
    """Detection keeps its threads between calls; a child forked from a process that has them (a fork copies no
    thread) must start its own rather than wait on threads that are not there."""
    t = level_traffic(predict.THREADS_FROM + 500, 3, "F")
    here = find_track_conflicts(t, numba_from=10**9)  # the threads are started here (numpy engine: no compile)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its answer's size through the pipe, then out without running pytest's teardown
        try:
            os.write(write, str(len(find_track_conflicts(t, numba_from=10**9))).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 120)
        assert ready, "the forked child's detection did not finish in 120 s"
        assert os.read(read, 64).decode() == str(len(here)) != "0"
    finally:
        os.close(read)
        if not os.waitpid(pid, os.WNOHANG)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
