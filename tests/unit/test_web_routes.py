"""The web app's files as `serve` answers them: the SPA fallback, cache headers, the CSP, and
the API, sync and health routes keeping precedence. Runs the real app in process
(``create_app(settings, ingest=False)``) on the assets shipped in the package."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionbase.config import Settings
from sessionbase.server.webapp import WEB_ROOT
from tests.unit.test_functions import Api

pytestmark = pytest.mark.skipif(
    not (WEB_ROOT / "index.html").is_file(), reason="the web app is not built"
)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    api = Api(settings)
    yield api
    api.close()


def _assets(index_html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', index_html)


def test_root_serves_the_app_without_caching_it(api: Api) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert '<div id="root">' in response.text
    assert _assets(response.text), "index.html names no built asset"


@pytest.mark.parametrize("path", ["/t/019e1625-789d-76c0-80ab-3724b5ddb799", "/search", "/x/y/z"])
def test_app_routes_fall_back_to_index(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 200
    assert '<div id="root">' in response.text
    assert response.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_cached_for_a_year_and_gzipped(api: Api) -> None:
    for asset in _assets(api.get("/").text):
        assert re.search(r"-[A-Za-z0-9_-]{8,}\.(js|css)$", asset), f"{asset} carries no hash"
        response = api.get(asset, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-encoding"] == "gzip"
        on_disk = (WEB_ROOT / asset.lstrip("/")).read_bytes()
        assert response.content == on_disk  # httpx undoes the gzip
        plain = api.get(asset, headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == on_disk


def test_every_answer_carries_a_same_origin_csp(api: Api) -> None:
    response = api.get("/", headers={"host": "127.0.0.1:7788"})
    policy = response.headers["content-security-policy"]
    csp = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["connect-src"] == "'self' ws://127.0.0.1:7788 wss://127.0.0.1:7788"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/assets/index-gone1234.js", "/api/nothing", "/v1/nothing"])
def test_missing_files_and_unknown_api_paths_are_404_not_the_page(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert '<div id="root">' not in response.text


def test_api_and_health_routes_keep_precedence(api: Api) -> None:
    assert api.get("/healthz").json() == {"ok": True}
    assert api.get("/version").json()["name"] == "sessionbase"
    assert "threads" in api.query("status:get")
    assert api.get("/openapi.json").json()["openapi"].startswith("3.")
    response = api.post("/api/query", json={"path": "status:get", "args": [{}]})
    assert response.json()["status"] == "success"


def test_paths_cannot_escape_the_web_root(api: Api) -> None:
    for path in ("/../pyproject.toml", "/assets/../../app.py", "/%2e%2e/app.py"):
        response = api.get(path)
        assert "create_app" not in response.text


def test_an_unbuilt_installation_says_how_to_build(tmp_path: Path) -> None:
    import asyncio

    import httpx
    from starlette.applications import Starlette

    from sessionbase.server.webapp import web_routes

    app = Starlette(routes=web_routes(tmp_path))

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/")

    response = asyncio.run(fetch())
    assert response.status_code == 404
    assert "npm --prefix web run build" in response.text
