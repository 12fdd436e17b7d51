"""What the commands share: consoles, JSON output, tables sized to the terminal, and turning
what a user typed (an id prefix, a project's name) into ids."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.store import Store, open_store

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def console_err() -> Console:
    from rich.console import Console  # imported on first use: `serve` never draws

    return Console(stderr=True)


@functools.cache
def console_out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def emit_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def fail(exc: SessionbaseError) -> click.ClickException:
    return click.ClickException(str(exc))


def open_reader(settings: Settings) -> Store:
    try:
        return open_store(settings.database_url, readonly=True)
    except SessionbaseError as exc:
        raise fail(exc) from exc


def new_table() -> Any:
    from rich.table import Table  # imported here: only the human listings draw tables

    return Table(box=None, header_style="bold")


def listing(fixed: tuple[tuple[str, int], ...], flexible: tuple[tuple[str, int], ...]) -> Any:
    """A table whose fixed columns (dates, ids, counts) always show whole, with the flexible
    ones sharing what is left of the terminal and cut with "…". A squeezed table would clip
    ids (which `show` and `--project` need) or drop whole columns. Each flexible column is
    given as (name, length of its longest value): a short one leaves the rest to the others.
    """
    table = new_table()
    for name, width in fixed:
        table.add_column(name, no_wrap=True, min_width=width)
    padding = 2 * (len(fixed) + len(flexible))
    left = console_out().width - sum(width for _, width in fixed) - padding
    widths = share_width(left, [max(need, len(name)) for name, need in flexible])
    for (name, _), width in zip(flexible, widths, strict=True):
        table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=max(width, 4))
    return table


def share_width(width: int, needs: list[int]) -> list[int]:
    """Split ``width`` among columns: none gets more than it needs, the rest evenly."""
    out = [0] * len(needs)
    left = width
    for n, i in enumerate(sorted(range(len(needs)), key=needs.__getitem__)):
        out[i] = min(needs[i], left // (len(needs) - n))
        left -= out[i]
    return out


def path_tail(path: str, width: int) -> str:
    """A path that fits ``width``: ``~`` for the home directory, then its end, which says
    more than its start."""
    home = str(Path.home())
    if path == home or path.startswith(home + os.sep):
        path = "~" + path[len(home) :]
    return path if len(path) <= width else "…" + path[len(path) - width + 1 :]


def local_time(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else "-"


MIN_ID_PREFIX = 4
"""The shortest start of a thread id the commands take for the whole id: a shorter one would
name too many threads to be of use."""


def resolve_thread(store: Store, given: str, option: str | None = None) -> str:
    """The id of the thread a user named by its whole id or by a prefix of at least
    ``MIN_ID_PREFIX`` characters that starts exactly one thread id."""
    thread = store.thread(given)
    if thread is not None:
        return str(thread["id"])
    shown = 3
    too_short = len(given) < MIN_ID_PREFIX
    candidates = [] if too_short else store.thread_ids_starting(given, shown + 1)
    if too_short:
        message = (
            f"{given!r} is too short: give at least {MIN_ID_PREFIX} characters of the thread id"
            " (see `sessionbase threads`)"
        )
    elif len(candidates) == 1:
        return candidates[0]
    elif candidates:
        more = ", …" if len(candidates) > shown else ""
        message = (
            f"{given!r} starts several thread ids ({', '.join(candidates[:shown])}{more}):"
            " give more of it"
        )
    else:
        message = f"no thread matches {given!r} (see `sessionbase threads`)"
    if option is not None:
        raise click.BadParameter(message, param_hint=option)
    raise click.ClickException(message)


def resolve_project(store: Store, given: str | None) -> str | None:
    """The id of the project a user named by id, id prefix, name or working dir."""
    if given is None:
        return None
    projects = store.projects(include_hidden=True)
    path = os.path.abspath(os.path.expanduser(given))
    for test in (
        lambda p: p["id"] == given,
        lambda p: p["working_dir"] in (given, path),
        lambda p: p["name"].lower() == given.lower(),
        lambda p: len(given) >= 4 and p["id"].startswith(given.lower()),
    ):
        found = [p for p in projects if test(p)]
        if len(found) == 1:
            return str(found[0]["id"])
        if found:
            which = ", ".join(f"{p['id']} ({p['working_dir']})" for p in found[:5])
            raise click.BadParameter(
                f"{given!r} is several projects: {which}", param_hint="--project"
            )
    raise click.BadParameter(
        f"no project matches {given!r} (see `sessionbase projects`)", param_hint="--project"
    )
