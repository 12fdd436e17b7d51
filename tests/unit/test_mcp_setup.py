"""Setting agents up to start `sessionbase mcp`: the printed blocks, and the one explicit
command that writes Codex's configuration (idempotent, with a copy of the file kept)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from sessionbase.cli import cli
from tests.conftest import REPO, Cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def mcp(run_cli: Cli, *args: str) -> str:
    return run_cli("mcp", *args)


def test_print_config_codex_is_the_table_codex_reads(run_cli: Cli) -> None:
    printed = tomllib.loads(mcp(run_cli, "--print-config", "codex"))
    table = printed["mcp_servers"]["sessionbase"]
    assert Path(table["command"]).is_absolute()
    data_dir = str(run_cli.settings.data_dir.resolve())
    assert table["args"][-3:] == ["mcp", "--data-dir", data_dir]
    assert table["startup_timeout_sec"] == 30
    assert set(printed) == {"mcp_servers"}


def test_print_config_claude_is_an_mcp_servers_entry(run_cli: Cli) -> None:
    server = json.loads(mcp(run_cli, "--print-config", "claude"))["mcpServers"]["sessionbase"]
    assert server["type"] == "stdio"
    assert Path(server["command"]).is_absolute()
    assert server["args"][-3:] == ["mcp", "--data-dir", str(run_cli.settings.data_dir.resolve())]


def test_a_database_url_is_passed_on(run_cli: Cli, tmp_path: Path) -> None:
    database = str(tmp_path / "elsewhere.db")
    printed = tomllib.loads(mcp(run_cli, "--print-config", "codex", "--database", database))
    assert printed["mcp_servers"]["sessionbase"]["args"][-2:] == ["--database", database]


def test_readme_shows_the_block_as_printed(run_cli: Cli) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README, flags=re.DOTALL)
    shown = [tomllib.loads(b) for b in blocks if "[mcp_servers." in b]
    assert len(shown) == 1
    printed = tomllib.loads(mcp(run_cli, "--print-config", "codex"))
    assert set(shown[0]["mcp_servers"]["sessionbase"]) == set(printed["mcp_servers"]["sessionbase"])
    assert shown[0]["mcp_servers"]["sessionbase"]["args"][0] == "mcp"


def test_install_codex_adds_the_table_once_and_keeps_a_copy(run_cli: Cli, codex_home: Path) -> None:
    config = codex_home / "config.toml"
    before = 'model = "gpt-5.5"\n\n[projects."/work/x"]\ntrust_level = "trusted"\n'
    config.write_text(before)
    said = mcp(run_cli, "--install", "codex")
    assert f"added [mcp_servers.sessionbase] to {config}" in said
    (backup,) = codex_home.glob("config.toml.bak-*")
    assert backup.read_text() == before
    after = config.read_text()
    assert after.startswith(before)
    parsed = tomllib.loads(after)
    assert parsed["model"] == "gpt-5.5"
    printed = tomllib.loads(mcp(run_cli, "--print-config", "codex"))
    assert parsed["mcp_servers"] == printed["mcp_servers"]

    again = mcp(run_cli, "--install", "codex")
    assert "already starts sessionbase mcp: nothing to change" in again
    assert config.read_text() == after
    assert len(list(codex_home.glob("config.toml.bak-*"))) == 1


def test_install_codex_creates_a_missing_config(run_cli: Cli, codex_home: Path) -> None:
    mcp(run_cli, "--install", "codex")
    config = codex_home / "config.toml"
    assert "sessionbase" in tomllib.loads(config.read_text())["mcp_servers"]
    assert not list(codex_home.glob("config.toml.bak-*"))


def test_install_codex_changes_nothing_it_should_not(run_cli: Cli, codex_home: Path) -> None:
    """A different sessionbase table is the user's, and a file Codex could not read is not
    ours to fix: both are a one-line refusal, and the file stays as it was."""
    config = codex_home / "config.toml"
    runner = CliRunner()
    for text, says in (
        ('[mcp_servers.sessionbase]\ncommand = "/opt/sb"\n', "already has an [mcp_servers"),
        ("model = \n", "cannot read"),
        ("mcp_servers = { other = { command = 'x' } }\n", "cannot update"),
    ):
        config.write_text(text)
        result = runner.invoke(cli, [*run_cli.base_args(), "mcp", "--install", "codex"])
        assert result.exit_code == 1, result.output
        assert says in result.output
        assert "nothing was changed" in result.output
        assert "Traceback" not in result.output
        assert config.read_text() == text
        assert not list(codex_home.glob("config.toml.bak-*"))
