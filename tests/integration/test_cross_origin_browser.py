"""A page from another origin, in real headless Chromium, can neither read nor change what a
real ``sessionbase serve`` holds; a page of the server's own origin can do both.

The foreign page is served by a tiny static server on a second loopback port (same machine,
same site, another origin). ``js/cross_origin.mjs`` runs the same attempts from both pages:
text/plain POSTs (which browsers send cross-site without a preflight), a JSON POST, a read, a
text/plain form posted into an iframe, and a sync WebSocket that subscribes and mutates.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.browser import run_browser_script
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.integration

TITLE = "a private session"
OWN_TITLE = "renamed by its own page"
FOREIGN_TITLE = "PWNED"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def foreign_site(tmp_path: Path) -> Iterator[str]:
    """A static page on another loopback port: the attacker's origin."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>elsewhere</title><p>nothing here</p>")
    handler = functools.partial(QuietHandler, directory=str(root))
    port = free_port()
    site = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/index.html"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(10)


def test_a_foreign_page_can_neither_read_nor_mutate(
    chromium: None, tmp_path: Path, foreign_site: str
) -> None:
    codex_home = tmp_path / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    rollout = Rollout(start=DEFAULT_START, cwd="/work/private")
    turn = rollout.turn()
    rollout.user(TITLE)
    rollout.assistant("an answer")
    rollout.end_turn(turn)
    rollout.write(codex_home)
    with ServerProcess(tmp_path / "data", codex_home) as server:
        http = httpx.Client(base_url=server.url, timeout=30, trust_env=False)

        def title() -> str | None:
            got = http.post("/v1/query/threads:get", json={"id": rollout.thread_id}).json()
            return None if got is None else str(got["title"])

        deadline = time.monotonic() + 30
        while title() != TITLE:
            assert time.monotonic() < deadline, "the thread was never imported"
            time.sleep(0.05)
        config = {"server": server.url, "foreign": foreign_site, "threadId": rollout.thread_id,
                  "ownTitle": OWN_TITLE, "foreignTitle": FOREIGN_TITLE}  # fmt: skip
        shown = run_browser_script("cross_origin.mjs", json.dumps(config))
        final_title = title()
        http.close()

    own, foreign = shown["own"], shown["foreign"]
    assert shown["origin"].startswith("http://127.0.0.1:")
    assert shown["origin"] != server.url
    # The foreign page learns nothing and changes nothing.
    for attempt in ("read", "jsonPost"):
        assert "error" in foreign[attempt], (attempt, foreign[attempt])  # CORS: nothing readable
    for attempt in ("textPlainV1", "textPlainConvex"):
        assert foreign[attempt]["type"] == "opaque", (attempt, foreign[attempt])
        assert foreign[attempt]["body"] == "", (attempt, foreign[attempt])
    assert not foreign["ws"]["opened"], foreign["ws"]
    assert foreign["ws"]["messages"] == [], foreign["ws"]
    assert final_title == OWN_TITLE, "a request from the foreign page renamed the thread"
    # The server's own page reads and mutates: the attempts themselves work.
    assert own["read"]["status"] == 200, own["read"]
    assert rollout.thread_id in own["read"]["body"]
    assert own["jsonPost"]["status"] == 200, own["jsonPost"]
    assert own["ws"]["opened"], own["ws"]
    assert own["ws"]["mutation"] is True, own["ws"]
    assert any(rollout.thread_id in m for m in own["ws"]["messages"]), own["ws"]
    assert own["textPlainV1"]["status"] == 415  # even its own page must say JSON
