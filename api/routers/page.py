"""The chat page: GET / serves api/static/index.html, GET /static/<name> its CSS and JS.

Plain files shipped in the package: no CDN, no build step, nothing fetched at run time. Only the files
that exist in api/static/ when the server starts are served (no path from the URL ever reaches the disk).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import ApiError

router = APIRouter(tags=["page"])
STATIC = Path(__file__).resolve().parent.parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _files() -> dict[str, Path]:
    if not STATIC.is_dir():
        return {}
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in TYPES}


FILES = _files()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    page = FILES.get("index.html")
    if page is None:
        raise ApiError(404, "the chat page is not installed (api/static/index.html is missing)")
    return FileResponse(page, media_type=TYPES[".html"], headers=HEADERS)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    path = FILES.get(name)
    if path is None:
        raise ApiError(404, f"no static file {name!r}")
    return FileResponse(path, media_type=TYPES[path.suffix], headers=HEADERS)
