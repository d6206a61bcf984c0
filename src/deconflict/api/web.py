"""The common operating picture: the page in ``deconflict/web``, served at ``/`` (the API stays under /api/v1),
and the headers every answer carries.

Headers (:class:`SecurityHeaders`): every answer says ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer`` and may not be framed (``X-Frame-Options: DENY``, CSP
``frame-ancestors 'none'``). The page's Content-Security-Policy allows only its own files: its scripts
(ES modules and vendored Leaflet, no inline script), its style sheets (no inline style; Leaflet moves
elements through the CSSOM, which CSP does not restrict), images from itself and ``data:`` (Leaflet's
blank tile, the empty favicon), and requests to itself (the API, the event stream, the basemap and the
translations are all served here). API answers are ``Cache-Control: no-store``: they carry a member's
view, which no shared or browser cache should keep. ``/docs`` and ``/redoc`` (Swagger UI and ReDoc,
which load their scripts from a CDN) are served only when ``Settings.docs`` is set (``serve --docs``);
``/openapi.json`` always is.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_CSP", "PAGE_CSP", "WEB_DIR", "SecurityHeaders", "install"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""The page, its script and style, vendored Leaflet and the Natural Earth basemap; nothing is fetched elsewhere."""

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: its own files only, nothing inline, never framed."""
API_CSP = "default-src 'none'; frame-ancestors 'none'"
"""Answers that are data, not pages: nothing may run or load from them."""
DOCS_PATHS = ("/docs", "/redoc")
"""The interactive documentation's pages: they load Swagger UI / ReDoc with inline script, so no CSP."""

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]


API_HEADERS = (*_COMMON, (b"content-security-policy", API_CSP.encode()), (b"cache-control", b"no-store"))
"""The headers of an API answer (:class:`SecurityHeaders`), for those written below the application."""
_REPLACED = frozenset({name for name, _ in _COMMON} | {b"content-security-policy"})
"""Headers an answer's own values of which give way to the ones above."""
_REPLACED_API = _REPLACED | {b"cache-control"}
_API_CSP = (b"content-security-policy", API_CSP.encode())
_PAGE_CSP = (b"content-security-policy", PAGE_CSP.encode())
_NO_STORE = (b"cache-control", b"no-store")


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer (streams included, untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                api = _is_api(path)
                replace = _REPLACED_API if api else _REPLACED
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replace]
                headers += _COMMON
                if not path.startswith(DOCS_PATHS):
                    headers.append(_API_CSP if api else _PAGE_CSP)
                if api:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    """Serve ``/`` (the page) and ``/web/...`` (its files); add the headers; drop ``/docs`` and ``/redoc``
    unless the settings ask for them."""
    settings = getattr(app.state, "settings", None)
    if not getattr(settings, "docs", False):
        dropped = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in dropped]

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    app.add_middleware(SecurityHeaders)
