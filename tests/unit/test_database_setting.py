"""The database setting: ``--database``, ``SESSIONBASE_DATABASE_URL`` and the config file's
``database`` key choose where every command reads and writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionbase import config
from sessionbase.errors import ConfigError
from sessionbase.store import open_store
from tests.builders.codex import Rollout
from tests.conftest import Cli


def test_the_default_is_the_data_dirs_file(tmp_path: Path) -> None:
    settings = config.load(environ={}, overrides={"data_dir": tmp_path})
    assert settings.database_url == str(tmp_path / "sessionbase.db")


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    toml = tmp_path / "sb.toml"
    toml.write_text('database = "~/from-file.db"\n')
    env = {"HOME": str(tmp_path)}
    from_file = config.load(environ=env, config_file=toml)
    assert from_file.database_url == str(Path("~/from-file.db").expanduser())
    env["SESSIONBASE_DATABASE_URL"] = "sqlite:///from/env.db"
    assert config.load(environ=env, config_file=toml).database_url == "sqlite:///from/env.db"
    flagged = config.load(environ=env, config_file=toml, overrides={"database": "/flag.db"})
    assert flagged.database_url == "/flag.db"


def test_every_command_uses_the_database_given(
    codex_home: Path, run_cli: Cli, tmp_path: Path
) -> None:
    Rollout(cwd="/home/dev/app").user("find me").assistant("found").write(codex_home)
    elsewhere = tmp_path / "elsewhere" / "mirror.db"
    run_cli("--database", str(elsewhere), "backfill")
    assert elsewhere.exists()
    assert not run_cli.settings.database_path.exists()
    listed = run_cli.json("--database", f"sqlite://{elsewhere}", "threads")
    assert [t["title"] for t in listed] == ["find me"]
    status = run_cli.json("--database", str(elsewhere), "status")
    assert status["database"] == str(elsewhere)


def test_a_database_url_it_cannot_use_is_one_line(run_cli: Cli) -> None:
    output = run_cli("--database", "mysql://db/x", "threads", ok=False)
    assert "unsupported database URL" in output
    assert "Traceback" not in output
    with pytest.raises(ConfigError):
        open_store("mysql://db/x")
