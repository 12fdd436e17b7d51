"""Fixtures for tests that drive the real Codex CLI against the loopback mock model server.

Tests needing the CLI request ``codex_binary`` (directly or through another fixture): they skip
with the reason when node or the pinned Codex is missing, and fail instead when
``SESSIONBASE_REQUIRE_INTEGRATION=1`` (CI sets it so a broken install cannot pass silently).
Set ``SESSIONBASE_KEEP_CODEX_HOMES=1`` to keep the generated ``CODEX_HOME`` trees for debugging.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.browser import browser_unavailable_reason
from tests.support.codex_cli import (
    CodexHome,
    codex_homes_root,
    codex_unavailable_reason,
    find_codex_binary,
    harness_setting,
    make_codex_home,
)
from tests.support.codex_scenarios import Scenario, ScenarioResult, run_scenario
from tests.support.mock_responses import MockModelServer, Script


def _integration_required() -> bool:
    return harness_setting("SESSIONBASE_REQUIRE_INTEGRATION") == "1"


@pytest.fixture(scope="session")
def codex_binary() -> Path:
    """The pinned Codex CLI, or skip (fail if SESSIONBASE_REQUIRE_INTEGRATION=1)."""
    reason = codex_unavailable_reason()
    if reason is not None:
        if _integration_required():
            pytest.fail(f"SESSIONBASE_REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    binary = find_codex_binary()
    assert binary is not None
    return binary


@pytest.fixture
def codex_home_parent(codex_binary: Path) -> Iterator[Path]:
    """A per-test directory outside /tmp for CODEX_HOME trees (Codex refuses to install its
    helper binaries under the temp dir), removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="test-", dir=codex_homes_root()))
    yield parent
    if harness_setting("SESSIONBASE_KEEP_CODEX_HOMES") != "1":
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def codex_workdir(tmp_path: Path) -> Path:
    """The directory Codex runs in (its ``cwd`` in the rollout)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    return workdir


@pytest.fixture
def mock_model_server() -> Iterator[Callable[[Script], MockModelServer]]:
    """Factory: start a :class:`MockModelServer` for a script; all are stopped at teardown."""
    servers: list[MockModelServer] = []

    def start(script: Script) -> MockModelServer:
        server = MockModelServer(script).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def codex_home_for(codex_home_parent: Path) -> Callable[[MockModelServer], CodexHome]:
    """Factory: a fresh CODEX_HOME whose config points at the given mock server."""

    def make(server: MockModelServer) -> CodexHome:
        return make_codex_home(server.base_url, parent=codex_home_parent)

    return make


@pytest.fixture
def scenario_runner(
    codex_home_parent: Path, codex_workdir: Path
) -> Callable[[Scenario], ScenarioResult]:
    """Factory: play a scenario through the real CLI in this test's work dir and home root."""

    def run(scenario: Scenario) -> ScenarioResult:
        return run_scenario(scenario, codex_workdir, codex_home_parent=codex_home_parent)

    return run


@pytest.fixture(scope="session")
def chromium() -> None:
    """Debian's Chromium and the pinned playwright-core are installed, or skip (fail if
    SESSIONBASE_REQUIRE_INTEGRATION=1); drive it with ``run_browser_script``."""
    reason = browser_unavailable_reason()
    if reason is not None:
        if _integration_required():
            pytest.fail(f"SESSIONBASE_REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
        pytest.skip(reason)
