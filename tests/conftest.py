"""Shared fixtures: a scrubbed environment, a Codex home, and the CLI against a temp data dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sessionbase import config
from sessionbase.cli import cli
from sessionbase.config import Settings

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "codex"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name == "SESSIONBASE_REQUIRE_INTEGRATION":
            continue
        if name.startswith("SESSIONBASE_") or name == "CODEX_HOME":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    home = tmp_path / "codex-home"
    (home / "sessions").mkdir(parents=True)
    return home


@pytest.fixture
def settings(tmp_path: Path, codex_home: Path) -> Settings:
    return config.load(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "codex_homes": (codex_home,),
            "home": tmp_path / "user-home",
            "machine": "test-machine",
        },
    )


class Cli:
    """Runs `sessionbase --data-dir … --codex-home … <args>` in-process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> str:
        base = ["--data-dir", str(self.settings.data_dir)]
        for home in self.settings.codex_homes:
            base += ["--codex-home", str(home)]
        result = self.runner.invoke(cli, [*base, *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result.output

    def json(self, *args: str) -> Any:
        return orjson.loads(self(*args, "--json"))


@pytest.fixture
def run_cli(settings: Settings) -> Cli:
    return Cli(settings)
