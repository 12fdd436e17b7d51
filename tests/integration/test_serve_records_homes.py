"""A data dir that a real `serve` filled from a Codex home remembers it: `status` run later
with no home given reports that home and its files, not ~/.codex and "no Codex sessions"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.builders.codex import Rollout
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


def test_status_after_serve_reports_the_home_serve_mirrored(
    codex_home: Path, tmp_path: Path
) -> None:
    r = Rollout()
    r.user("Why does the deploy time out?")
    r.assistant("A lock is never released.")
    r.write(codex_home)
    data = tmp_path / "data"
    with ServerProcess(data, codex_home):
        pass
    user = tmp_path / "user"  # whose ~/.codex does not exist
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    env.pop("CODEX_HOME", None)
    env["HOME"] = str(user)
    status = [sys.executable, "-c", "from sessionbase.cli import main; main()",
              "--data-dir", str(data), "status"]  # fmt: skip
    human = subprocess.run(status, capture_output=True, text=True, timeout=120, env=env)
    assert human.returncode == 0, human.stderr
    assert f"codex homes  {codex_home.absolute()}" in human.stdout
    assert "files        1 ok=1" in human.stdout
    assert "no Codex sessions found" not in human.stdout + human.stderr
    as_json = subprocess.run([*status, "--json"], capture_output=True, timeout=120, env=env)
    report = orjson.loads(as_json.stdout)
    assert report["codex_homes"] == [str(codex_home.absolute())]
    assert report["lag_bytes"] == 0
