"""The doctor command: check a data dir, and with --repair rebuild what can be rebuilt."""

from __future__ import annotations

import asyncio

import click

from sessionbase import doctor as checkup
from sessionbase.cli._group import cli
from sessionbase.cli._output import console_err, emit_json, fail
from sessionbase.cli.mirror import BarProgress, embed_bar
from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError


@cli.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild what is broken: set a damaged database aside (it is kept) and rebuild the"
    " mirror from the rollouts with your user decisions, rewrite the user-decisions file,"
    " set damaged vectors aside and embed again. Not while serve runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@click.pass_obj
def doctor(settings: Settings, repair: bool, as_json: bool) -> None:
    """Check the data dir: database, rollouts, user decisions, vectors and semantic index.

    Says what is wrong and what to run; exits 1 while a problem remains. The database
    check reads every page (seconds per gigabyte). With --repair it mends what it found,
    with a progress bar on the rebuild, then checks again. The rollouts are never touched,
    and nothing is deleted: what is set aside is renamed NAME.damaged-TIME.
    """
    drawn = not as_json and console_err().is_terminal
    try:
        report = _examine(settings, drawn)
        done: list[str] = []
        before = report
        if repair and report.repairs:
            done = asyncio.run(
                checkup.repair(
                    settings,
                    report,
                    BarProgress() if drawn else None,
                    embed_bar() if drawn else None,
                )
            )
            report = _examine(settings, drawn)
    except SessionbaseError as exc:
        raise fail(exc) from exc
    if as_json:
        document = report.to_json()
        if repair:
            document |= {"repaired": done, "before": before.to_json()["findings"]}
        emit_json(document)
    else:
        for line in done:
            click.echo(f"repaired: {line}")
        for line in checkup.describe(report):
            click.echo(line)
        if repair and not done:
            click.echo("nothing to repair")
    if not report.ok:
        raise SystemExit(1)


def _examine(settings: Settings, drawn: bool) -> checkup.Report:
    if not drawn:
        return asyncio.run(checkup.examine(settings))
    with console_err().status("checking every page of the database…"):
        return asyncio.run(checkup.examine(settings))
