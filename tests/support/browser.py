"""Pages in a real browser for the page tests: Debian's Chromium driven by Playwright, the catalogues'
wording as patterns, and an officer's page signed in to a live server. The ``browser`` and ``officer``
fixtures over these are in ``tests/conftest.py``."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect, sync_playwright

from .builders import A
from .live import LiveServer, auth
from .paths import ARTIFACTS, WEB

__all__ = [
    "CATALOGUES",
    "CHROMIUM",
    "VIEWPORT",
    "Officer",
    "Rx",
    "chromium",
    "rx",
    "say",
    "tr_num",
    "wait_until",
    "words",
]

EXPECT_TIMEOUT_MS = 15_000
"""How long every ``expect()`` on a page waits unless it says otherwise (Playwright's own default is 5 s). What a
test waits for is a final state, often reached after several requests one after another (signing in: ``/me``,
the language, the mechanism, the templates; an acknowledgement: a POST, the stream, a GET and a render), and on
a loaded machine (three test processes on two cores, load 5-17 in CI) one request can take a second or two. A
test that times something says its own timeout (the conflict seen within 2 s)."""
expect.set_options(timeout=EXPECT_TIMEOUT_MS)

CHROMIUM = Path("/usr/bin/chromium")
CATALOGUES = WEB / "i18n"
VIEWPORT = {"width": 1366, "height": 768}
ISOLATE = "[\u2068\u2069]*"  # right-to-left pages isolate each value put into a sentence
ARGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
)


def wait_until(condition: Callable[[], Any], timeout_s: float) -> None:
    """Poll ``condition`` from here: ``wait_for_function`` polls with a script the page's Content-Security-Policy
    refuses (``eval``) whenever its first look finds the condition false."""
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, f"not true within {timeout_s:g} s"
        time.sleep(0.1)


def wait_in_page(page: Any, condition: Callable[[], Any], timeout_s: float) -> None:
    """:func:`wait_until`, waiting in ``page`` between looks: Playwright hands the page's events (a request a
    route holds, say) to their handlers only while one of its calls runs, never during ``time.sleep``."""
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, f"not true within {timeout_s:g} s"
        page.wait_for_timeout(100)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; closed on leaving."""
    with sync_playwright() as p:
        args = [*ARGS, "--no-sandbox"] if os.geteuid() == 0 else list(ARGS)
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield b
        b.close()


def say(lang: str, key: str) -> str:
    """The catalogue's wording for ``key`` in ``lang`` (as the page has it, placeholders and all)."""
    node: Any = json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))
    for part in key.split(".") if key.split(".")[0] != "rungs" else ["rungs", key[len("rungs.") :]]:
        node = node[part]
    assert isinstance(node, str), key
    return node


class Rx(str):
    """A regular expression, put into a pattern as it is."""


def rx(lang: str, key: str, **known: Any) -> Rx:
    """A pattern for the sentence ``key`` in ``lang``: the values given, anything for the others."""
    out = []
    for i, part in enumerate(re.split(r"\{\{(\w+)\}\}", say(lang, key))):
        if i % 2 == 0:
            out.append(re.escape(part))
        else:
            value = known.get(part)
            body = ".+?" if value is None else value if isinstance(value, Rx) else re.escape(str(value))
            out.append(ISOLATE + body + ISOLATE)
    return Rx("".join(out))


def words(lang: str, key: str, **known: Any) -> re.Pattern[str]:
    """The sentence ``key`` in ``lang`` as a compiled pattern (see :func:`rx`)."""
    return re.compile(rx(lang, key, **known))


def tr_num(x: float) -> str:
    """A number as the Turkish page writes it: decimal comma, no grouping."""
    return str(x).replace(".", ",")


class Officer:
    """One member's page in its own browser context, signed in and live. Every request outside the
    service is blocked and kept in ``outside``; every uncaught page error is kept in ``errors``; every
    Content-Security-Policy violation in ``csp``."""

    def __init__(
        self, browser: Any, live: LiveServer, token: str, *, timezone_id: str | None = None, live_within_s: float = 15
    ) -> None:
        self.live, self.token, self.origin = live, token, live.url
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.csp: list[str] = []
        """Content-Security-Policy violations the page reported (the page's CSP is strict: api/web.py)."""
        options: dict[str, Any] = {"viewport": VIEWPORT}
        if timezone_id is not None:
            options["timezone_id"] = timezone_id
        self.context = browser.new_context(**options)
        self.context.route("**/*", self._guard)
        self.context.expose_function("__cspViolation", lambda v: self.csp.append(str(v)))
        self.context.add_init_script(
            "document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation("
            "`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"
        )
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # what the page asked and has no answer to yet, and what it warned of: said if it never goes live
        self._asked: dict[Any, tuple[float, str]] = {}
        self._warned: list[str] = []
        self.page.on("request", lambda r: self._asked.__setitem__(r, (time.monotonic(), f"{r.method} {r.url}")))
        self.page.on("requestfinished", lambda r: self._asked.pop(r, None))
        self.page.on("requestfailed", lambda r: self._asked.pop(r, None))
        self.page.on("console", lambda m: self._warned.append(f"{m.type}: {m.text}") if m.type != "log" else None)
        self.page.goto(live.url + "/")
        self.page.fill("#token", token)
        self.page.press("#token", "Enter")
        expect(self.page.locator("#app")).to_be_visible()
        # the page's first requests (each through _guard) and the stream's first state, on a loaded machine:
        # 5 s was once not enough with three test processes at load 10; a page signing in during an alert storm
        # (thousands of cards to draw first) says how long it allows
        try:
            expect(self.page.locator("#stream-state")).to_have_class(re.compile("live"), timeout=live_within_s * 1000)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self._why_not_live()}") from None

    def _why_not_live(self) -> str:
        """What a page that never went live was waiting for: its requests with no answer (the stream's
        ``/events`` is asked only once the page's first reads are answered), its warnings and errors, and
        where each thread of this process (the in-process server's among them) stood."""
        now = time.monotonic()
        asked = [f"  {what} (asked {now - at:.1f} s ago)" for at, what in self._asked.values()]
        stacks = []
        for ident, frame in sys._current_frames().items():
            name = next((t.name for t in threading.enumerate() if t.ident == ident), str(ident))
            stacks.append(f"  thread {name}:\n" + "".join(traceback.format_stack(frame, limit=8)))
        return "\n".join(
            [
                "requests with no answer:",
                *(asked or ["  none"]),
                f"page warnings: {self._warned[-10:]}",
                f"page errors: {self.errors[-10:]}",
                f"sign-in error: {self.page.locator('#signin-error').text_content()!r}",
                "threads of this process:",
                *stacks,
            ]
        )

    def _guard(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def get(self, path: str) -> Any:
        """``GET`` a route of the mechanism as this officer; the JSON answer (asserted 200)."""
        r = httpx.get(f"{self.live.url}{A}{path}", headers=auth(self.token), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def click_map(self, lat: float, lon: float) -> None:
        point = self.page.evaluate("([lat, lon]) => cop.map.latLngToContainerPoint([lat, lon])", [lat, lon])
        box = self.page.locator("#map").bounding_box()
        self.page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])

    def popup_of(self, lat: float, lon: float) -> None:
        """Open the popup of the activity drawn at (lat, lon)."""
        # in braces: returning the map itself would make Playwright serialise all of it (4-5 s a call)
        self.page.evaluate("([lat, lon]) => { cop.map.setView([lat, lon], 10, { animate: false }); }", [lat, lon])
        point = self.page.evaluate("([lat, lon]) => cop.map.latLngToContainerPoint([lat, lon])", [lat, lon])
        box = self.page.locator("#map").bounding_box()
        self.page.mouse.click(box["x"] + point["x"] + 30, box["y"] + point["y"] + 30)

    def circle(self, lat: float, lon: float, km: float) -> None:
        """Type a circle as a Turkish officer writes numbers (decimal comma)."""
        self.page.fill("#n-lat", tr_num(lat))
        self.page.fill("#n-lon", tr_num(lon))
        self.page.fill("#n-radius", tr_num(km))

    def shot(self, name: str) -> None:
        """A screenshot of the page, to ``ARTIFACTS/name``."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))

    def close(self) -> None:
        self.context.close()
