"""What to add to an agent's configuration so it starts ``sessionbase mcp``, and the one
explicit way to add it to Codex's.

Nothing here writes anywhere unless ``install_codex`` is called, which a user does by running
``sessionbase mcp --install codex``. It adds the ``[mcp_servers.sessionbase]`` table to
``config.toml`` after copying the file aside, and leaves a file that already has the same table
untouched; a different table of that name is the user's: it is reported, not replaced.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionbase.config import Settings
from sessionbase.errors import ConfigError

SERVER_NAME = "sessionbase"
STARTUP_TIMEOUT_SEC = 30
"""Codex waits 10 s for an MCP server to start by default; a cold Python start on a busy
machine can come close, so the block asks for more."""


def launch_args(settings: Settings) -> list[str]:
    """The arguments after the command: ``mcp`` with the data dir (and database) spelled out,
    since an agent starts servers with an environment of its own choosing."""
    args = ["mcp", "--data-dir", str(settings.data_dir.resolve())]
    if settings.database:
        args += ["--database", settings.database]
    return args


def codex_table(command: list[str], settings: Settings) -> dict[str, Any]:
    """The ``mcp_servers.sessionbase`` table as Codex reads it."""
    return {
        "command": command[0],
        "args": [*command[1:], *launch_args(settings)],
        "startup_timeout_sec": STARTUP_TIMEOUT_SEC,
    }


def codex_block(command: list[str], settings: Settings) -> str:
    """The TOML to add to ``~/.codex/config.toml``."""
    table = codex_table(command, settings)
    args = ", ".join(json.dumps(a) for a in table["args"])
    return (
        f"[mcp_servers.{SERVER_NAME}]\n"
        f"command = {json.dumps(table['command'])}\n"
        f"args = [{args}]\n"
        f"startup_timeout_sec = {table['startup_timeout_sec']}\n"
    )


def claude_block(command: list[str], settings: Settings) -> str:
    """The JSON for Claude Code's ``.mcp.json`` (or ``claude mcp add-json sessionbase``'s
    argument: the inner object)."""
    server = {
        "type": "stdio",
        "command": command[0],
        "args": [*command[1:], *launch_args(settings)],
    }
    return json.dumps({"mcpServers": {SERVER_NAME: server}}, indent=2) + "\n"


@dataclass(frozen=True)
class Installed:
    """What ``install_codex`` did: ``changed`` is False when the table was there already."""

    config: Path
    changed: bool
    backup: Path | None = None


def install_codex(codex_home: Path, command: list[str], settings: Settings) -> Installed:
    """Add the sessionbase table to ``<codex_home>/config.toml``, copying the file to
    ``config.toml.bak-<time>`` first. Idempotent. Raises ConfigError, changing nothing, when the
    file is not valid TOML or already has a different ``mcp_servers.sessionbase`` table."""
    config = codex_home / "config.toml"
    wanted = codex_table(command, settings)
    text = ""
    if config.exists():
        try:
            text = config.read_text(encoding="utf-8")
            present = tomllib.loads(text).get("mcp_servers", {}).get(SERVER_NAME)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {config}: {exc}; nothing was changed") from None
        if present == wanted:
            return Installed(config, changed=False)
        if present is not None:
            raise ConfigError(
                f"{config} already has an [mcp_servers.{SERVER_NAME}] table that differs from"
                " this one; nothing was changed. Edit it by hand to read:\n\n"
                + codex_block(command, settings)
            )
    joint = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
    updated = text + joint + codex_block(command, settings)
    try:
        tomllib.loads(updated)  # never leave a file Codex cannot read
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"cannot update {config}: with the table added it would not be valid TOML ({exc});"
            " nothing was changed"
        ) from None
    backup = None
    try:
        codex_home.mkdir(parents=True, exist_ok=True)
        if config.exists():
            backup = config.with_name(f"config.toml.bak-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.copy2(config, backup)
        staged = config.with_name("config.toml.sessionbase-tmp")
        staged.write_text(updated, encoding="utf-8")
        staged.replace(config)
    except OSError as exc:
        raise ConfigError(f"cannot update {config}: {exc}") from None
    return Installed(config, changed=True, backup=backup)
