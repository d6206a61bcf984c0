"""What the page needs from the service, over plain HTTP (no browser): the page and its files at ``/``,
the service's clock in ``GET /me``, the standard phrases in the reader's language."""

from __future__ import annotations

import posixpath
import re

import httpx
import pytest
from support.builders import T0, A
from support.live import auth

from deconflict.clock import iso


def test_the_page_and_every_file_it_names_are_served_from_the_service(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    names = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert "web/vendor/leaflet/leaflet.js" in names and "web/js/main.js" in names
    todo, seen = [n for n in names if not n.startswith("data:")], set()
    while todo:  # every file named, and every ES module those import, in turn
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert not re.match(r"^[a-z]+://", name), f"the page names another host: {name}"
        got = client.get("/" + name)
        assert got.status_code == 200, name
        if name.endswith(".js") and "/vendor/" not in name:
            assert got.headers["content-type"].startswith("text/javascript"), name  # modules need a JS type
            base = name.rsplit("/", 1)[0]
            for imported in re.findall(r"^import .*? from '(\.{1,2}/[^']+)';", got.text, re.M):
                todo.append(posixpath.normpath(posixpath.join(base, imported)))
    assert len([n for n in seen if n.startswith("web/js/")]) >= 8, sorted(seen)
    basemap = client.get("/web/data/countries_50m.geojson").json()
    assert {"Syria", "Turkey", "Israel", "Iraq"} <= {f["properties"]["name"] for f in basemap["features"]}
    assert "BSD 2-Clause" in client.get("/web/vendor/leaflet/LICENSE").text  # its licence ships with it


def test_the_page_stays_out_of_the_api_and_its_errors(client: httpx.Client, tokens: dict[str, str]) -> None:
    assert client.get("/web/nothing.js").status_code == 404
    missing = client.get("/api/v1/nothing", headers=auth(tokens["TR"]))
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found", "field": None}
    assert all(path.startswith("/api/v1") for path in client.get("/openapi.json").json()["paths"])


def test_me_gives_the_services_clock(client: httpx.Client, tokens: dict[str, str]) -> None:
    me = client.get("/api/v1/me", headers=auth(tokens["IL"])).json()
    assert me["now"] == iso(T0) and me["member"]["language"] == "he"


@pytest.mark.parametrize(
    ("member", "lang", "rtl", "words"), [("IL", "he", True, "אנו משהים"), ("TR", "tr", False, "bekletiyoruz")]
)
def test_templates_are_worded_in_the_readers_language(
    client: httpx.Client, tokens: dict[str, str], member: str, lang: str, rtl: bool, words: str
) -> None:
    found = {t["id"]: t for t in client.get(f"{A}/templates", headers=auth(tokens[member])).json()}
    holding = found["holding"]
    assert (holding["lang"], holding["rtl"], holding["params"], holding["type"]) == (lang, rtl, ["ref"], "response")
    assert words in holding["text"] and "{ref}" in holding["text"]
    assert found["conflict_alert"]["needs_ack"] is True
