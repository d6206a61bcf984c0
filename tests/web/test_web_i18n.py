"""The page's message catalogues (``web/i18n/<lang>.json``, read by i18next in ``web/js/i18n.js``),
checked without a browser: every language has every key and no empty value, each sentence keeps
English's placeholders, every key the page's sources name exists, and every name that comes from data
(activity kinds, zone kinds, rung names of the bundled mechanisms, …) has its entry."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support.paths import WEB

from deconflict.hotline import LineState, MessageType, bundled_templates
from deconflict.mechanisms import load_mechanism
from deconflict.model import ActivityKind, ActivityState, ConflictKind, ConflictStatus, Role, ZoneKind
from deconflict.scenarios import scenario_path

CATALOGUES = WEB / "i18n"
LANGUAGES = ["en", "tr", "he", "ar", "ru"]
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def catalogue(lang: str) -> dict[str, Any]:
    return flatten(json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8")))


EN = catalogue("en")


def test_the_languages_the_page_knows_are_the_catalogues_shipped() -> None:
    source = (WEB / "js" / "i18n.js").read_text(encoding="utf-8")
    known = re.search(r"export const LANGUAGES = \[([^\]]*)\]", source)
    assert known, "i18n.js names its languages"
    assert re.findall(r"'(\w+)'", known.group(1)) == LANGUAGES
    assert sorted(p.stem for p in CATALOGUES.glob("*.json")) == sorted(LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_every_language_has_exactly_englishs_keys(lang: str) -> None:
    other = catalogue(lang)
    assert sorted(set(EN) - set(other)) == [], f"missing in {lang}.json"
    assert sorted(set(other) - set(EN)) == [], f"in {lang}.json but not in en.json"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_value_is_empty_and_each_keeps_englishs_placeholders(lang: str) -> None:
    for key, value in catalogue(lang).items():
        assert isinstance(value, str) and value.strip(), f"{lang}.json {key} is empty"
        assert set(PLACEHOLDER.findall(value)) == set(PLACEHOLDER.findall(EN[key])), f"{lang}.json {key}: {value!r}"


def sources() -> dict[str, str]:
    files = sorted((WEB / "js").glob("*.js")) + [WEB / "index.html"]
    return {f.name: f.read_text(encoding="utf-8") for f in files}


def test_every_key_the_page_names_is_in_english() -> None:
    used: dict[str, str] = {}
    for name, text in sources().items():
        for key in re.findall(r"\bt\(\s*['\"]([^'\"]+)['\"]", text):  # t('key') and t("key")
            used[key] = name
        for key in re.findall(r"\bt\(\s*`([^`$]+)`", text):  # t(`key`) without ${…}
            used[key] = name
        for key in re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', text):
            used[key] = name
    assert len(used) > 100, "the grep found the page's keys"
    missing = {key: name for key, name in used.items() if key not in EN}
    assert missing == {}


def test_keys_are_literal_outside_i18n_js() -> None:
    """So that the test above sees them all: names from data go through i18n.js's helpers instead."""
    for name, text in sources().items():
        if name == "i18n.js":
            continue
        assert not re.findall(r"\bt\(\s*`[^`]*\$\{", text), f"{name}: a key built with ${{…}}"
        assert not re.findall(r"\bt\(\s*[A-Za-z_(]", text), f"{name}: a key from a variable"


def test_names_that_come_from_data_have_their_entries() -> None:
    groups = {
        "kinds": ActivityKind,
        "zoneKinds": ZoneKind,
        "zoneTags": ZoneKind,
        "activityStates": ActivityState,
        "conflictKinds": ConflictKind,
        "conflictStatuses": ConflictStatus,
        "messageTypes": MessageType,
        "lineStates": LineState,
        "roles": Role,
    }
    for group, enum in groups.items():
        missing = {e.value for e in enum} - {k.split(".", 1)[1] for k in EN if k.startswith(group + ".")}
        assert missing == set(), f"{group}: {missing}"
    # The helpers in i18n.js look these groups up by name: each must exist.
    helpers = re.findall(r"named\('(\w+)'", (WEB / "js" / "i18n.js").read_text(encoding="utf-8"))
    assert set(helpers) >= set(groups) | {"rungs", "phraseParams"}
    assert all(any(k.startswith(g + ".") for k in EN) for g in helpers), helpers


def test_rung_names_of_the_bundled_mechanisms_are_translated_by_their_english_name() -> None:
    rungs = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))["rungs"]
    scenarios = sorted(p.stem for p in scenario_path("syria").parent.glob("*.toml"))
    for scenario in scenarios:
        for rung in load_mechanism(scenario_path(scenario)).rules.ladder:
            assert rung.name in rungs, f"{scenario}: rung {rung.name!r}"
    for lang in LANGUAGES[1:]:
        translated = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))["rungs"]
        assert all(translated[name] != name for name in rungs), f"{lang}: a rung left in English"


def test_the_fields_of_the_phrases_the_page_offers_have_labels() -> None:
    offered = re.search(r"const PHRASES = \[([^\]]*)\]", (WEB / "js" / "hotline.js").read_text(encoding="utf-8"))
    assert offered, "hotline.js lists the phrases it offers"
    templates = bundled_templates()
    params = {p for t in re.findall(r"'(\w+)'", offered.group(1)) for p in templates[t].params}
    labelled = {k.split(".", 1)[1] for k in EN if k.startswith("phraseParams.")}
    assert params - labelled == set()


def test_i18next_ships_with_its_licence() -> None:
    assert (WEB / "vendor" / "i18next" / "i18next.js").stat().st_size > 50_000
    assert "MIT License" in (WEB / "vendor" / "i18next" / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_rung_has_one_name_on_the_page_and_in_the_hotline(lang: str) -> None:
    """The page names the ladder's rungs from its catalogue, the hotline's messages from the service's list
    (``rung_names.toml``): an escalation notice and the banner beside it must call a rung the same."""
    import tomllib

    from deconflict.hotline.wording import RUNG_NAMES_PATH

    listed = tomllib.loads(RUNG_NAMES_PATH.read_text(encoding="utf-8"))
    shown = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))["rungs"]
    assert shown == {name: names[lang] for name, names in listed.items()}
