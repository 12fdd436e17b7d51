"""The ``sessionbase`` command group: global options, settings and logging for every command.

The global options (``--data-dir``, ``--database``, ``--codex-home``, ``--config``, ``-v``)
are accepted before the command and after it, as if written in one place: ``sessionbase
--data-dir D serve`` and ``sessionbase serve --data-dir D`` are the same command, so
``scripts/serve --data-dir D`` works. A single-valued option given in both places takes the
one after the command; ``--codex-home`` collects every one given. Every command of the group
gets them (through ``command_class``), so a new command cannot forget them; each finds the
loaded ``Settings`` as its context object.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from sessionbase import config
from sessionbase.cli._output import fail
from sessionbase.errors import SessionbaseError
from sessionbase.ingest import homes

_GIVEN = "sessionbase.global_options"  # ctx.meta key: the options given before the command


def _global_options() -> list[click.Option]:
    """Fresh copies of the global options (a parameter object belongs to one command)."""
    return [
        click.Option(
            ["--data-dir"],
            type=click.Path(file_okay=False, path_type=Path),
            help="Where the database lives (default: your user data dir)."
            " Env: SESSIONBASE_DATA_DIR.",
        ),
        click.Option(
            ["--database"],
            metavar="URL",
            help="The database: a file path, sqlite:///PATH or postgresql://USER@HOST/DB"
            " (default: sessionbase.db in the data dir). Env: SESSIONBASE_DATABASE_URL.",
        ),
        click.Option(
            ["--codex-home", "codex_homes"],
            multiple=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="A Codex home to mirror; repeat for several (default: $CODEX_HOME or ~/.codex).",
        ),
        click.Option(
            ["--config", "config_file"],
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="A TOML file of settings, keys named like the SESSIONBASE_* variables in lower"
            " case (README: Using it). Env: SESSIONBASE_CONFIG.",
        ),
        click.Option(["-v", "--verbose"], is_flag=True, help="Log more (debug level)."),
    ]


_NAMES = tuple(str(option.name) for option in _global_options())


class _Command(click.Command):
    """A command that also takes the global options, and loads the settings before it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_global_options())

    def invoke(self, ctx: click.Context) -> Any:
        before: dict[str, Any] = ctx.meta.get(_GIVEN, {})
        after = {name: ctx.params.pop(name) for name in _NAMES}
        ctx.obj = _load(
            data_dir=after["data_dir"] or before.get("data_dir"),
            database=after["database"] or before.get("database"),
            codex_homes=(*before.get("codex_homes", ()), *after["codex_homes"]),
            config_file=after["config_file"] or before.get("config_file"),
            verbose=after["verbose"] or before.get("verbose", False),
        )
        return super().invoke(ctx)


class _Group(click.Group):
    command_class = _Command


def _load(
    *,
    data_dir: Path | None,
    database: str | None,
    codex_homes: tuple[Path, ...],
    config_file: Path | None,
    verbose: bool,
) -> config.Settings:
    try:
        settings = config.load(
            environ=os.environ,
            config_file=config_file,
            overrides={"data_dir": data_dir, "database": database, "codex_homes": codex_homes},
        )
    except SessionbaseError as exc:
        raise fail(exc) from exc
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    if not verbose:
        # watchfiles logs each batch of file events (serve logs what it ingested); the MCP SDK
        # each session it opens and closes (requests are logged only with -v)
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        logging.getLogger("mcp").setLevel(logging.WARNING)
    settings, note = homes.settled(settings)  # no home given: those the data dir recorded
    if note:
        click.echo(note, err=True)
    return settings


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sessionbase")
@click.pass_context
def cli(ctx: click.Context, /, **given: Any) -> None:
    """sessionbase mirrors your Codex sessions into a live, queryable database.

    It reads the rollout files Codex writes under CODEX_HOME (never writing them) and keeps
    projects, threads, messages and skills in SQLite in the data dir, or in the database
    --database names (a SQLite file or PostgreSQL).

    \b
    Start here:
      sessionbase backfill          import everything once, with a progress bar
      sessionbase serve             import, then follow Codex live
      sessionbase threads           recent threads, newest first
      sessionbase show <id>         one thread and its messages

    The global options below go before or after the command (sessionbase --data-dir D
    show <id> is sessionbase show <id> --data-dir D); given in both places, the one after
    the command wins, and every --codex-home counts.
    """
    ctx.meta[_GIVEN] = given


cli.params[:0] = _global_options()
