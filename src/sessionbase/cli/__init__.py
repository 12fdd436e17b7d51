"""The command line: thin commands over the library, each with --json where it reads.

One module per group of commands: ``mirror`` (backfill, serve, status), ``imports``
(import), ``browse`` (threads, show, projects, skills), ``search`` (search, similar),
``watch``, ``agents`` (mcp), ``doctor`` and ``devices`` (pair, devices). ``_group`` holds the
global options; ``_output`` what the commands share for printing and for naming things.
"""

from __future__ import annotations

from sessionbase.cli import (  # noqa: F401  (each registers its commands)
    agents,
    browse,
    devices,
    doctor,
    imports,
    mirror,
    search,
    watch,
)
from sessionbase.cli._group import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="sessionbase")
