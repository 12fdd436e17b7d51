"""``sessionbase mcp``: the Model Context Protocol server coding agents start, and its setup."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from sessionbase.cli._group import cli
from sessionbase.cli._output import console_err, fail
from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError


@cli.command()
@click.option(
    "--print-config",
    "print_for",
    type=click.Choice(["codex", "claude"]),
    help="Print the block that makes this agent start `sessionbase mcp` (codex: for"
    " ~/.codex/config.toml; claude: for .mcp.json), then exit. Nothing is written.",
)
@click.option(
    "--install",
    "install_for",
    type=click.Choice(["codex"]),
    help="Add that block to the first Codex home's config.toml (a copy of the file is kept"
    " beside it; running it again changes nothing), then exit.",
)
@click.pass_obj
def mcp(settings: Settings, print_for: str | None, install_for: str | None) -> None:
    """Serve your sessions to coding agents over MCP (stdio): tools to search past
    sessions, read one a page at a time, and list recent threads, similar threads and
    projects. Reads the data dir's database read-only, whether or not `serve` is running.

    An agent starts this command itself; set it up with --print-config or --install.

    \b
    Examples:
      sessionbase mcp --print-config codex   (then add it to ~/.codex/config.toml)
      sessionbase mcp --install codex        (or let sessionbase add it)
    """
    from sessionbase.mcp import client_config

    command = _this_command()
    if print_for == "codex":
        click.echo(client_config.codex_block(command, settings), nl=False)
        return
    if print_for == "claude":
        click.echo(client_config.claude_block(command, settings), nl=False)
        return
    if install_for == "codex":
        try:
            done = client_config.install_codex(settings.codex_homes[0], command, settings)
        except SessionbaseError as exc:
            raise fail(exc) from exc
        if not done.changed:
            click.echo(f"{done.config} already starts sessionbase mcp: nothing to change")
        else:
            kept = f" (the previous file is {done.backup})" if done.backup else ""
            click.echo(f"added [mcp_servers.sessionbase] to {done.config}{kept}")
        return
    _serve_stdio(settings)


def _serve_stdio(settings: Settings) -> None:
    import anyio

    from sessionbase.mcp.server import serve_stdio

    if sys.stdin.isatty():
        console_err().print(
            "sessionbase mcp speaks MCP on stdin and stdout, for an agent to start it; set one up"
            " with `sessionbase mcp --print-config codex`. Ctrl-C ends it."
        )
    try:
        anyio.run(serve_stdio, settings)
    except SessionbaseError as exc:
        raise fail(exc) from exc
    except KeyboardInterrupt:
        pass


def _this_command() -> list[str]:
    """How an agent should start this sessionbase: the absolute path of the command that is
    running, else the one on PATH, else this Python with ``-m sessionbase``."""
    running = Path(sys.argv[0])
    if running.name == "sessionbase" and running.is_file():
        return [os.path.abspath(running)]
    found = shutil.which("sessionbase")
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "sessionbase"]
