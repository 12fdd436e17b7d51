"""A real `sessionbase serve` starting up: what it says, and how it refuses to start.

Each refusal is one line that says what to do, with a non-zero exit and no traceback; a
server that does start names its data dir and Codex homes, and does not log every request.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.builders.codex import Rollout
from tests.conftest import REPO
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.integration

SESSIONBASE = [sys.executable, "-c", "from sessionbase.cli import main; main()"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    return subprocess.run(
        [*SESSIONBASE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], output


@pytest.fixture
def home(codex_home: Path) -> Path:
    r = Rollout()
    r.user("Why does the deploy time out?")
    r.assistant("A lock is never released.")
    r.write(codex_home)
    return codex_home


def test_a_second_serve_on_the_same_data_dir_says_so_in_one_line(
    home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, home):
        second = run("--data-dir", str(data), "--codex-home", str(home),
                     "serve", "--port", str(free_port()))  # fmt: skip
    assert_one_line_error(second, "already ingesting into", "stop it first")
    assert "Started server process" not in second.stderr  # refused before anything ran


def test_a_port_in_use_stops_serve_before_it_imports(home: Path, tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "first", home) as first:
        second = run("--data-dir", str(tmp_path / "second"), "--codex-home", str(home),
                     "serve", "--port", str(first.port))  # fmt: skip
    assert_one_line_error(second, f"port {first.port}", "already in use", "--port")
    assert " ready in " not in second.stderr
    assert not (tmp_path / "second" / "sessionbase.db").exists()


def test_a_data_dir_that_is_a_file_is_one_line_from_the_environment(
    home: Path, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    for command in (["serve", "--port", str(free_port())], ["backfill"], ["threads"]):
        result = run("--codex-home", str(home), *command,
                     env={"SESSIONBASE_DATA_DIR": str(afile)})  # fmt: skip
        assert_one_line_error(result, f"data dir {afile} is a file", "SESSIONBASE_DATA_DIR")


def test_startup_names_its_data_dir_and_homes_and_requests_are_not_logged(
    home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, home) as server:
        for _ in range(3):
            urllib.request.urlopen(f"{server.url}/v1/query/threads:recent", timeout=10).read()
        log = server.log()
    assert f"data dir {data}" in log
    assert f"Codex homes {home}" in log
    assert f"listening on {server.url}" in log
    assert "threads:recent" not in log, log
    assert "/readyz" not in log, log


def test_scripts_serve_takes_the_global_options_and_keeps_the_dev_tools(
    home: Path, tmp_path: Path
) -> None:
    """The README's main command with the documented global options, after `scripts/test`
    installed the dev tools: it serves that data dir and home, and removes nothing."""
    dev_tools = [REPO / ".venv" / "bin" / tool for tool in ("pytest", "ruff", "mypy")]
    assert all(tool.exists() for tool in dev_tools)
    if shutil.which("uv") is None and not (Path.home() / ".local" / "bin" / "uv").exists():
        pytest.fail("uv is not installed (scripts/test installs it)")
    data = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "serve"), "--data-dir", str(data), "--codex-home", str(home),
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        server = ServerProcess(data, home, port=port)
        server.proc = proc  # type: ignore[assignment]
        server.log_path = log_path
        server.wait_ready(timeout=120)
        threads = urllib.request.urlopen(f"{server.url}/v1/query/threads:recent", timeout=10)
        assert len(threads.read()) > 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert (data / "sessionbase.db").exists()
    missing = [tool.name for tool in dev_tools if not tool.exists()]
    assert not missing, f"scripts/serve removed {missing}:\n{log_path.read_text()}"
