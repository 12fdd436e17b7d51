"""The documentation keeps up with the code: commands, settings, functions, public API."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import sessionbase
from sessionbase.cli import cli
from sessionbase.config import ENV_NAMES, ENV_PREFIX, Settings, load
from sessionbase.live.functions import registry
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_command_has_help_and_a_readme_entry() -> None:
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        assert command.help, f"`sessionbase {name}` has no help"
        assert f"sessionbase {name}" in README, f"README does not mention `sessionbase {name}`"
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output


def test_every_setting_has_help_and_is_documented() -> None:
    for f in dataclasses.fields(Settings):
        assert f.metadata.get("help"), f"setting {f.name} has no help"
        if not f.metadata.get("setting", True):
            continue  # worked out by load(), never given
        env = ENV_PREFIX + ENV_NAMES.get(f.name, f.name.upper())
        assert env in README, f"README does not document {env}"
        key = "codex_home" if f.name == "codex_homes" else f.name
        assert f"`{key}`" in README, f"README does not list the config file key {key}"


def test_readme_config_file_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README, flags=re.DOTALL)
    example = [block for block in blocks if "[mcp_servers." not in block]  # Codex's, not ours
    assert len(example) == 1
    config = tmp_path / "sessionbase.toml"
    config.write_text(example[0], encoding="utf-8")
    settings = load(environ={"HOME": str(tmp_path)}, config_file=config)
    assert settings.data_dir == Path("~/sessionbase").expanduser()
    assert settings.codex_homes == (Path("~/.codex").expanduser(), Path("/mnt/laptop/.codex"))
    assert settings.read_workers == 1


def test_every_function_is_documented() -> None:
    for fn in registry:
        assert fn.doc, f"{fn.path} has no docstring"
        assert f"`{fn.path}`" in README, f"README does not list {fn.path}"


@pytest.mark.parametrize("name", sessionbase.__all__)
def test_public_api_resolves(name: str) -> None:
    assert getattr(sessionbase, name) is not None


def test_readme_quick_start_is_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^\./scripts/\w+", quick, flags=re.MULTILINE)
    assert commands == ["./scripts/serve", "./scripts/test"]
