"""Tactical detection: the fast path against the brute-force reference, closed-form cases, the geodesy
against pyproj.Geod, the tracks CSV and ``deconflict tracks`` through its runner and a real process,
and real ADS-B states."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.builders import T4, offset
from support.paths import DATA
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.errors import InvalidInput
from deconflict.formats.tracks_csv import COLUMNS, read_tracks_csv
from deconflict.geo import WGS84, parse_footprint
from deconflict.model import Volume
from deconflict.tactical import (
    TrackConflictTable,
    Tracks,
    _frames,
    _plane,
    brute_force_track_conflicts,
    find_track_conflicts,
    tracks_in_volumes,
)
from deconflict.units import FT_M, KT_MPS

runner = CliRunner()
HEADER = ",".join(COLUMNS) + "\n"
R, H, T = 9260.0, 304.8, 300.0


def tracks(*rows: tuple[Any, ...]) -> Tracks:
    """Tracks from (id, lat, lon, alt_m, gs_mps, trk_deg, vs_mps) rows."""
    if not rows:
        return Tracks.of([], [], [], [], [], [], [])
    ids, lat, lon, alt, gs, trk, vs = zip(*rows, strict=True)
    return Tracks.of(ids, lat, lon, alt, gs, trk, vs)


def assert_same(fast: TrackConflictTable, brute: TrackConflictTable) -> None:
    assert fast.a.tolist() == brute.a.tolist()
    assert fast.b.tolist() == brute.b.tolist()
    for col in ("tcpa_s", "dcpa_m", "t_in_s", "t_out_s"):
        np.testing.assert_allclose(getattr(fast, col), getattr(brute, col), rtol=1e-12, atol=1e-9, err_msg=col)


def both(t: Tracks, **kw: Any) -> TrackConflictTable:
    """The fast path's answer, checked against the brute force."""
    fast = find_track_conflicts(t, **kw)
    kw.pop("slices", None)
    assert_same(fast, brute_force_track_conflicts(t, **kw))
    return fast


# --- fast path == brute force ------------------------------------------------------------------

LEVELS_FT = [30000.0, 31000.0, 30500.0, 29000.0, 30999.0]
state = st.tuples(
    st.floats(34.0, 34.8),  # lat
    st.floats(37.0, 37.9),  # lon
    st.one_of(st.sampled_from(LEVELS_FT), st.floats(25000.0, 35000.0)),  # ft
    st.one_of(st.just(0.0), st.floats(0.0, 300.0)),  # m/s
    st.one_of(st.sampled_from([0.0, 90.0, 180.0, 270.0]), st.floats(-360.0, 720.0)),
    st.one_of(st.just(0.0), st.floats(-30.0, 30.0)),  # m/s
)


# shrinking thirty-odd tracks can take minutes: failures are reported as found
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    states=st.lists(state, max_size=30),
    copies=st.lists(st.integers(0, 29), max_size=4),
    rpz_m=st.sampled_from([R, 2000.0, 30000.0]),
    hpz_m=st.sampled_from([H, 100.0, 1000.0]),
    lookahead_s=st.sampled_from([T, 60.0, 900.0]),
    slices=st.integers(1, 7),
)
def test_fast_equals_brute_force(
    states: list[tuple[float, ...]], copies: list[int], rpz_m: float, hpz_m: float, lookahead_s: float, slices: int
) -> None:
    rows = [(f"T{k:02d}", lat, lon, ft * FT_M, gs, trk, vs) for k, (lat, lon, ft, gs, trk, vs) in enumerate(states)]
    rows += [(f"C{k}", *rows[c][1:]) for k, c in enumerate(copies) if c < len(rows)]  # identical states
    both(tracks(*rows), rpz_m=rpz_m, hpz_m=hpz_m, lookahead_s=lookahead_s, slices=slices)


def random_tracks(rng: np.random.Generator, n: int, box: tuple[float, float, float, float]) -> Tracks:
    lon = rng.uniform(box[0], box[2], n)
    lat = rng.uniform(box[1], box[3], n)
    climbing = rng.uniform(size=n) < 0.3
    vs = np.where(climbing, rng.uniform(-15.0, 15.0, n), 0.0)
    alt = rng.uniform(5000.0, 40000.0, n) * FT_M
    gs = rng.uniform(150.0, 500.0, n) * KT_MPS
    return Tracks.of([f"R{k}" for k in rng.permutation(n)], lat, lon, alt, gs, rng.uniform(0, 360, n), vs)


def test_dense_random_over_syria() -> None:
    t = random_tracks(np.random.default_rng(7), 1500, (35.7, 32.3, 42.4, 37.3))
    assert len(both(t)) > 100


@pytest.mark.parametrize(
    "boxes",
    [
        [(35.7, 32.3, 42.4, 37.3), (2.0, 47.0, 4.0, 49.0)],  # Syria and Paris: one frame each
        [(178.5, -17.5, 180.0, -16.0), (-180.0, -17.5, -178.5, -16.0), (100.0, -20.0, 102.0, -18.0)],  # antimeridian
        [(-180.0, 86.0, 180.0, 90.0), (0.0, -5.0, 3.0, 5.0)],  # the north pole
    ],
    ids=["two-regions", "antimeridian", "pole"],
)
def test_wide_inputs_are_split_into_frames(boxes: list[tuple[float, float, float, float]]) -> None:
    rng = np.random.default_rng(3)
    parts = [random_tracks(rng, 300, b) for b in boxes]
    t = Tracks.of(
        [f"{k}-{i}" for k, p in enumerate(parts) for i in p.ids],
        *(np.concatenate([getattr(p, c) for p in parts]) for c in ("lat_deg", "lon_deg", "alt_m", "gs_mps")),
        np.concatenate([p.trk_deg for p in parts]),
        np.concatenate([p.vs_mps for p in parts]),
    )
    order = np.argsort(np.array(t.ids))
    assert len(_frames(t, order, 200_000.0)) > 1
    found = both(t, rpz_m=30000.0, hpz_m=1000.0)
    assert len(found) > 0
    if boxes[0][2] == 180.0:  # some conflicts straddle the antimeridian
        lon = t.lon_deg
        assert np.any(np.sign(lon[found.a]) != np.sign(lon[found.b]))


@pytest.mark.parametrize("numba_from", [10**9, 2], ids=["numpy", "compiled"])
@pytest.mark.parametrize("share", [0.0, 0.01, 0.2, 1.0])
def test_pairs_among_some_tracks_are_the_rows_of_the_whole_table_that_have_one(numba_from: int, share: float) -> None:
    """``among``: the pairs with at least one of the tracks marked, exactly as the whole table gives them
    (figures to the bit, in its order), in one frame and across frames."""
    rng = np.random.default_rng(11)
    syria = random_tracks(rng, 800, (35.7, 32.3, 42.4, 37.3))
    paris = random_tracks(rng, 100, (2.0, 47.0, 4.0, 49.0))
    for t in (
        syria,
        Tracks.of(
            [f"P{i}" for i in paris.ids] + list(syria.ids),
            *(
                np.concatenate([getattr(paris, c), getattr(syria, c)])
                for c in ("lat_deg", "lon_deg", "alt_m", "gs_mps", "trk_deg", "vs_mps")
            ),
        ),
    ):
        whole = find_track_conflicts(t, numba_from=numba_from)
        among = rng.uniform(size=len(t)) < share
        part = find_track_conflicts(t, numba_from=numba_from, among=among)
        keep = among[whole.a] | among[whole.b]
        assert len(whole) > 30 and (0 < keep.sum() < len(whole) or share in (0.0, 1.0))
        for col in ("a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s"):
            assert getattr(part, col).tolist() == getattr(whole, col)[keep].tolist(), col
    with pytest.raises(ValueError, match="among"):
        find_track_conflicts(syria, among=np.ones(3, dtype=bool))


# --- closed-form cases ---------------------------------------------------------------------------


def test_head_on_along_a_meridian() -> None:
    # 60 km apart on the meridian, 250 m/s each: closing at 500 m/s
    lat2 = WGS84.fwd(38.0, 34.0, 0.0, 60_000.0)[1]
    t = tracks(("N", 34.0, 38.0, 9000.0, 250.0, 0.0, 0.0), ("S", lat2, 38.0, 9000.0, 250.0, 180.0, 0.0))
    (c,) = both(t).conflicts(t)
    assert (c.a, c.b) == ("N", "S")
    assert c.tcpa_s == pytest.approx(120.0, abs=0.01)
    assert c.dcpa_m == pytest.approx(0.0, abs=0.5)
    assert c.t_in_s == pytest.approx((60_000.0 - R) / 500.0, abs=0.01)
    assert c.t_out_s == pytest.approx((60_000.0 + R) / 500.0, abs=0.01)


def test_vertical_window_cuts_the_horizontal_one() -> None:
    # level at FL300 and a climber from 3000 m below at 20 m/s, both parked 1 km apart:
    # vertical distance below H from (3000 - H) / 20 to (3000 + H) / 20 seconds
    lon_b, lat_b, _ = WGS84.fwd(38.0, 34.5, 90.0, 1000.0)
    t = tracks(("A", 34.5, 38.0, 9144.0, 0.0, 0.0, 0.0), ("B", lat_b, lon_b, 6144.0, 0.0, 0.0, 20.0))
    (c,) = both(t).conflicts(t)
    assert c.t_in_s == pytest.approx((3000 - H) / 20, abs=1e-6)
    assert c.t_out_s == pytest.approx((3000 + H) / 20, abs=1e-6)
    assert c.tcpa_s == 0.0 and c.dcpa_m == pytest.approx(1000.0, rel=2e-4)


def test_crossing_at_right_angles() -> None:
    # B crosses A's path 40 km ahead of A, 2 km behind A's arrival: |dp + dv t| has a known minimum
    lat_a, lon_a = 34.5, 38.0
    lon_x, lat_x, _ = WGS84.fwd(lon_a, lat_a, 90.0, 40_000.0)
    lon_b, lat_b, back = WGS84.fwd(lon_x, lat_x, 180.0, 42_000.0)  # B: south of the crossing, heading to it
    t = tracks(("A", lat_a, lon_a, 9000.0, 200.0, 90.0, 0.0), ("B", lat_b, lon_b, 9000.0, 200.0, back, 0.0))
    (c,) = both(t).conflicts(t)
    # relative motion: dp = (40 km, -42 km), dv = (-200, 200): tcpa = 205 s, dcpa = 2 km / sqrt(2)
    assert c.tcpa_s == pytest.approx(205.0, abs=0.5)
    assert c.dcpa_m == pytest.approx(2000 / np.sqrt(2), abs=15.0)


# --- edge cases ----------------------------------------------------------------------------------


def test_no_tracks_and_one_track() -> None:
    assert len(both(tracks())) == 0
    assert len(both(tracks(("A", 34.5, 38.0, 9000.0, 200.0, 90.0, 0.0)))) == 0


def test_identical_velocity_keeps_the_distance() -> None:
    lat2 = WGS84.fwd(38.0, 34.5, 0.0, 5000.0)[1]
    t = tracks(("A", 34.5, 38.0, 9000.0, 200.0, 45.0, 0.0), ("B", lat2, 38.0, 9000.0, 200.0, 45.0, 0.0))
    (c,) = both(t).conflicts(t)
    assert (c.t_in_s, c.t_out_s) == (0.0, T)
    assert c.dcpa_m == pytest.approx(5000.0, abs=2.0)
    assert 0.0 <= c.tcpa_s <= T


def test_same_state_twice() -> None:
    t = tracks(("A", 34.5, 38.0, 9000.0, 200.0, 45.0, 3.0), ("B", 34.5, 38.0, 9000.0, 200.0, 45.0, 3.0))
    (c,) = both(t).conflicts(t)
    assert (c.tcpa_s, c.dcpa_m, c.t_in_s, c.t_out_s) == (0.0, 0.0, 0.0, T)


@pytest.mark.parametrize(("upper_ft", "conflict"), [(31000, False), (30999, True), (31001, False)])
def test_level_exactly_h_apart_is_not_a_conflict(upper_ft: int, conflict: bool) -> None:
    text = HEADER + f"A,34.5,38.0,30000,300,90,0\nB,34.5,38.0,{upper_ft},300,90,0\n"
    t = read_tracks_csv(text)
    assert len(both(t)) == int(conflict)


def test_already_too_close() -> None:
    # 3 km apart and diverging: separation is lost now and regained when they are R apart
    lon2 = WGS84.fwd(38.0, 34.5, 90.0, 3000.0)[0]
    t = tracks(("A", 34.5, 38.0, 9000.0, 100.0, 270.0, 0.0), ("B", 34.5, lon2, 9000.0, 100.0, 90.0, 0.0))
    (c,) = both(t).conflicts(t)
    assert c.t_in_s == 0.0 and c.tcpa_s == 0.0
    assert c.dcpa_m == pytest.approx(3000.0, abs=1.0)
    assert c.t_out_s == pytest.approx((R - 3000.0) / 200.0, abs=0.05)


def test_conflict_beyond_the_lookahead_is_not_reported() -> None:
    lat2 = WGS84.fwd(38.0, 34.0, 0.0, 60_000.0)[1]
    t = tracks(("N", 34.0, 38.0, 9000.0, 250.0, 0.0, 0.0), ("S", lat2, 38.0, 9000.0, 250.0, 180.0, 0.0))
    assert len(both(t, lookahead_s=100.0)) == 0  # separation is lost at 101.5 s
    (c,) = both(t, lookahead_s=110.0).conflicts(t)
    assert c.t_out_s == 110.0 and c.tcpa_s == 110.0  # closest within the look-ahead is its end


@pytest.mark.parametrize("option", ["rpz_m", "hpz_m", "lookahead_s"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_minima_must_be_positive(option: str, value: float) -> None:
    t = tracks(("A", 34.5, 38.0, 9000.0, 200.0, 45.0, 0.0))
    with pytest.raises(InvalidInput, match=option):
        find_track_conflicts(t, **{option: value})
    with pytest.raises(InvalidInput, match=option):
        brute_force_track_conflicts(t, **{option: value})


# --- geodesy -------------------------------------------------------------------------------------


def test_extrapolation_follows_the_geodesic() -> None:
    """Positions flown in the frame stay within 5 m of pyproj.Geod's over Syria (500 kt, 300 s)."""
    t = random_tracks(np.random.default_rng(1), 2000, (35.7, 32.3, 42.4, 37.3))
    t = Tracks.of(t.ids, t.lat_deg, t.lon_deg, t.alt_m, np.full(len(t), 500 * KT_MPS), t.trk_deg, t.vs_mps)
    order = np.arange(len(t))
    ((frame, members, _),) = _frames(t, order, 1e5)
    p = _plane(frame, t.lat_deg, t.lon_deg, t, members, T)
    for s in (0.0, 100.0, 150.0, 300.0):
        lon, lat = frame.to_lonlat(p.x + p.vx * s, p.y + p.vy * s)
        glon, glat, _ = WGS84.fwd(t.lon_deg, t.lat_deg, t.trk_deg, t.gs_mps * s)
        _, _, err = WGS84.inv(lon, lat, glon, glat)
        assert err.max() < 5.0, (s, err.max())


def test_distances_are_ground_metres() -> None:
    """At entry and at closest approach, Geod measures the predicted distances to 0.05 %."""
    t = random_tracks(np.random.default_rng(2), 1500, (35.7, 32.3, 42.4, 37.3))
    table = find_track_conflicts(t)

    def apart(s: np.ndarray) -> np.ndarray:
        a, b = table.a, table.b
        lon_a, lat_a, _ = WGS84.fwd(t.lon_deg[a], t.lat_deg[a], t.trk_deg[a], t.gs_mps[a] * s)
        lon_b, lat_b, _ = WGS84.fwd(t.lon_deg[b], t.lat_deg[b], t.trk_deg[b], t.gs_mps[b] * s)
        return np.asarray(WGS84.inv(lon_a, lat_a, lon_b, lat_b)[2])

    assert len(table) > 50
    assert np.abs(apart(table.tcpa_s) - table.dcpa_m).max() < 0.0005 * R
    dz = np.abs(t.alt_m[table.a] - t.alt_m[table.b] + (t.vs_mps[table.a] - t.vs_mps[table.b]) * table.t_in_s)
    horizontal_entry = (table.t_in_s > 0) & (dz < H - 1.0)  # the entry is set by the horizontal distance
    assert np.abs(apart(table.t_in_s)[horizontal_entry] - R).max() < 0.0005 * R


# --- CSV and the command line --------------------------------------------------------------------

GOOD = HEADER + "E,34.5,37.0,30000,388.8,90,0\nW,34.5,38.0,30000,388.8,270,0\nX,34.5,38.0,31000,388.8,270,0\n"


def run(*args: str) -> Any:
    return runner.invoke(app, ["tracks", *args])


def test_cli_prints_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = run(str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert list(doc) == ["conflicts"]
    (c,) = doc["conflicts"]
    assert list(c) == ["a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s"]
    assert (c["a"], c["b"]) == ("E", "W")
    assert c["t_out_s"] - c["t_in_s"] == pytest.approx(2 * R / (2 * 388.8 * KT_MPS), abs=0.01)
    wider = json.loads(run(str(path), "--hpz-m", "400", "--rpz-m", "10000", "--lookahead-s", "600").stdout)
    assert [(c["a"], c["b"]) for c in wider["conflicts"]] == [("E", "W"), ("E", "X"), ("W", "X")]


def test_cli_header_only(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER, encoding="utf-8")
    result = run(str(path))
    assert result.exit_code == 0 and json.loads(result.stdout) == {"conflicts": []}


@pytest.mark.parametrize(
    ("body", "line", "column", "words"),
    [
        ("A,34.5,37.0,30000,300,90\n", 2, "vs_fpm", "missing"),
        ("A,34.5,37.0,,300,90,0\n", 2, "alt_ft", "missing"),
        ("A,34.5,37.0,30000,fast,90,0\n", 2, "gs_kt", "'fast' is not a finite number"),
        ("A,34.5,37.0,30000,300,90,0\nB,95,37.0,30000,300,90,0\n", 3, "lat", "latitude is outside"),
        ("A,34.5,-181,30000,300,90,0\n", 2, "lon", "longitude is outside"),
        ("A,34.5,37.0,30000,300,90,0\n\nB,34.5,37.0,30000,-5,90,0\n", 4, "gs_kt", "ground speed is negative"),
        ("A,34.5,37.0,nan,300,90,0\n", 2, "alt_ft", "not a finite number"),
        ("A,34.5,37.0,30000,300,inf,0\n", 2, "trk_deg", "not a finite number"),
        ("A,34.5,37.0,30000,300,90,0\nA,34.6,37.0,30000,300,90,0\n", 3, "id", "already appears on line 2"),
        (",34.5,37.0,30000,300,90,0\n", 2, "id", "empty"),
    ],
)
def test_cli_names_the_bad_row_and_column(tmp_path: Path, body: str, line: int, column: str, words: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    result = run(str(path))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path} line {line}, column {column}: "), result.stderr
    assert words in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("id,lat,lon,alt_ft,gs_kt,trk_deg\nA,1,2,3,4,5\n", "line 1: missing column vs_fpm"),
        ("name,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\n", "line 1: missing column id"),
        (  # said as "missing column id, lat, ..." before
            "id;lat;lon;alt_ft;gs_kt;trk_deg;vs_fpm\nA;1;2;3;4;5;6\n",
            "line 1: the columns are separated by a semicolon; separate them by commas",
        ),
    ],
)
def test_cli_bad_header(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    result = run(str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert words in result.stderr


def test_a_header_in_capitals_names_the_same_columns(tmp_path: Path) -> None:
    header, rest = GOOD.split("\n", 1)
    capitals, plain = tmp_path / "capitals.csv", tmp_path / "plain.csv"
    capitals.write_text(header.upper() + "\n" + rest, encoding="utf-8")
    plain.write_text(GOOD, encoding="utf-8")
    assert run(str(capitals)).stdout == run(str(plain)).stdout != ""


@pytest.mark.parametrize("option", ["--rpz-m", "--hpz-m", "--lookahead-s"])
@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_cli_refuses_minima_not_above_zero(tmp_path: Path, option: str, value: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = run(str(path), option, value)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{option} must be a number above 0" in result.stderr


def test_cli_help_has_an_example() -> None:
    result = runner.invoke(app, ["tracks", "--help"])
    assert result.exit_code == 0 and "Example: deconflict tracks" in result.stdout


def test_real_process(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(GOOD, encoding="utf-8")
    command = [sys.executable, "-c", "from deconflict.cli import main; main()", "tracks"]
    ok = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stderr == ""
    assert [c["b"] for c in json.loads(ok.stdout)["conflicts"]] == ["W"]
    path.write_text(GOOD + "Y,34.5,38.0,31000,-1,270,0\n", encoding="utf-8")
    bad = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == f"error: {path} line 5, column gs_kt: ground speed is negative (-1)\n"


# --- real ADS-B ----------------------------------------------------------------------------------


def test_real_adsb_states() -> None:
    """Aircraft states at eleven instants of the `traffic` package's quickstart sample (Paris area)."""
    text = (DATA / "adsb_quickstart_states.csv").read_text(encoding="utf-8")
    head, *rows = text.splitlines()
    assert head == "instant," + HEADER.strip()
    instants: dict[str, list[str]] = {}
    for row in rows:
        instant, rest = row.split(",", 1)
        instants.setdefault(instant, []).append(rest)
    assert len(instants) >= 10
    total = 0
    for lines in instants.values():
        t = read_tracks_csv(HEADER + "\n".join(lines) + "\n")
        total += len(both(t))
        both(t, rpz_m=3 * R, hpz_m=3 * H, lookahead_s=2 * T, slices=3)
    assert total > 20


def extract_states(sample: Path, every_s: int = 900, stale_s: int = 30) -> str:
    """Regenerate ``data/adsb_quickstart_states.csv`` from ``traffic/data/samples/collections/quickstart.json.gz``.

    For each instant (every 15 minutes), each airborne aircraft's last complete report in the
    30 s before it, in the CSV contract's units (the sample's own: feet, knots, ft/min).
    Run: ``PYTHONPATH=tests python tests/domain/test_tactical.py PATH/TO/quickstart.json.gz`` (the file is in the
    ``traffic`` wheel, MIT licence).
    """
    fields = ("latitude", "longitude", "altitude", "groundspeed", "track", "vertical_rate")
    records = [r for r in json.load(gzip.open(sample)) if not r.get("onground") and None not in map(r.get, fields)]
    records.sort(key=lambda r: r["timestamp"])
    t0, t1 = records[0]["timestamp"] // 1000, records[-1]["timestamp"] // 1000
    out = ["instant," + HEADER.strip()]
    for instant in range(t0 + every_s, t1, every_s):
        last = {r["icao24"]: r for r in records if instant - stale_s < r["timestamp"] / 1000 <= instant}
        for icao, r in sorted(last.items()):
            out.append(",".join(map(str, (instant, icao, *(r[f] for f in fields)))))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    (DATA / "adsb_quickstart_states.csv").write_text(extract_states(Path(sys.argv[1])), encoding="utf-8")


# --- conformance ---------------------------------------------------------------------------------

NOW = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)


def volume(vid: str, geometry: dict, radius_m: float | None = None, **kw: Any) -> Volume:
    fields = {"floor_m": 0.0, "ceiling_m": 3000.0, "start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=1)}
    fields |= kw
    return Volume(vid, parse_footprint(geometry, radius_m), **fields)


CIRCLE = volume("circle", {"type": "Point", "coordinates": list(T4)}, 10_000.0)
SQUARE_GEOMETRY = {
    "type": "Polygon",
    "coordinates": [[[38.0, 34.0], [38.2, 34.0], [38.2, 34.2], [38.0, 34.2], [38.0, 34.0]]],
}
SQUARE = volume("square", SQUARE_GEOMETRY)


@pytest.mark.parametrize(
    ("where", "alt_m", "tolerance_m", "inside"),
    [
        (T4, 1000.0, 0.0, True),
        (offset(T4, 40.0, 9_950.0), 1000.0, 0.0, True),
        (offset(T4, 40.0, 10_050.0), 1000.0, 0.0, False),
        (offset(T4, 40.0, 10_050.0), 1000.0, 60.0, True),
        (offset(T4, 40.0, 10_050.0), 1000.0, 40.0, False),
        (T4, 3050.0, 0.0, False),
        (T4, 3050.0, 60.0, True),
        (T4, -40.0, 50.0, True),
    ],
)
def test_conformance_circle(where: tuple[float, float], alt_m: float, tolerance_m: float, inside: bool) -> None:
    t, v = tracks_in_volumes([where[0]], [where[1]], [alt_m], NOW, [CIRCLE], tolerance_m=tolerance_m)
    assert (t.tolist(), v.tolist()) == (([0], [0]) if inside else ([], []))


def test_conformance_polygon_edges_and_windows() -> None:
    south_edge = (38.1, 34.0)
    just_in, outside = offset(south_edge, 0.0, 1.0), offset(south_edge, 180.0, 100.0)
    lon, lat = zip(just_in, outside, (38.1, 34.1), (30.0, 30.0), strict=True)
    t, v = tracks_in_volumes(lon, lat, [500.0] * 4, NOW, [CIRCLE, SQUARE])
    assert list(zip(t.tolist(), v.tolist(), strict=True)) == [(0, 1), (2, 1)]
    t, _ = tracks_in_volumes(lon, lat, [500.0] * 4, NOW, [CIRCLE, SQUARE], tolerance_m=110.0)
    assert t.tolist() == [0, 1, 2]
    later = volume("later", SQUARE_GEOMETRY, start=NOW, end=NOW + timedelta(minutes=5))
    ended = volume("ended", SQUARE_GEOMETRY, start=NOW - timedelta(hours=2), end=NOW)
    open_ended = volume("open", SQUARE_GEOMETRY, start=None, end=None)
    _, v = tracks_in_volumes([38.1], [34.1], [500.0], NOW, [later, ended, open_ended])
    assert v.tolist() == [0, 2]  # the window is [start, end)
    assert [len(a) for a in tracks_in_volumes([], [], [], NOW, [SQUARE])] == [0, 0]
    assert [len(a) for a in tracks_in_volumes([38.1], [34.1], [500.0], NOW, [])] == [0, 0]
    with pytest.raises(InvalidInput, match="tolerance_m"):
        tracks_in_volumes([38.1], [34.1], [500.0], NOW, [SQUARE], tolerance_m=-1.0)


def test_conformance_measures_only_points_off_their_footprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Points on or in a footprint are taken as 0 m away without measuring: the same answer as measuring
    every point (the previous code), for points inside, outside, on edges and vertices, within and beyond
    the tolerance, of a square, a concave polygon and a circle."""
    notch = volume(
        "notch",
        {
            "type": "Polygon",
            "coordinates": [[[38.3, 34.0], [38.5, 34.0], [38.5, 34.2], [38.4, 34.05], [38.3, 34.2], [38.3, 34.0]]],
        },
    )
    volumes = [CIRCLE, SQUARE, notch]
    rng = np.random.default_rng(11)
    lon = np.concatenate([rng.uniform(37.4, 38.7, 3000), [38.0, 38.1, 38.2, 38.4, 38.45, 38.5], T4[:1]])
    lat = np.concatenate([rng.uniform(33.9, 34.7, 3000), [34.0, 34.0, 34.1, 34.05, 34.0, 34.1], T4[1:]])
    alt = np.full(len(lon), 500.0)
    for tolerance in (0.0, 1852.0):
        fast = tracks_in_volumes(lon, lat, alt, NOW, volumes, tolerance_m=tolerance)
        with monkeypatch.context() as m:  # every candidate measured
            m.setattr(shapely, "intersects", lambda a, b: np.zeros(len(a), dtype=bool))
            measured = tracks_in_volumes(lon, lat, alt, NOW, volumes, tolerance_m=tolerance)
        assert [x.tolist() for x in fast] == [x.tolist() for x in measured]
        assert 200 < len(fast[0]) < len(lon)  # some in, most out
