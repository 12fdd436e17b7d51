"""The ``sessionbase`` command group: global options, settings and logging for every command."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from sessionbase import config
from sessionbase.cli._output import fail
from sessionbase.errors import SessionbaseError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the database lives (default: your user data dir). Env: SESSIONBASE_DATA_DIR.",
)
@click.option(
    "--codex-home",
    "codex_homes",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A Codex home to mirror; repeat for several (default: $CODEX_HOME or ~/.codex).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A TOML file of settings, keys named like the SESSIONBASE_* variables in lower case"
    " (README: Using it). Env: SESSIONBASE_CONFIG.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more (debug level).")
@click.version_option(package_name="sessionbase")
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: Path | None,
    codex_homes: tuple[Path, ...],
    config_file: Path | None,
    verbose: bool,
) -> None:
    """sessionbase mirrors your Codex sessions into a live, queryable database.

    It reads the rollout files Codex writes under CODEX_HOME (never writing them) and keeps
    projects, threads, messages and skills in SQLite in the data dir.

    \b
    Start here:
      sessionbase backfill          import everything once, with a progress bar
      sessionbase serve             import, then follow Codex live
      sessionbase threads           recent threads, newest first
      sessionbase show <id>         one thread and its messages

    Global options go before the command: sessionbase --data-dir D show <id>.
    """
    try:
        settings = config.load(
            environ=os.environ,
            config_file=config_file,
            overrides={"data_dir": data_dir, "codex_homes": codex_homes},
        )
    except SessionbaseError as exc:
        raise fail(exc) from exc
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    if not verbose:  # it logs each batch of file events; serve logs what it ingested
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
    ctx.obj = settings
