"""The command line: thin commands over the library, each with --json where it reads."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from sessionbase import config
from sessionbase.codex.paths import find_rollouts, no_rollouts_hint
from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.ingest.mirror import backfill as run_backfill, check_homes
from sessionbase.ingest.tailer import FileReport
from sessionbase.ingest.timestamps import iso
from sessionbase.store.base import ThreadFilter
from sessionbase.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def _err() -> Console:
    from rich.console import Console  # imported on first use: `serve` never draws

    return Console(stderr=True)


@functools.cache
def _out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _emit_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _fail(exc: SessionbaseError) -> click.ClickException:
    return click.ClickException(str(exc))


def _open_reader(settings: Settings) -> SQLiteStore:
    try:
        return SQLiteStore(settings.database_path, readonly=True)
    except SessionbaseError as exc:
        raise _fail(exc) from exc


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
        raise _fail(exc) from exc
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), 20)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    if not verbose:  # it logs each batch of file events; serve logs what it ingested
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
    ctx.obj = settings


class BarProgress:
    """Draws backfill progress: files done, megabytes, rate and time left."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=_err(),
        )
        self._task = self._bar.add_task("backfill", total=1)
        self._files = 0
        self._total_files = 0
        self._unshown = 0

    def start(self, files: int, total_bytes: int) -> None:
        self._total_files = files
        self._bar.update(self._task, total=max(total_bytes, 1), description=self._label())
        self._bar.start()

    def _label(self) -> str:
        return f"backfill {self._files}/{self._total_files} files"

    def advance(self, nbytes: int) -> None:
        # Called once per line: hand the bar a sum now and then, not millions of updates.
        self._unshown += nbytes
        if self._unshown >= 1 << 20:
            self._bar.advance(self._task, self._unshown)
            self._unshown = 0

    def file_done(self, report: FileReport) -> None:
        self._files += 1
        self._bar.update(self._task, advance=self._unshown, description=self._label())
        self._unshown = 0

    def finish(self) -> None:
        self._bar.stop()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.option("--no-embed", is_flag=True, help="Skip embeddings (semantic search waits for serve).")
@click.pass_obj
def backfill(settings: Settings, as_json: bool, no_embed: bool) -> None:
    """Import every rollout under the Codex homes once, then exit.

    Safe to run again: only new lines are read, and nothing is duplicated. When it exits,
    everything is searchable, embeddings included (unless --no-embed). Stops with an
    error if `sessionbase serve` is running on the same data dir (it already keeps up).
    A large first import parses files in SESSIONBASE_READ_WORKERS extra processes
    (default: one per CPU, at most 4; none on a single CPU).
    """
    from sessionbase import search

    bars = not as_json and _err().is_terminal
    try:
        report = asyncio.run(run_backfill(settings, BarProgress() if bars else None))
        embedded = 0
        if not no_embed:
            embedded = asyncio.run(search.index(settings, _embed_bar() if bars else None))
    except SessionbaseError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit_json({**report.to_json(), "units_embedded": embedded})
    else:
        click.echo(report.summary())
        if not no_embed:
            click.echo(f"embedded {embedded} new units for semantic search")
        if report.files_seen == 0:
            click.echo(no_rollouts_hint(settings.codex_homes))


def _embed_bar() -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]embedding"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} units"),
        TimeRemainingColumn(),
        console=_err(),
        transient=True,
    )
    task = bar.add_task("embed", total=None)

    def update(done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=max(total, 1))
        if done >= total:
            bar.stop()

    return update


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7788, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-ingest", is_flag=True, help="Serve the database without following files.")
@click.pass_obj
def serve(settings: Settings, host: str, port: int, no_ingest: bool) -> None:
    """Import everything, follow Codex live, and serve it to clients until interrupted.

    \b
    Listens on http://127.0.0.1:7788 by default:
      ws  /api/<version>/sync        Convex sync protocol (official Convex clients work)
      POST /api/query|mutation       Convex HTTP API
      /v1/query/<fn>, /openapi.json  plain JSON for scripts
      /healthz, /readyz, /version    health

    Files Codex appends to are picked up within milliseconds (inotify), with a cheap
    rescan every `rescan_interval` seconds as a safety net.
    """
    import uvicorn

    from sessionbase.server import create_app
    from sessionbase.server.auth import require_loopback

    try:
        require_loopback(host)
        if not no_ingest:
            check_homes(settings)
    except SessionbaseError as exc:
        raise _fail(exc) from exc
    config = uvicorn.Config(
        create_app(settings, ingest=not no_ingest),
        host=host,
        port=port,
        log_level=settings.log_level,
        lifespan="on",
        ws="websockets-sansio",
        ws_max_size=8 * 1024 * 1024,
        # Browsers offer permessage-deflate, and a server that accepts it compresses every
        # frame once per connection (each has its own compression state): fanning a 9 KB
        # result out to 1,000 such clients took 120 ms instead of 35. The server listens on
        # loopback, where compression saves nothing.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    # A server holds many small long-lived objects: collect young garbage less often, and
    # keep everything imported so far out of the collector's way.
    gc.set_threshold(10_000, 50, 100)
    gc.freeze()
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it has already shut down for: that is a clean exit
    if not server.started:
        raise click.ClickException("the server did not start (see the log above)")


def _table() -> Any:
    from rich.table import Table  # imported here: only the human listings draw tables

    return Table(box=None, header_style="bold")


def _listing(fixed: tuple[tuple[str, int], ...], flexible: tuple[tuple[str, int], ...]) -> Any:
    """A table whose fixed columns (dates, ids, counts) always show whole, with the flexible
    ones sharing what is left of the terminal and cut with "…". A squeezed table would clip
    ids (which `show` and `--project` need) or drop whole columns. Each flexible column is
    given as (name, length of its longest value): a short one leaves the rest to the others.
    """
    table = _table()
    for name, width in fixed:
        table.add_column(name, no_wrap=True, min_width=width)
    padding = 2 * (len(fixed) + len(flexible))
    left = _out().width - sum(width for _, width in fixed) - padding
    widths = _share(left, [max(need, len(name)) for name, need in flexible])
    for (name, _), width in zip(flexible, widths, strict=True):
        table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=max(width, 4))
    return table


def _share(width: int, needs: list[int]) -> list[int]:
    """Split ``width`` among columns: none gets more than it needs, the rest evenly."""
    out = [0] * len(needs)
    left = width
    for n, i in enumerate(sorted(range(len(needs)), key=needs.__getitem__)):
        out[i] = min(needs[i], left // (len(needs) - n))
        left -= out[i]
    return out


def _path_tail(path: str, width: int) -> str:
    """A path that fits ``width``: ``~`` for the home directory, then its end, which says
    more than its start."""
    home = str(Path.home())
    if path == home or path.startswith(home + os.sep):
        path = "~" + path[len(home) :]
    return path if len(path) <= width else "…" + path[len(path) - width + 1 :]


def _thread_json(t: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id", "title", "title_source", "source", "project_id", "machine", "originator",
        "cli_version", "model", "model_provider", "cwd", "git", "rollout_path",
        "forked_from_id", "parent_thread_id", "agent_role", "agent_nickname", "message_count",
        "snippet", "tokens", "archived",
    )  # fmt: skip
    row = {k: t.get(k) for k in keys}
    for k in ("created_at", "updated_at", "last_message_at"):
        row[k] = iso(t.get(k))
    return row


def _message_json(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "idx": m["idx"],
        "role": m["role"],
        "kind": m["kind"],
        "text": m["text"],
        "ts": iso(m["ts"]),
        "turn_id": m["turn_id"],
        "data": m["data"],
    }


def _local(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else "-"


@cli.command()
@click.option("--project", help="Only threads of this project: its id, name or working dir.")
@click.option("--source", help="Only threads from this source (cli, vscode, exec, subagent…).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of threads.")
@click.pass_obj
def threads(
    settings: Settings, project: str | None, source: str | None, limit: int, as_json: bool
) -> None:
    """Recent threads, most recently updated first."""
    store = _open_reader(settings)
    try:
        project_id = _project_id(store, project)
        rows = store.threads(ThreadFilter(project_id=project_id, source=source, limit=limit))
    finally:
        store.close()
    if as_json:
        _emit_json([_thread_json(t) for t in rows])
        return
    if not rows:
        _err().print("no threads" + (" match these filters" if project or source else " yet"))
        return
    titles = [(t["title"] or "(no message yet)")[:100] for t in rows]
    table = _listing(
        (("updated", 16), ("id", 13), ("source", 8), ("msgs", 4)),
        (("title", max(map(len, titles))),),
    )
    for t, title in zip(rows, titles, strict=True):
        table.add_row(
            _local(t["updated_at"]),
            t["id"][:13],
            t["source"] or "-",
            str(t["message_count"]),
            title,
        )
    _out().print(table)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _thread_id(store: SQLiteStore, given: str, option: str | None = None) -> str:
    """The id of the thread a user named by its id or an unambiguous prefix of it."""
    thread = store.thread(given)
    if thread is not None:
        return str(thread["id"])
    shown = 3
    candidates = store.thread_ids_starting(given, shown + 1) if len(given) >= 4 else []
    if len(candidates) > 1:
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


def _project_id(store: SQLiteStore, given: str | None) -> str | None:
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


@cli.command()
@click.argument("thread_id")
@click.option("--json", "as_json", is_flag=True, help="Print {thread, messages} as JSON.")
@click.pass_obj
def show(settings: Settings, thread_id: str, as_json: bool) -> None:
    """One thread and its messages in order (an unambiguous id prefix is enough)."""
    store = _open_reader(settings)
    try:
        thread = store.thread(_thread_id(store, thread_id))
        assert thread is not None
        messages = store.messages(thread["id"])
    finally:
        store.close()
    if as_json:
        _emit_json(
            {"thread": _thread_json(thread), "messages": [_message_json(m) for m in messages]}
        )
        return
    _out().print(f"[bold]{thread['title'] or '(untitled)'}[/bold]")
    _out().print(
        f"{thread['id']} · {thread['source']} · {thread['model'] or '?'} · "
        f"{_count(thread['message_count'], 'message')} · "
        f"{_count(thread['tokens']['total'], 'token')}"
    )
    _out().print(f"resume: codex resume {thread['id']}\n")
    for m in messages:
        _print_message(m)


def _print_message(m: dict[str, Any]) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(m["ts"] / 1000)) if m["ts"] else "--:--:--"
    label = {"message": m["role"], "reason": "thinking"}.get(m["kind"], m["kind"])
    text = m["text"]
    if m["kind"] == "cmd":
        code = m["data"].get("exit_code")
        text = f"$ {text}" + (f"   [exit {code}]" if code is not None else "")
    elif m["kind"] in ("reason",):
        text = text.strip()
    style = {"user": "bold cyan", "assistant": "green", "system": "red"}.get(m["role"], "")
    _out().print(f"[dim]{stamp}[/dim] [{style}]{label:>9}[/{style}]  ", end="")
    _out().print(text, markup=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of projects.")
@click.pass_obj
def projects(settings: Settings, as_json: bool) -> None:
    """Projects: one per repository root (or working dir outside a repository)."""
    store = _open_reader(settings)
    rows = store.projects()
    store.close()
    for p in rows:
        for k in ("created_at", "updated_at", "last_active_at"):
            p[k] = iso(p.get(k))
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        _err().print("no projects yet: they come from the threads' working directories")
        return
    names = (("name", max(len(p["name"]) for p in rows)),)
    dirs = (("working dir", max(len(p["working_dir"]) for p in rows)),)
    table = _listing((("last active", 16), ("id", 16), ("threads", 7)), names + dirs)
    dir_width = table.columns[-1].max_width
    for p in rows:
        table.add_row(
            (p["last_active_at"] or "-")[:16].replace("T", " "),
            p["id"],
            str(p["thread_count"]),
            p["name"],
            _path_tail(p["working_dir"], dir_width),
        )
    _out().print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of skills.")
@click.pass_obj
def skills(settings: Settings, as_json: bool) -> None:
    """Skills Codex can see: repo, user, system and admin SKILL.md files."""
    store = _open_reader(settings)
    rows = store.skills()
    problems = store.skill_problems()
    store.close()
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        _out().print(
            "no skills found. Codex reads SKILL.md files under <codex home>/skills,"
            " ~/.agents/skills, /etc/codex/skills, its plugins, and each project's"
            " .codex/skills and .agents/skills."
        )
    else:
        table = _table()
        for column in ("scope", "name", "description"):
            table.add_column(column, no_wrap=column != "description")
        for s in rows:
            table.add_row(s["scope"], s["name"], s["description"][:120])
        _out().print(table)
    if problems:
        _err().print(f"{len(problems)} invalid SKILL.md files: see `sessionbase status`")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """What is mirrored, how far behind the files it is, and what went wrong."""
    from sessionbase.search import semantic_index

    store = _open_reader(settings)
    report = store.status()
    try:
        index = semantic_index(settings)
        report["embedding_model"] = index.embedder.name
        report["units_embedded"] = report["units"] - len(index.vectors.missing(store.unit_hashes()))
    except SessionbaseError as exc:
        report["embedding_error"] = str(exc)
    store.close()
    report["lag_bytes"], report["files_new"], on_disk = _lag(settings.database_path, settings)
    report["database"] = str(settings.database_path)
    report["codex_homes"] = [str(h) for h in settings.codex_homes]
    if as_json:
        _emit_json(report)
        return
    _out().print(f"database     {report['database']}")
    _out().print(f"codex homes  {', '.join(report['codex_homes'])}")
    _out().print(
        f"files        {report['files']} "
        + " ".join(f"{k}={v}" for k, v in sorted(report["files_by_status"].items()))
    )
    _out().print(f"threads      {report['threads']}   messages {report['messages']}")
    _out().print(f"projects     {report['projects']}   skills {report['skills']}")
    new = report["files_new"]
    new_files = f" ({_count(new, 'new file')})" if new else ""
    _out().print(f"lag          {report['lag_bytes']} bytes not yet ingested{new_files}")
    if "units_embedded" in report:
        _out().print(
            f"semantic     {report['units_embedded']}/{report['units']} units embedded"
            f" ({report['embedding_model']})"
        )
    if report["skipped_lines"]:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(report["skipped_lines"].items()))
        _out().print(f"skipped      {reasons}")
    if report["unknown_types"]:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(report["unknown_types"].items()))
        _out().print(f"kept raw     {kinds}")
    for e in report["errors"]:
        _out().print(f"[red]error[/red]        {e['path']}: {e['error']}")
    for p in report["skill_problems"]:
        _out().print(f"[yellow]skill[/yellow]        {p['path']}: {p['reason']}")
    if on_disk == 0:
        _out().print(no_rollouts_hint(settings.codex_homes))


def _lag(store_path: Path, settings: Settings) -> tuple[int, int, int]:
    """Bytes on disk the mirror has not read yet (past its offset in each file it tracks, and
    all of each rollout it has not seen), how many rollouts it has not seen, and how many
    rollouts are on disk at all."""
    store = SQLiteStore(store_path, readonly=True)
    sources = store.sources()
    store.close()
    lag = 0
    for s in sources:
        if s.status != "ok" or s.path.endswith(".zst"):
            continue
        try:
            lag += max(0, os.stat(s.path).st_size - s.offset)
        except OSError:
            continue
    tracked = {s.path for s in sources}
    on_disk = [f.location for home in settings.codex_homes for f in find_rollouts(home)]
    new = [path for path in on_disk if path not in tracked]
    for path in new:
        try:
            lag += os.stat(path).st_size
        except OSError:
            continue
    return lag, len(new), len(on_disk)


def _when(value: str | None) -> int | None:
    """``2026-05-01``, ``2026-05-01T10:00`` or a relative ``7d`` / ``12h`` / ``30m`` → ms."""
    if value is None:
        return None
    units = {"d": 86_400_000, "h": 3_600_000, "m": 60_000}
    if value[-1:] in units and value[:-1].isdigit():
        return int(time.time() * 1000) - int(value[:-1]) * units[value[-1]]
    from sessionbase.ingest.timestamps import to_ms

    ms = to_ms(value)
    if ms is None:
        raise click.BadParameter(f"not a date, time or relative age like 7d: {value!r}")
    return ms


def _marked(snippet: str) -> str:
    """Snippet <mark> tags as terminal bold."""
    from rich.markup import escape

    return escape(snippet).replace("<mark>", "[bold yellow]").replace("</mark>", "[/bold yellow]")


@cli.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["text", "semantic", "hybrid"]), default="hybrid",
              show_default=True, help="Exact words, meaning, or both fused.")  # fmt: skip
@click.option("--project", help="Only this project: its id, name or working dir.")
@click.option("--thread", "thread_id", help="Only this thread (an unambiguous id prefix will do).")
@click.option("--role", type=click.Choice(["user", "assistant", "system"]))
@click.option("--kind", help="Only this kind: message, reason, cmd, patch, tool, search, plan…")
@click.option("--source", help="Only threads from this source (cli, vscode, exec…).")
@click.option("--since", help="Only after: 2026-05-01, 2026-05-01T10:00, or 7d / 12h ago.")
@click.option("--until", help="Only before (same forms as --since).")
@click.option("--include-subagents", is_flag=True, help="Also search sub-agent threads.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
@click.pass_obj
def search(
    settings: Settings,
    query: str,
    mode: str,
    project: str | None,
    thread_id: str | None,
    role: str | None,
    kind: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    include_subagents: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Search every message and title: exact words, identifiers, paths, and meaning.

    \b
    Examples:
      sessionbase search "flaky websocket test"
      sessionbase search src/app/cli.py --kind patch
      sessionbase search '"connection refused"' --since 7d --mode text

    Quotes make a phrase; the last word also matches as a prefix.
    """
    from sessionbase.search import hybrid, semantic_index
    from sessionbase.store.base import SearchFilter

    try:
        semantic_index(settings)  # the configured embedder answers semantic queries
    except SessionbaseError as exc:
        raise _fail(exc) from exc

    store = _open_reader(settings)
    try:
        if thread_id is not None:
            thread_id = _thread_id(store, thread_id, "--thread")
        flt = SearchFilter(
            project_id=_project_id(store, project), thread_id=thread_id, role=role, kind=kind,
            source=source, since=_when(since), until=_when(until),
            include_subagents=include_subagents,
        )  # fmt: skip
        hits = hybrid.search(store, query, mode, flt, limit)
    except SessionbaseError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    if as_json:
        _emit_json([h.to_json() for h in hits])
        return
    if not hits:
        _err().print("no matches" if query.strip() else "nothing to search for: give a word")
        return
    for h in hits:
        _out().print(
            f"[bold]{(h.thread_title or '(untitled)')[:80]}[/bold]  [dim]{_local(h.ts)} · "
            f"{h.role} {h.kind} · #{h.idx}[/dim]"
        )
        _out().print("  " + _marked(" ".join(h.snippet.split())))
        _out().print(f"  [dim]codex resume {h.thread_id}[/dim]")


@cli.command()
@click.argument("thread_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of threads.")
@click.pass_obj
def similar(settings: Settings, thread_id: str, limit: int, as_json: bool) -> None:
    """Threads like this one, by meaning (needs embeddings: run backfill or serve)."""
    from sessionbase.search import hybrid, semantic, semantic_index

    semantic_index(settings)
    store = _open_reader(settings)
    try:
        found = _thread_id(store, thread_id)
        groups = hybrid.group_by_thread(semantic.similar_threads(store, found, limit), limit)
    finally:
        store.close()
    if as_json:
        _emit_json(groups)
        return
    if not groups:
        _err().print("nothing similar yet (are embeddings built? see `sessionbase status`)")
    for g in groups:
        title = (g["title"] or "(untitled)")[:80]
        _out().print(f"[bold]{title}[/bold]  [dim]{g['score']:.3f}[/dim]")
        _out().print(f"  [dim]codex resume {g['thread_id']}[/dim]")


def _parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``'{"limit": 5}'`` or ``limit=5 source=cli``: values are JSON when they parse as JSON."""
    if len(pairs) == 1 and pairs[0].lstrip().startswith("{"):
        try:
            value = orjson.loads(pairs[0])
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise click.BadParameter("arguments must be a JSON object")
        return value
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}")
        try:
            args[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            args[key] = raw
    return args


@cli.command()
@click.argument("function")
@click.argument("args", nargs=-1)
@click.option("--url", default="http://127.0.0.1:7788", show_default=True,
              help="The running `sessionbase serve`.")  # fmt: skip
@click.option("--once", is_flag=True, help="Print the current result and exit.")
def watch(function: str, args: tuple[str, ...], url: str, once: bool) -> None:
    """Print a query's result, then every new result as it changes.

    \b
    Examples:
      sessionbase watch threads:recent limit=5
      sessionbase watch messages:tail '{"threadId": "019e…", "n": 3}'
    """
    from sessionbase.client import Client

    parsed = _parse_args(args)

    async def run() -> None:
        async with Client(url) as client:
            async for value in client.subscribe(function, parsed):
                _emit_json(value)
                if once:
                    return

    try:
        asyncio.run(run())
    except SessionbaseError as exc:
        raise _fail(exc) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from exc
    except KeyboardInterrupt:
        pass


def main() -> None:
    cli(prog_name="sessionbase")
