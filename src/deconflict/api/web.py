"""The common operating picture: the page in ``deconflict/web``, served at ``/`` (the API stays under /api/v1)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""The page, its script and style, vendored Leaflet and the Natural Earth basemap; nothing is fetched elsewhere."""


def install(app: FastAPI) -> None:
    """Serve ``/`` (the page) and ``/web/...`` (its files)."""

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
