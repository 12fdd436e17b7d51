"""The web app's built files (``server/web/``), served at ``/``.

The app is a single page: any GET that names no API, sync or health route and no file answers
with ``index.html``, so a reload on ``/t/<id>`` works. Built files under ``assets/`` carry a
content hash in their names and are cached for a year; ``index.html`` is never cached, so a new
release is picked up on the next load. Every answer carries a Content-Security-Policy that lets
the page load code and open connections only to this server's own origin.
"""

from __future__ import annotations

import functools
import gzip
import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

WEB_ROOT = Path(__file__).resolve().parent / "web"
API_PREFIXES = ("/api/", "/v1/", "/auth/", "/mcp")
LONG_CACHE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
COMPRESSIBLE = (".js", ".css", ".html", ".svg", ".json", ".map", ".txt")
NOT_BUILT = (
    "The sessionbase web app is not built into this installation: run "
    "`npm --prefix web ci && npm --prefix web run build` in a clone of sessionbase.\n"
)


def content_security_policy(host: str) -> str:
    """Only this server's own origin: code, styles, images, and the sync socket (``ws:`` and
    ``wss:`` are named because older browsers do not count them as ``'self'``)."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


@functools.lru_cache(maxsize=256)
def _load_hashed(path: Path) -> tuple[bytes, bytes | None]:
    """A hashed asset's bytes and gzip, read and compressed once: a hashed name never
    changes content."""
    return _load(path)


def _load(path: Path) -> tuple[bytes, bytes | None]:
    """A built file's bytes and, where it pays, their gzip."""
    body = path.read_bytes()
    packed = None
    if path.suffix in COMPRESSIBLE and len(body) > 1024:
        packed = gzip.compress(body, compresslevel=9, mtime=0)
    return body, packed


def _file_response(request: Request, path: Path, cache: str) -> Response:
    body, packed = _load_hashed(path) if cache == LONG_CACHE else _load(path)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
        media_type += "; charset=utf-8"
    headers = _security_headers(request)
    headers["Cache-Control"] = cache
    headers["Vary"] = "Accept-Encoding"
    if packed is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = packed
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=media_type, headers=headers)


def _security_headers(request: Request) -> dict[str, str]:
    host = request.headers.get("host", "127.0.0.1")
    return {
        "Content-Security-Policy": content_security_policy(host),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _built_file(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``root``, or None (never a path outside it)."""
    if not relative or relative.startswith("/") or "\\" in relative:
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def web_routes(root: Path = WEB_ROOT) -> list[Route]:
    """Routes for the app; they go last, after every API, sync and health route."""
    root = root.resolve()

    async def page(request: Request) -> Response:
        path = request.url.path
        if path.startswith(API_PREFIXES):
            return PlainTextResponse("Not Found", status_code=404)
        relative = path.lstrip("/")
        found = _built_file(root, relative) if relative else None
        if found is not None and found.name != "index.html":
            hashed = relative.startswith("assets/")
            return _file_response(request, found, LONG_CACHE if hashed else NO_CACHE)
        if relative.startswith("assets/"):  # an old hashed name: never answer it with a page
            return PlainTextResponse("Not Found", status_code=404)
        index = root / "index.html"
        if not index.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=404)
        return _file_response(request, index, NO_CACHE)

    return [Route("/{path:path}", page, methods=["GET", "HEAD"])]
