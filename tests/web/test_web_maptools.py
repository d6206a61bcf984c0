"""The map tools (web/maptools.js) in a real browser: Debian's Chromium driven by Playwright, against
the page's files served over plain HTTP on loopback, from a small test page that loads Leaflet and the
module the way the page does (``/`` is the test page, ``/web/...`` the shipped files).

Checked against independent references: ranges and bearings against pyproj's Geod (GeographicLib on
WGS84), MGRS against a UTM projection by pyproj with the MGRS lettering applied here."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pyproj import Geod, Transformer
from support.paths import WEB as WEB_DIR

T4 = (34.5226, 37.6298)  # lat, lon
PALMYRA = (34.5574, 38.3169)
HAMA = (35.1183, 36.7114)
HMEIMIM = (35.4012, 35.9486)
DAMASCUS = (33.5138, 36.2765)

TEST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>maptools test</title>
<link rel="stylesheet" href="web/vendor/leaflet/leaflet.css">
<style>html, body { margin: 0; background: #0b1018; } #map { width: 900px; height: 640px; background: #0a1420; }</style>
</head><body>
<div id="map"></div>
<script src="web/vendor/leaflet/leaflet.js"></script>
<script type="module">
  import { installMapTools, geodesicInverse, mgrsString } from './web/maptools.js';
  const TR = { 'maptools.rangeTool': 'Menzil ve kerteriz', 'maptools.clear': 'Temizle' };
  window.lang = 'en';
  const t = (key, vars) => (window.lang === 'tr' && TR[key]) || key;  // i18next returns a missing key as is
  const map = L.map('map', { zoomSnap: 0.25, minZoom: 4, maxZoom: 12 }).setView([34.54, 37.97], 9);
  window.escapesSeenByPage = 0;
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') window.escapesSeenByPage += 1; });
  window.mapClicksSeenByPage = 0;
  map.on('click', () => { window.mapClicksSeenByPage += 1; });
  const tools = installMapTools(map, { t, lang: 'en' });
  Object.assign(window, { map, tools, geodesicInverse, mgrsString, t });
  tools.ready.then(() => { document.body.dataset.ready = 'yes'; });
</script>
</body></html>
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".geojson": "application/geo+json",
    }

    def __init__(self, *args: Any, page_dir: Path, **kwargs: Any) -> None:
        self.page_dir = page_dir
        super().__init__(*args, directory=str(page_dir), **kwargs)

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith("/web/"):
            target = (WEB_DIR / clean[len("/web/") :]).resolve()
            if WEB_DIR in target.parents:
                return str(target)
            return str(self.page_dir / "missing")
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    page_dir = tmp_path_factory.mktemp("maptools-page")
    (page_dir / "index.html").write_text(TEST_PAGE, encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, page_dir=page_dir))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    outside: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(site + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(site + "/index.html")
    expect(pg.locator("body")).to_have_attribute("data-ready", "yes")
    yield pg
    context.close()
    assert outside == [], f"the tools asked for something outside the server: {outside}"
    assert errors == [], errors


def set_view(page: Any, lat: float, lon: float, zoom: float) -> None:
    page.evaluate(
        "([lat, lon, z]) => new Promise((ok) => {"
        " map.once('moveend', ok); map.setView([lat, lon], z, { animate: false }); })",
        [lat, lon, zoom],
    )


def screen_point(page: Any, lat: float, lon: float) -> tuple[float, float]:
    pt = page.evaluate("([lat, lon]) => map.latLngToContainerPoint([lat, lon])", [lat, lon])
    box = page.locator("#map").bounding_box()
    return box["x"] + pt["x"], box["y"] + pt["y"]


def mgrs_via_pyproj(lat: float, lon: float) -> str:
    """MGRS to 1 m from pyproj's UTM (no Norway/Svalbard zone exceptions: not needed here)."""
    zone = int((lon + 180) // 6) + 1
    e, n = Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone}", always_xy=True).transform(lon, lat)
    band = "CDEFGHJKLMNPQRSTUVWX"[int((lat + 80) // 8)]
    column = ["ABCDEFGH", "JKLMNPQR", "STUVWXYZ"][(zone - 1) % 3][int(e // 100_000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(n // 100_000) + (0 if zone % 2 else 5)) % 20]
    return f"{zone}{band} {column}{row} {int(e) % 100_000:05d} {int(n) % 100_000:05d}"


GEOD = Geod(ellps="WGS84")


def test_place_names_appear_by_zoom_unobtrusive_and_out_of_the_tab_order(page: Any) -> None:
    labels = page.locator(".maptools-places .maptools-label")
    # zoomed near Palmyra and T4: both airfields are named
    expect(labels.filter(has_text="Palmyra (Tadmur) airfield")).to_be_visible()
    expect(labels.filter(has_text="T4 (Tiyas) air base")).to_be_visible()
    # wide view: capitals and big cities only, the airfields and small towns wait for the zoom
    set_view(page, 34.8, 37.5, 5)
    expect(labels.filter(has_text="Damascus")).to_be_visible()
    expect(labels.filter(has_text="Aleppo")).to_be_visible()
    assert labels.filter(has_text="T4 (Tiyas)").count() == 0
    assert labels.filter(has_text=re.compile("^Tadmur$")).count() == 0
    few = labels.count()
    set_view(page, 34.8, 37.5, 7.5)
    expect(labels.filter(has_text="Homs")).to_be_visible()
    expect(labels.filter(has_text="Hama military airport")).to_be_visible()
    expect(labels.filter(has_text="Hmeimim air base")).to_be_visible()
    assert labels.count() > few
    # hidden from assistive technology, no focusable element, clicks go through to the map
    assert page.locator(".maptools-places").get_attribute("aria-hidden") == "true"
    assert page.evaluate("map.getPane('maptools-places').getAttribute('aria-hidden')") == "true"
    assert (
        page.locator(
            ".leaflet-maptools-places-pane [tabindex], .leaflet-maptools-places-pane a, "
            ".leaflet-maptools-places-pane button"
        ).count()
        == 0
    )
    assert page.evaluate("getComputedStyle(document.querySelector('.maptools-label')).pointerEvents") == "none"
    x, y = screen_point(page, *HAMA)
    page.mouse.click(x + 12, y)  # on the airport's label
    assert page.evaluate("window.mapClicksSeenByPage") == 1
    # no two labels overlap
    boxes = page.evaluate(
        "[...document.querySelectorAll('.maptools-label')].map((e) => e.getBoundingClientRect().toJSON())"
    )
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (
                a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]
            ), (a, b)


def test_cursor_readout_gives_lat_lon_and_mgrs(page: Any) -> None:
    set_view(page, T4[0], T4[1], 12)
    coords = page.locator(".maptools-coords")
    expect(coords).to_have_attribute("data-source", "centre")
    assert coords.get_attribute("aria-live") == "off"
    x, y = screen_point(page, *T4)
    page.mouse.move(x, y)
    expect(coords).to_have_attribute("data-source", "cursor")
    lat, lon = float(coords.get_attribute("data-lat")), float(coords.get_attribute("data-lon"))
    assert abs(lat - T4[0]) < 0.001 and abs(lon - T4[1]) < 0.001
    expect(page.locator(".maptools-coords-mgrsval")).to_have_text(mgrs_via_pyproj(lat, lon))
    expect(page.locator(".maptools-coords-dec")).to_have_text(f"{lat:.5f}, {lon:.5f}")
    expect(page.locator(".maptools-coords-dms")).to_have_text(re.compile(r"^34°31′\d\d\.\d″N 037°37′\d\d\.\d″E$"))
    # the known points, to the metre, and the module's own formatting
    for point in (T4, PALMYRA, HAMA, HMEIMIM, DAMASCUS):
        assert page.evaluate("([lat, lon]) => mgrsString(lat, lon)", list(point)) == mgrs_via_pyproj(*point)
    assert page.evaluate("mgrsString(34.5226, 37.6298)") == "37S CU 74240 20955"
    page.mouse.move(2, 690)  # off the map: the readout shows the centre again
    expect(coords).to_have_attribute("data-source", "centre")


def test_range_and_bearing_tool_matches_pyproj_and_escape_closes_only_it(page: Any) -> None:
    # the geodesic itself, exactly, on pairs across the theatre
    for a, b in ((T4, PALMYRA), (HMEIMIM, PALMYRA), (DAMASCUS, HAMA), (PALMYRA, T4), ((29.1, 32.2), (39.9, 45.8))):
        got = page.evaluate("([a, b]) => geodesicInverse(a[0], a[1], b[0], b[1])", [list(a), list(b)])
        az, _, dist = GEOD.inv(a[1], a[0], b[1], b[0])
        assert abs(got["distance"] - dist) < 0.001, (a, b)
        assert abs((got["bearing"] - az % 360 + 180) % 360 - 180) < 1e-6, (a, b)
    set_view(page, 34.54, 37.97, 10)
    toggle = page.locator(".maptools-range-toggle")
    expect(toggle).to_have_attribute("aria-label", "Range and bearing")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    # keyboard reachable: Tab reaches the toggle, Enter switches it on
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('maptools-range-toggle')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('maptools-range-toggle')")
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    panel = page.locator(".maptools-range-panel")
    expect(panel).to_be_visible()
    expect(page.locator(".maptools-range-status")).to_have_text("Click the first point (A)")
    clicks_before = page.evaluate("window.mapClicksSeenByPage")
    page.mouse.click(*screen_point(page, *T4))
    expect(page.locator(".maptools-range-status")).to_have_text("Click the second point (B)")
    x, y = screen_point(page, *PALMYRA)
    page.mouse.move(x - 40, y - 30)  # a rubber band follows the cursor
    out = page.locator(".maptools-range")
    expect(out).to_have_attribute("data-fixed", "false")
    page.mouse.click(x, y)
    expect(out).to_have_attribute("data-fixed", "true")
    assert page.evaluate("window.mapClicksSeenByPage") == clicks_before, (
        "the page's map click handler saw the tool's clicks"
    )
    a = [float(v) for v in out.get_attribute("data-a").split(",")]
    b = [float(v) for v in out.get_attribute("data-b").split(",")]
    assert abs(a[0] - T4[0]) < 0.002 and abs(a[1] - T4[1]) < 0.002
    assert abs(b[0] - PALMYRA[0]) < 0.002 and abs(b[1] - PALMYRA[1]) < 0.002
    az, _, dist = GEOD.inv(a[1], a[0], b[1], b[0])
    assert abs(float(out.get_attribute("data-distance-m")) - dist) < 1.0
    assert abs(float(out.get_attribute("data-bearing-deg")) - az % 360) < 0.01
    # what the officer reads: km and NM, three-digit true bearing (T4 → Palmyra is about 63.2 km, 086°)
    rows = page.locator(".maptools-range-row")
    expect(rows.nth(0)).to_have_text(f"Range: {dist / 1000:.1f} km · {dist / 1852:.1f} NM")
    expect(rows.nth(1)).to_have_text(f"Bearing: {round(az % 360):03d}° true")
    assert 63.0 < dist / 1000 < 63.4 and round(az % 360) == 86
    expect(page.locator(".maptools-range .maptools-sr-only")).to_contain_text("bearing 086 degrees true")
    expect(page.locator(".maptools-range-tag")).to_contain_text("086°")
    # Escape closes the tool, and the page's own Escape handling never hears of it
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(panel).to_be_hidden()
    assert page.locator(".leaflet-maptools-measure-pane path").count() == 0
    assert page.evaluate("window.escapesSeenByPage") == 0
    page.keyboard.press("Escape")  # with the tool off, Escape is the page's again
    assert page.evaluate("window.escapesSeenByPage") == 1
    # off: clicks are the map's again
    page.mouse.click(*screen_point(page, *T4))
    assert page.evaluate("window.mapClicksSeenByPage") == clicks_before + 1


def test_scale_bar_metric_and_nautical(page: Any) -> None:
    scale = page.locator(".leaflet-control-scale")
    expect(scale).to_have_count(1)
    expect(scale.locator(".maptools-scale-metric")).to_have_text(re.compile(r"^\d+ (km|m)$"))
    expect(scale.locator(".maptools-scale-nm")).to_have_text(re.compile(r"^[\d.]+ NM$"))
    # the NM bar's length is its label, to the pixel, at the map's centre latitude
    nm_label = float(scale.locator(".maptools-scale-nm").inner_text().split()[0])
    width = scale.locator(".maptools-scale-nm").evaluate("(e) => e.getBoundingClientRect().width")
    metres = page.evaluate(
        "(w) => { const y = map.getSize().y / 2;"
        " return map.distance(map.containerPointToLatLng([0, y]), map.containerPointToLatLng([w, y])); }",
        width,
    )
    assert abs(metres / 1852 - nm_label) / nm_label < 0.03


def test_language_and_right_to_left(page: Any) -> None:
    # t() is used where it has the key; the English fallback elsewhere
    page.evaluate("window.lang = 'tr'; tools.setLanguage('tr')")
    toggle = page.locator(".maptools-range-toggle")
    expect(toggle).to_have_attribute("aria-label", "Menzil ve kerteriz")
    expect(
        page.locator(".maptools-places .maptools-label").filter(has_text="Palmira (Tedmür) havaalanı")
    ).to_be_visible()
    # Hebrew: place names in Hebrew where Natural Earth has them, controls on the right
    page.evaluate("window.lang = 'he'; tools.setLanguage('he')")
    set_view(page, 33.0, 35.8, 7)
    labels = page.locator(".maptools-places .maptools-label")
    expect(labels.filter(has_text="דמשק")).to_be_visible()
    expect(labels.filter(has_text="ביירות")).to_be_visible()
    assert page.locator(".leaflet-top.leaflet-right .maptools-range").count() == 1
    assert page.locator(".leaflet-bottom.leaflet-right .maptools-coords").count() == 1
    assert page.locator(".leaflet-bottom.leaflet-right .leaflet-control-scale").count() == 1
    assert page.locator(".maptools-coords").get_attribute("dir") == "rtl"
    assert page.locator(".maptools-coords-dec").get_attribute("dir") == "ltr"
    place = page.locator(".maptools-place").filter(has_text="דמשק")
    dot = place.locator(".maptools-dot").bounding_box()
    label = place.locator(".maptools-label").bounding_box()
    assert label["x"] + label["width"] <= dot["x"] + 1, "in RTL the label reads towards its dot"
    # back to English, then destroy leaves the map as it was
    page.evaluate("window.lang = 'en'; tools.setLanguage('en')")
    assert page.locator(".leaflet-top.leaflet-left .maptools-range").count() == 1
    page.evaluate("tools.destroy()")
    assert page.locator(".maptools-range, .maptools-coords, .leaflet-control-scale, .maptools-places").count() == 0
