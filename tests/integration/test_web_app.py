"""The web app in a real browser: Debian's Chromium (playwright-core) against a real
`sessionbase serve` on a real mirrored Codex home.

The home holds the shared corpus (rollouts written by several Codex versions) plus sessions
the pinned Codex CLI writes here against the loopback mock model (commands, a patch, a plan,
reasoning). One server serves the module. Each test runs one scenario of
``js/web_app.mjs`` and asserts on the JSON it reports; every scenario also reports console
errors, uncaught exceptions, failed requests and HTTP errors, which must be none.

Screenshots of every page at 1280 and 390 px wide land in ``tests/out/screenshots`` (or
``SESSIONBASE_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionbase.server.webapp import WEB_ROOT
from tests.conftest import CORPUS
from tests.support.browser import run_browser_script
from tests.support.codex_cli import codex_homes_root, harness_setting
from tests.support.codex_scenarios import SCENARIOS_BY_NAME, run_scenario
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLI_SCENARIOS = ("multi_tool_calls", "apply_patch_update", "reasoning_answer")
DAY = ("2026", "01", "02")


@dataclass
class WebHome:
    server: ServerProcess
    codex_home: Path
    cli_threads: dict[str, tuple[str, Path]]  # scenario -> (thread id, rollout in our home)

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, path: str, **args: Any) -> Any:
        request = urllib.request.Request(
            f"{self.url}/v1/query/{path}",
            data=json.dumps(args).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def run(self, scenario: str, **config: Any) -> Any:
        config = {"url": self.url, **config}
        result = run_browser_script("web_app.mjs", scenario, json.dumps(config))
        assert result.pop("problems") == [], "the browser saw errors"
        return result


def _copy_corpus(sessions: Path) -> None:
    for path in CORPUS.glob("*/*.jsonl"):
        name = path.name if path.name.startswith("rollout-") else f"rollout-{path.name}"
        shutil.copy(path, sessions / name)


@pytest.fixture(scope="module")
def web_home(chromium: None, codex_binary: Path) -> Iterator[WebHome]:
    root = Path(tempfile.mkdtemp(prefix="web-", dir=codex_homes_root()))
    codex_home = root / "codex-home"
    sessions = codex_home / "sessions" / Path(*DAY)
    sessions.mkdir(parents=True)
    _copy_corpus(sessions)
    cli_threads: dict[str, tuple[str, Path]] = {}
    for name in CLI_SCENARIOS:
        result = run_scenario(
            SCENARIOS_BY_NAME[name], root / "work" / name, codex_home_parent=root / "codex"
        )
        target = sessions / result.rollout_path.name
        shutil.copy(result.rollout_path, target)
        cli_threads[name] = (result.thread_id, target)
        result.codex_home.remove()
    server = ServerProcess(root / "data", codex_home).start(timeout=120)
    try:
        yield WebHome(server, codex_home, cli_threads)
    finally:
        server.stop()
        if harness_setting("SESSIONBASE_KEEP_CODEX_HOMES") != "1":
            shutil.rmtree(root, ignore_errors=True)


def _screenshots() -> Path:
    default = REPO / "tests" / "out" / "screenshots"
    return Path(harness_setting("SESSIONBASE_SCREENSHOTS") or default)


# ------------------------------------------------------------------ tests


def test_drawer_lists_the_mirrored_threads(web_home: WebHome) -> None:
    threads = web_home.query("threads:recent", limit=100)
    assert len(threads) >= len(CLI_SCENARIOS) + 7
    shown = web_home.run("drawer", expectCount=len(threads))
    assert shown["ids"] == [t["id"] for t in threads]
    for _, (thread_id, _) in web_home.cli_threads.items():
        assert thread_id in shown["ids"]


def test_every_page_is_clean_accessible_and_fits_a_phone(web_home: WebHome) -> None:
    pages = [{"name": "home", "path": "/", "ready": "aside#history a[data-thread-link]"}]
    result = web_home.run("pages", pages=pages, screenshots=str(_screenshots()))
    for entry in result["report"]:
        where = f"{entry['page']} at {entry['viewport']}"
        overflow = entry["overflow"]
        assert overflow["scrollWidth"] <= overflow["clientWidth"], f"{where} scrolls sideways"
        serious = [v for v in entry["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{where}: {serious}"


def test_the_wheel_ships_the_built_app(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH (scripts/test installs it)")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=REPO, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("sessionbase-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"sessionbase/server/web/{p.relative_to(WEB_ROOT).as_posix()}"
        for p in WEB_ROOT.rglob("*")
        if p.is_file()
    }
    assert "sessionbase/server/web/index.html" in shipped
    assert any(n.startswith("sessionbase/server/web/assets/") for n in shipped)
    assert shipped <= names
