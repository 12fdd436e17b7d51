"""A data dir remembers the Codex homes it mirrors: commands given no home use those (not
~/.codex), and a command given other homes says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from sessionbase.cli import cli
from sessionbase.config import Settings
from tests.builders.codex import DEFAULT_START, Rollout
from tests.conftest import Cli


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user home whose ~/.codex does not exist (the default the recorded homes replace)."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def without_home(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--data-dir", str(settings.data_dir), *args], catch_exceptions=False
    )


def test_commands_given_no_home_use_the_ones_backfill_recorded(
    settings: Settings, codex_home: Path, run_cli: Cli, elsewhere: Path, tmp_path: Path
) -> None:
    first = Rollout()
    first.user("Why does the deploy time out?")
    first.write(codex_home)
    run_cli("backfill", "--no-embed")
    later = Rollout(start=DEFAULT_START + timedelta(hours=1))
    later.user("And the second one?")
    written = later.write(codex_home)

    status = without_home(settings, "status", "--json")
    assert status.exit_code == 0, status.output
    report = orjson.loads(status.stdout)
    assert report["codex_homes"] == [str(codex_home.absolute())]
    assert report["files_new"] == 1  # lag is measured against the recorded home
    assert report["lag_bytes"] == written.stat().st_size
    human = without_home(settings, "status")
    assert f"codex homes  {codex_home.absolute()}" in human.stdout
    assert "no Codex sessions found" not in human.output
    assert "note:" not in human.output

    other = tmp_path / "other-home"
    (other / "sessions").mkdir(parents=True)
    given = without_home(settings, "--codex-home", str(other), "threads")
    assert given.exit_code == 0, given.output
    assert f"note: this data dir mirrors {codex_home.absolute()}" in given.stderr
    assert f"the Codex homes given are {other.absolute()}" in given.stderr

    # a plain backfill keeps following the recorded home, not ~/.codex
    again = without_home(settings, "backfill", "--no-embed")
    assert again.exit_code == 0, again.output
    assert "2 files (1 unchanged)" in again.stdout
