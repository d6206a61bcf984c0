"""Mechanism files: the bundled Syria scenario and clear errors for bad files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import shapely

from deconflict.errors import InvalidInput
from deconflict.mechanisms import load_mechanism, mechanism_from_record, mechanism_to_doc
from deconflict.model import ActivityKind, Role, ZoneKind
from deconflict.scenarios import scenario_path

SYRIA = scenario_path("syria")


def test_syria_scenario_matches_the_design_facts() -> None:
    m = load_mechanism(SYRIA)
    roles = {x.id: x.role for x in m.members}
    assert roles == {"TR": Role.PARTY, "IL": Role.PARTY, "AZ": Role.FACILITATOR, "US": Role.OBSERVER}
    # the area is the real boundary: the bases are inside, Baku and Beirut are not
    for lon, lat in [(37.6298, 34.5226), (38.3169, 34.5574), (36.7114, 35.1183), (35.9486, 35.4012)]:
        assert shapely.contains_xy(m.area, lon, lat)
    for lon, lat in [(49.8671, 40.4093), (35.5018, 33.8938)]:
        assert not shapely.contains_xy(m.area, lon, lat)
    (red,) = m.zones
    assert red.kind is ZoneKind.RED_LINE and red.owner == "IL"
    assert red.forbids == {ActivityKind.DEPLOYMENT, ActivityKind.AIR_DEFENCE_ACTIVATION}
    assert red.footprint.geometry.x == pytest.approx(38.3169)
    assert m.rules.min_notice_s == 3600 and m.rules.separation_m == 9260
    assert [g.name for g in m.rules.ladder][-1] == "facilitator"


def test_recorded_definition_round_trips() -> None:
    m = load_mechanism(SYRIA)
    back = mechanism_from_record(mechanism_to_doc(m))
    assert back.rules == m.rules and back.members == m.members and back.area.equals(m.area)


def _variant(tmp_path: Path, edit: str) -> Path:
    text = SYRIA.read_text(encoding="utf-8")
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "syria_ne50m.geojson").write_bytes(
        (SYRIA.parent / "data" / "syria_ne50m.geojson").read_bytes()
    )
    path = tmp_path / "m.toml"
    old, new = edit.split(" => ")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


BAD = [
    ("separation_m = 9260 => separation_m = -1", "separation_m"),
    ('disclosure = "full" => disclosure = "some"', "disclosure"),
    ('role = "observer" => role = "spectator"', "role"),
    ('forbids = ["deployment", "air_defence_activation"] => forbids = ["picnic"]', "forbids"),
    ("radius_m = 40000 => radius_m = 900000", "500 km"),
    ('owner = "IL" => owner = "RU"', "owner"),
    ('geojson = "data/syria_ne50m.geojson" => geojson = "data/missing.geojson"', "no such file"),
    ('id = "tr-il-syria" => id = "tr il syria"', "id"),
    ('min_notice_min = 60 => min_notice_min = "an hour"', "min_notice_min"),
    ('valid_from = "2025-04-01T00:00:00Z" => valid_from = "2025-04-01"', "valid_from"),
    ('name = "duty officer" => nome = "duty officer"', "ladder[0] name"),
    ('name = "Türkiye" => name = "Türkiye', "not valid TOML"),
    ('id = "TR" => id = 7', "expected text"),
]


@pytest.mark.parametrize(("edit", "words"), BAD, ids=[b[1] for b in BAD])
def test_bad_mechanism_files_get_clear_errors(tmp_path: Path, edit: str, words: str) -> None:
    path = _variant(tmp_path, edit)
    with pytest.raises(InvalidInput) as info:
        load_mechanism(path)
    assert words in str(info.value)


def test_the_unchanged_copy_loads(tmp_path: Path) -> None:
    path = _variant(tmp_path, "separation_m = 9260 => separation_m = 9260")
    assert load_mechanism(path).id == "tr-il-syria"
    assert tomllib.loads(path.read_text())["id"] == "tr-il-syria"
