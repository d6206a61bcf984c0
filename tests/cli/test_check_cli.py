"""`deconflict check`: the batch contract through Typer's runner and through a real process."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from support.builders import point, square
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.cli.files import conflict_json
from deconflict.detect import find_conflicts
from deconflict.formats.geojson import volumes_from_geojson
from deconflict.geo import WGS84

runner = CliRunner()


def feature(vid: Any, party: str, geometry: dict, **props: Any) -> dict:
    base = {
        "id": vid,
        "party": party,
        "start": "2025-04-09T08:00:00Z",
        "end": "2025-04-09T10:00:00Z",
        "floor_m": 0,
        "ceiling_m": 3000,
    }
    return {"type": "Feature", "geometry": geometry, "properties": base | props}


def collection(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


# T4 (Tiyas) and Palmyra, ~63 km apart, plus volumes close to each.
T4 = (37.6298, 34.5226)
PALMYRA = (38.3169, 34.5574)
VALID = collection(
    feature("tr-t4", "TR", point(*T4), radius_m=10_000, activity="uav-patrol-1"),
    feature("il-palmyra", "IL", point(*PALMYRA), radius_m=20_000),
    feature("il-near-t4", "IL", square(37.70, 34.45, 0.1)),
    feature("tr-palmyra", "TR", point(PALMYRA[0] + 0.05, PALMYRA[1]), radius_m=5_000, floor_m=5_000, ceiling_m=6_000),
    feature("ru-late", "RU", point(*T4), radius_m=1_000, start="2025-04-09T10:00:00Z", end="2025-04-09T12:00:00Z"),
    feature("ru-no-window", "RU", point(*PALMYRA), radius_m=500, start=None, end=None),
)


def write(tmp_path: Path, doc: Any, name: str = "volumes.geojson") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def run(*args: str) -> Any:
    return runner.invoke(app, ["check", *args])


def assert_contract(out: dict) -> list[dict]:
    assert set(out) == {"conflicts"}
    conflicts = out["conflicts"]
    keys = [(c["a"], c["b"]) for c in conflicts]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for c in conflicts:
        assert c["a"] < c["b"]
        assert isinstance(c["distance_m"], (int, float)) and c["distance_m"] >= 0
    return conflicts


def test_valid_file_prints_sorted_conflicts(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, VALID)))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    conflicts = assert_contract(json.loads(result.stdout))
    # not found: il-palmyra/tr-palmyra (bands 2000 m apart, V = 0), ru-late/tr-t4 (ru-late starts when
    # tr-t4 ends), il-*/il-* (same party)
    assert [(c["a"], c["b"]) for c in conflicts] == [
        ("il-near-t4", "tr-t4"),  # the square overlaps the T4 circle
        ("il-palmyra", "ru-no-window"),  # no window: overlaps at every time
    ]
    by_pair = {(c["a"], c["b"]): c for c in conflicts}
    c = by_pair[("il-near-t4", "tr-t4")]
    assert c["distance_m"] == 0
    assert (c["party_a"], c["party_b"]) == ("IL", "TR")
    assert (c["activity_a"], c["activity_b"]) == (None, "uav-patrol-1")
    assert (c["start"], c["end"]) == ("2025-04-09T08:00:00Z", "2025-04-09T10:00:00Z")


def test_separation_options_widen_what_conflicts(tmp_path: Path) -> None:
    path = str(write(tmp_path, VALID))
    result = run(path, "--separation-m", "70000", "--vertical-separation-m", "2500")
    assert result.exit_code == 0, result.stderr
    conflicts = assert_contract(json.loads(result.stdout))
    pairs = {(c["a"], c["b"]) for c in conflicts}
    assert ("il-palmyra", "tr-palmyra") in pairs  # 2000 m apart vertically, V = 2500
    assert ("il-palmyra", "tr-t4") in pairs  # ~63 km centres, radii 30 km
    assert ("ru-late", "tr-t4") not in pairs  # same place, touching windows never conflict
    assert ("il-near-t4", "il-palmyra") not in pairs  # same party
    gap = WGS84.inv(*T4, *PALMYRA)[2] - 30_000
    (c,) = [c for c in conflicts if (c["a"], c["b"]) == ("il-palmyra", "tr-t4")]
    assert c["distance_m"] == pytest.approx(gap, abs=1.0)


def test_separation_threshold_is_inclusive_in_metres(tmp_path: Path) -> None:
    a, b = (38.0, 34.5), (38.2, 34.5)  # same parallel: one Geod.inv gives the distance
    gap = WGS84.inv(*a, *b)[2] - 2_000 - 3_000
    path = str(
        write(
            tmp_path,
            collection(feature("a", "TR", point(*a), radius_m=2_000), feature("b", "IL", point(*b), radius_m=3_000)),
        )
    )
    inside = json.loads(run(path, "--separation-m", f"{gap + 0.5:.3f}").stdout)
    outside = json.loads(run(path, "--separation-m", f"{gap - 0.5:.3f}").stdout)
    assert [(c["a"], c["b"]) for c in inside["conflicts"]] == [("a", "b")]
    assert inside["conflicts"][0]["distance_m"] == pytest.approx(gap, abs=0.05)
    assert outside == {"conflicts": []}


def test_numeric_ids_are_strings_sorted_as_text(tmp_path: Path) -> None:
    doc = collection(
        feature(10, "TR", point(38.0, 34.5), radius_m=1_000), feature(9, "IL", point(38.0, 34.5), radius_m=1_000)
    )
    result = run(str(write(tmp_path, doc)))
    assert result.exit_code == 0, result.stderr
    (c,) = assert_contract(json.loads(result.stdout))
    assert (c["a"], c["b"]) == ("10", "9")


def test_empty_collection_has_no_conflicts(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, collection())))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"conflicts": []}


def test_reads_stdin_with_dash() -> None:
    result = runner.invoke(app, ["check", "-"], input=json.dumps(VALID))
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["conflicts"]) == 2


def test_output_is_json_dumps_of_each_conflict(tmp_path: Path) -> None:
    """The table writer prints byte for byte what json.dumps of conflict_json rows gives."""
    doc = collection(
        *VALID["features"],
        feature('quote"and\\slash', "TR", point(*PALMYRA), radius_m=3_000, activity="é-ünicode ✈"),
        feature(
            "ctrl\tid", "IL", point(PALMYRA[0] + 0.01, PALMYRA[1]), radius_m=1_234.567, floor_m=3_100, ceiling_m=4_000
        ),
        feature("micro", "US", point(*PALMYRA), radius_m=700, start="2025-04-09T08:00:00.250000Z", end=None),
    )
    for m, v in [(0.0, 0.0), (70_000.0, 2_500.0)]:
        result = run(str(write(tmp_path, doc)), "--separation-m", str(m), "--vertical-separation-m", str(v))
        assert result.exit_code == 0, result.stderr
        found = find_conflicts(volumes_from_geojson(doc), separation_m=m, vertical_separation_m=v)
        assert len(found) > 2
        assert result.stdout == json.dumps({"conflicts": [conflict_json(c) for c in found]}, ensure_ascii=False) + "\n"


BOW_TIE = {"type": "Polygon", "coordinates": [[[38, 34], [39, 35], [39, 34], [38, 35], [38, 34]]]}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({2: {"geometry": BOW_TIE}, 3: {"end": "tomorrow"}}, ["feature 2", "cross"], id="geometry-first"),
        pytest.param({1: {"end": "tomorrow"}, 2: {"geometry": BOW_TIE}}, ["feature 1", "end"], id="field-first"),
        pytest.param({2: {"geometry": BOW_TIE, "end": "tomorrow"}}, ["feature 2", "cross"], id="same-feature"),
        pytest.param(
            {1: {"geometry": point(179.99, 10.0), "radius_m": 50_000}, 2: {"id": "tr-t4"}},
            ["feature 1", "antimeridian"],
            id="circle-before-duplicate",
        ),
        pytest.param(
            {1: {"id": "tr-t4"}, 2: {"geometry": BOW_TIE}}, ["feature 1", "used twice"], id="duplicate-before-geometry"
        ),
    ],
)
def test_first_error_in_file_order_is_reported(tmp_path: Path, changes: dict, expected: list[str]) -> None:
    """Geometry is checked for all features at once, yet the error is the one a feature-by-feature read meets."""
    doc = copy.deepcopy(VALID)
    for index, change in changes.items():
        for key, value in change.items():
            if key == "geometry":
                doc["features"][index]["geometry"] = value
            else:
                doc["features"][index]["properties"][key] = value
    result = run(str(write(tmp_path, doc)))
    assert result.exit_code == 2
    for word in expected:
        assert word in result.stderr, (word, result.stderr)


# --- bad input ---------------------------------------------------------------------------------


def broken(index: int, **changes: Any) -> dict:
    """VALID with feature ``index`` changed: ``geometry=...`` replaces it, other keys set properties (None deletes)."""
    doc = copy.deepcopy(VALID)
    f = doc["features"][index]
    for key, value in changes.items():
        if key == "geometry":
            f["geometry"] = value
        elif value is None:
            f["properties"].pop(key, None)
        else:
            f["properties"][key] = value
    return doc


BAD_INPUT = [
    pytest.param('{"type": "FeatureCollection", "features": [', ["JSON", "line 1"], id="malformed-json"),
    pytest.param(
        {"type": "Feature", "geometry": None, "properties": {}}, ["FeatureCollection"], id="not-a-featurecollection"
    ),
    pytest.param({"type": "FeatureCollection", "features": {}}, ["features"], id="features-not-a-list"),
    pytest.param(
        broken(1, geometry={"type": "Polygon", "coordinates": [[[38, 34], [39, 34], [39, 35], [38, 35]]]}),
        ["feature 1", "not closed"],
        id="ring-not-closed",
    ),
    pytest.param(broken(1, geometry=point(38.0, 95.0)), ["feature 1", "latitude"], id="latitude-out-of-range"),
    pytest.param(broken(2, geometry=square(179.5, 34.0, 1.0)), ["feature 2", "longitude"], id="longitude-out-of-range"),
    pytest.param(
        broken(1, start="2025-04-09T10:00:00Z", end="2025-04-09T10:00:00Z"),
        ["feature 1", "end", "start"],
        id="end-equals-start",
    ),
    pytest.param(broken(1, end="2025-04-09T07:00:00Z"), ["feature 1", "end"], id="end-before-start"),
    pytest.param(broken(1, start="2025-04-09 08:00"), ["feature 1", "start"], id="start-without-timezone"),
    pytest.param(broken(1, end="tomorrow"), ["feature 1", "end"], id="end-not-a-time"),
    pytest.param(
        broken(1, floor_m=3000, ceiling_m=3000), ["feature 1", "floor_m", "ceiling_m"], id="floor-equals-ceiling"
    ),
    pytest.param(broken(1, floor_m=4000), ["feature 1", "floor_m"], id="floor-above-ceiling"),
    pytest.param(broken(1, floor_m=-501), ["feature 1", "floor_m", "-500"], id="floor-below-minus-500"),
    pytest.param(broken(1, ceiling_m=30_001), ["feature 1", "ceiling_m", "30000"], id="ceiling-above-30000"),
    pytest.param(broken(1, ceiling_m="high"), ["feature 1", "ceiling_m"], id="ceiling-not-a-number"),
    pytest.param(broken(3, id="tr-t4"), ["feature 3", "id", "tr-t4", "feature 0"], id="duplicate-ids"),
    pytest.param(broken(1, party=None), ["feature 1", "party"], id="missing-party"),
    pytest.param(broken(1, party=""), ["feature 1", "party"], id="empty-party"),
    pytest.param(broken(1, id=None), ["feature 1", "id"], id="missing-id"),
    pytest.param(broken(1, radius_m=None), ["feature 1", "radius_m"], id="point-without-radius"),
    pytest.param(broken(1, radius_m=500_001), ["feature 1", "radius_m", "500 km"], id="radius-over-500km"),
    pytest.param(broken(1, radius_m=0), ["feature 1", "radius_m"], id="radius-zero"),
    pytest.param(broken(2, radius_m=1000), ["feature 2", "radius_m"], id="polygon-with-radius"),
    pytest.param(
        broken(2, geometry={"type": "LineString", "coordinates": [[38, 34], [39, 35]]}),
        ["feature 2", "LineString"],
        id="line",
    ),
    pytest.param(
        broken(
            2,
            geometry=square(179.5, 34.0, 0.5)
            | {"coordinates": [[[179.5, 34], [-179.5, 34], [-179.5, 35], [179.5, 34]]]},
        ),
        ["feature 2", "antimeridian"],
        id="polygon-over-antimeridian",
    ),
    pytest.param(
        collection(VALID["features"][0], {"type": "Feature", "geometry": point(38, 34)}),
        ["feature 1", "properties"],
        id="feature-without-properties",
    ),
    pytest.param(
        collection(VALID["features"][0], ["not", "a", "feature"]), ["feature 1", "Feature"], id="not-a-feature"
    ),
]


@pytest.mark.parametrize(("doc", "expected"), BAD_INPUT)
def test_bad_input_exits_2_and_names_what_is_wrong(tmp_path: Path, doc: Any, expected: list[str]) -> None:
    result = run(str(write(tmp_path, doc)))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    for word in expected:
        assert word in err, (word, err)
    assert "Traceback" not in err


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.geojson"
    result = run(str(missing))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {missing}: no such file\n"


def test_folder_instead_of_file(tmp_path: Path) -> None:
    result = run(str(tmp_path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "folder" in result.stderr


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.geojson"
    path.write_bytes(b'{"type": "FeatureCollection", "features": [], "name": "\xe9"}')
    result = run(str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "UTF-8" in result.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "five"])
@pytest.mark.parametrize("option", ["--separation-m", "--vertical-separation-m"])
def test_bad_separation_is_refused(tmp_path: Path, option: str, value: str) -> None:
    result = run(str(write(tmp_path, VALID)), option, value)
    assert result.exit_code == 2
    assert result.stdout == ""
    if (
        value != "five"
    ):  # a number out of range: one line naming the option, as for tracks (inf made every pair conflict)
        assert result.stderr == f"error: {option} must be a number, 0 or more, got {value}\n"


# --- a real process --------------------------------------------------------------------------


def _commands() -> list[pytest.ParameterSet]:
    cmds = [pytest.param([sys.executable, "-c", "from deconflict.cli import main; main()"], id="python-c")]
    script = shutil.which("deconflict") or shutil.which("deconflict", path=sysconfig.get_path("scripts"))
    if script:
        cmds.append(pytest.param([script], id="installed-script"))
    return cmds


@pytest.mark.parametrize("command", _commands())
def test_real_process(tmp_path: Path, command: list[str]) -> None:
    ok = subprocess.run([*command, "check", str(write(tmp_path, VALID))], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    conflicts = assert_contract(json.loads(ok.stdout))
    assert [(c["a"], c["b"]) for c in conflicts] == [("il-near-t4", "tr-t4"), ("il-palmyra", "ru-no-window")]

    bad = subprocess.run(
        [*command, "check", str(write(tmp_path, broken(1, end="2025-04-09T07:00:00Z"), "bad.geojson"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: feature 1") and " end" in bad.stderr
    assert "Traceback" not in bad.stderr
