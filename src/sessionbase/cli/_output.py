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
from sessionbase.errors import SessionbaseError, StoreUnavailable
from sessionbase.live import names
from sessionbase.store import Store, is_postgres, open_store, shown

if TYPE_CHECKING:
    from rich.console import Console


def console_err() -> Console:
    return _console(True, os.environ.get("COLUMNS"))


def console_out() -> Console:
    return _console(False, os.environ.get("COLUMNS"))


@functools.cache
def _console(stderr: bool, columns: str | None) -> Console:
    """One console per stream, made again when COLUMNS changes: a console takes its width
    from COLUMNS once, when it is made."""
    from rich.console import Console  # imported on first use: `serve` never draws

    if stderr:
        return Console(stderr=True)
    return Console(highlight=False, soft_wrap=True)


def emit_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def fail(exc: SessionbaseError) -> click.ClickException:
    return click.ClickException(str(exc))


def open_reader(settings: Settings) -> Store:
    try:
        return open_store(settings.database_url, readonly=True)
    except StoreUnavailable as exc:
        if is_postgres(settings.database_url) and settings.database_path.exists():
            say_local(settings, exc)
            return open_reader(settings.with_overrides(database=str(settings.database_path)))
        raise fail(exc) from exc
    except SessionbaseError as exc:
        raise fail(exc) from exc


def local_if_unreachable(settings: Settings) -> Settings:
    """``settings``, or, when their PostgreSQL database does not answer, the same settings on
    the data dir's SQLite mirror (said on stderr): a machine keeps working while the shared
    database is away, and ``sessionbase push`` carries the work over once it is back."""
    if not is_postgres(settings.database_url):
        return settings
    try:
        open_store(settings.database_url, machine=settings.machine).close()
    except StoreUnavailable as exc:
        say_local(settings, exc)
        return settings.with_overrides(database=str(settings.database_path))
    except SessionbaseError as exc:
        raise fail(exc) from exc
    return settings


def say_local(settings: Settings, exc: StoreUnavailable) -> None:
    console_err().print(
        f"sessionbase: the database {shown(settings.database_url)} does not answer ({exc});"
        f" working on the local mirror {settings.database_path} instead. Run `sessionbase"
        " push` once the database is back.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


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


def short_paths(paths: list[str], width: int) -> dict[str, str]:
    """Each path as it fits ``width``: ``~`` for the home directory, then its end, which says
    more than its start. Where two different paths would then read the same, each shows the
    part where they differ too (``/srv/…/team-a/che…/payments``), so no two look alike."""
    homed = {p: _homed(p) for p in paths}
    shown = {p: _tail(h, width) for p, h in homed.items()}
    alike: dict[str, list[str]] = {}
    for path, text in shown.items():
        alike.setdefault(text, []).append(path)
    for group in (g for g in alike.values() if len(g) > 1):
        for path in group:
            others = [homed[q] for q in group if q != path]
            shown[path] = _around_difference(homed[path], others, width)
    if len(set(shown.values())) < len(shown):  # not seen in practice: show them whole
        counts: dict[str, int] = {}
        for text in shown.values():
            counts[text] = counts.get(text, 0) + 1
        shown = {p: homed[p] if counts[t] > 1 else t for p, t in shown.items()}
    return shown


def _homed(path: str) -> str:
    home = str(Path.home())
    if path == home or path.startswith(home + os.sep):
        return "~" + path[len(home) :]
    return path


def _tail(path: str, width: int) -> str:
    return path if len(path) <= width else "…" + path[len(path) - width + 1 :]


def _around_difference(path: str, others: list[str], width: int) -> str:
    """``path`` cut to ``width`` keeping its end and, between "…"s, the place where it first
    differs from the most similar of ``others`` (their ends being the same)."""
    differs = max(len(os.path.commonprefix([path, other])) for other in others)
    end = max((width - 2) // 2, 1)
    middle = width - 2 - end
    start = max(0, differs - middle // 2)
    if start == 0:
        return path[: middle + 1] + "…" + path[-end:]
    return "…" + path[start : start + middle] + "…" + path[-end:]


def local_time(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else "-"


def resolve_thread(store: Store, given: str, option: str | None = None) -> str:
    """The id of the thread a user named by its whole id or by a prefix that starts exactly
    one thread id (see ``live.names``)."""
    try:
        return names.thread_id_for(store, given)
    except names.NameNotFound as exc:
        message = str(exc) + ("" if exc.ambiguous else " (see `sessionbase threads`)")
        if option is not None:
            raise click.BadParameter(message, param_hint=option) from None
        raise click.ClickException(message) from None


def resolve_project(store: Store, given: str | None) -> str | None:
    """The id of the project a user named by id, id prefix, name or working dir."""
    if given is None:
        return None
    try:
        return names.project_id_for(store, given)
    except names.NameNotFound as exc:
        hint = "" if exc.ambiguous else " (see `sessionbase projects`)"
        raise click.BadParameter(f"{exc}{hint}", param_hint="--project") from None
