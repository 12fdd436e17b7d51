"""``sessionbase import``: mirror files saved anywhere (``codex exec --json`` captures,
copied sessions) and keep them current."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from sessionbase.cli._group import cli
from sessionbase.cli._output import emit_json
from sessionbase.config import Settings
from sessionbase.errors import IngestBusy, IngestLocked, SessionbaseError, SourceError
from sessionbase.ingest.imports import check_capture, claim_holder, register
from sessionbase.ingest.lock import published_state
from sessionbase.ingest.mirror import Mirror
from sessionbase.wording import counted


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON document.")
@click.pass_obj
def import_files(settings: Settings, files: tuple[Path, ...], as_json: bool) -> None:
    """Mirror FILES saved anywhere: `codex exec --json` captures, copied rollouts.

    Codex's own rollouts are found under the Codex homes by their names; these can have
    any name and live anywhere. Each FILE must be a Codex rollout (any generation) or a
    `codex exec --json` capture. It is recorded in the data dir and imported now; from then
    on `backfill` and `serve` keep it current as it grows. While `serve` runs on this data
    dir, it imports the files itself, at once.
    """
    refused: list[dict[str, str]] = []
    accepted: list[str] = []
    for given in files:
        path = Path(os.path.abspath(given))
        try:
            check_capture(path, settings.max_line_bytes)
        except SourceError as exc:
            refused.append({"path": str(path), "error": str(exc)})
            continue
        accepted.append(str(path))
    imported: list[dict[str, Any]] = []
    holder: dict[str, Any] | None = None  # the state of the process ingesting, if one is
    try:
        if accepted:
            register(settings.data_dir, accepted)
            try:
                with Mirror(settings) as mirror:
                    for report in mirror.ingest_files(accepted):
                        imported.append(
                            {
                                "path": report.path,
                                "status": report.status,
                                "thread_id": report.thread_id,
                                "rows": report.rows,
                                "error": report.error,
                            }
                        )
            except IngestLocked:
                holder = published_state(settings.data_dir) or {"state": "importing"}
            except IngestBusy:  # a shared database: its claim on these homes is held
                holder = claim_holder(settings)
    except (SessionbaseError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    serving = holder is not None and holder.get("state") != "importing"
    if as_json:
        serve_pid = holder.get("pid") if holder is not None and serving else None
        emit_json(
            {
                "registered": accepted,
                "imported": imported,
                "refused": refused,
                "serve_pid": serve_pid,
            }
        )
    else:
        _print(accepted, imported, refused, holder)
    if refused:
        raise SystemExit(1)


def _print(
    accepted: list[str],
    imported: list[dict[str, Any]],
    refused: list[dict[str, str]],
    holder: dict[str, Any] | None,
) -> None:
    for item in imported:
        if item["error"]:
            click.echo(f"{item['path']}: {item['status']}: {item['error']}")
        else:
            thread = item["thread_id"] or "(no thread yet)"
            click.echo(f"imported {item['path']}: thread {thread}, {counted(item['rows'], 'row')}")
    recorded = f"recorded {counted(len(accepted), 'file')} in the data dir"
    if holder is not None and holder.get("state") == "importing":
        click.echo(
            f"{recorded}; a backfill or import (pid {holder.get('pid')}) is running on it: the"
            " next `sessionbase backfill` or `serve` imports them"
        )
    elif holder is not None:
        click.echo(
            f"{recorded}; serve (pid {holder.get('pid')}) imports them now and keeps them current"
        )
    elif imported:
        click.echo("`sessionbase serve` keeps them current as they grow")
    for item in refused:
        click.echo(f"error: {item['error']}", err=True)
