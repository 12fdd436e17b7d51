"""Commands that fill and follow the mirror: backfill, serve, status."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sessionbase.cli._group import cli
from sessionbase.cli._output import (
    console_err,
    console_out,
    emit_json,
    fail,
    local_if_unreachable,
    open_reader,
)
from sessionbase.codex.paths import no_rollouts_hint
from sessionbase.config import Settings
from sessionbase.errors import ConfigError, SessionbaseError
from sessionbase.ingest.lock import claimed_state, published_state
from sessionbase.ingest.mirror import backfill as run_backfill, check_homes, survey
from sessionbase.ingest.tailer import FileReport
from sessionbase.store import Store, backend_name, is_postgres, shown
from sessionbase.store.base import SourceStatus
from sessionbase.wording import counted

if TYPE_CHECKING:
    from rich.progress import TaskID

log = logging.getLogger("sessionbase")


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
            console=console_err(),
        )
        self._task = self._bar.add_task("backfill", total=1)
        self._files = 0
        self._total_files = 0
        self._unshown = 0

    def start(self, files: int, total_bytes: int) -> None:
        self._total_files = files
        if files == 0:
            return  # nothing new to read: no bar of 0 out of 0
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
    (default: one per CPU, at most 4; none on a single CPU). Each new rollout over 16 MB is
    parsed by one more process while its rows are committed (none if that setting is 0).
    """
    bars = not as_json and console_err().is_terminal
    settings = local_if_unreachable(settings)
    try:
        report = asyncio.run(run_backfill(settings, BarProgress() if bars else None))
        embedded = refined = unrefined = 0
        if not no_embed:
            from sessionbase import search  # the embedding model's libraries load slowly

            embedded, refined, unrefined = asyncio.run(
                search.index(settings, embed_bar() if bars else None)
            )
    except SessionbaseError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(
            {
                **report.to_json(),
                "units_embedded": embedded,
                "units_refined": refined,
                "units_to_refine": unrefined,
            }
        )
    else:
        click.echo(report.summary())
        if not no_embed:
            click.echo(f"embedded {embedded} new units for semantic search")
            if refined or unrefined:
                click.echo(
                    f"refined {refined} with MiniLM, newest first"
                    + (f"; {unrefined} to go (serve refines them)" if unrefined else "")
                )
        if report.files_seen == 0:
            click.echo(no_rollouts_hint(settings.codex_homes))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.pass_obj
def push(settings: Settings, as_json: bool) -> None:
    """Bring the shared database (--database postgresql://…) up to date with this machine.

    For a machine that worked on its local mirror while the database was away: ingests this
    machine's Codex homes into the database from where it stands (nothing twice, nothing
    duplicated), then carries over the renames, pins, archive flags and projects made in the
    local mirror meanwhile, the newer one winning where both have one.
    """
    from sessionbase.ingest.push import push as run_push

    try:
        report = asyncio.run(run_push(settings))
    except SessionbaseError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(report.to_json())
    else:
        click.echo(report.summary())


def embed_bar() -> Callable[[int, int], None]:
    """Progress of embedding, drawn once there is something to embed: its total is known from
    the first call on, so the bar never shows a count out of nothing."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]embedding"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,.0f} units"),
        TimeRemainingColumn(),
        console=console_err(),
        transient=True,
    )
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if total <= 0:
            return
        if not task:
            task.append(bar.add_task("embed", total=total))
            bar.start()
        bar.update(task[0], completed=done, total=total)
        if done >= total:
            bar.stop()

    return update


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on: 0.0.0.0 (or ::) for every interface, or one LAN or Tailscale"
    " address. Beyond loopback, every request from another machine needs a device token.",
)
@click.option("--port", default=7788, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-ingest", is_flag=True, help="Serve the database without following files.")
@click.option(
    "--require-auth",
    is_flag=True,
    default=None,
    help="Make requests from this machine present a device token too (config require_auth).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve HTTPS and WSS with this certificate (PEM, with its chain); needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The certificate's private key (PEM).",
)
@click.pass_obj
def serve(
    settings: Settings,
    host: str,
    port: int,
    no_ingest: bool,
    require_auth: bool | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Import everything, follow Codex live, and serve it to clients until interrupted.

    \b
    Listens on http://127.0.0.1:7788 by default:
      ws  /api/<version>/sync        Convex sync protocol (official Convex clients work)
      POST /api/query|mutation       Convex HTTP API
      /v1/query/<fn>, /openapi.json  plain JSON for scripts
      POST /auth/pair, /auth/token   pairing a device, and its tokens
      /healthz, /readyz, /version    health

    Requests from this machine (loopback, not relayed by a proxy) are yours; any other
    request needs a token of a paired device (sessionbase pair), as do local ones with
    --require-auth. Files Codex appends to are picked up within milliseconds (inotify), with
    a cheap rescan every `rescan_interval` seconds as a safety net. It logs the data dir and
    Codex homes it uses; -v also logs each request. A path that cannot be read is skipped
    and logged once; if ingest as a whole stops (the database refusing writes, say), /readyz
    answers 503 with the reason and serve retries after 1, 2, 4 ... 60 s.
    """
    import uvicorn

    from sessionbase.server import create_app
    from sessionbase.server.exposure import discover
    from sessionbase.server.websocket_protocol import websocket_options

    if require_auth:
        settings = settings.with_overrides(require_auth=True)
    try:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together: give both, or neither")
        if not no_ingest:
            check_homes(settings)
        listener = _listen(host, port)
        settings = local_if_unreachable(settings)
        bound = listener.getsockname()
        exposure = discover(
            host, int(bound[1]), tls=tls_cert is not None, require_auth=settings.require_auth,
            public_urls=settings.public_urls,
        )  # fmt: skip
        app = create_app(
            settings, ingest=not no_ingest, address=f"{host}:{port}", exposure=exposure
        )
    except SessionbaseError as exc:
        raise fail(exc) from exc
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    config = uvicorn.Config(
        app,
        log_config=None,  # uvicorn's lines in the same format as ours
        log_level=settings.log_level,
        access_log=debug,  # a line per request only when asked for (-v)
        lifespan="on",
        **websocket_options(),
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # the peer is the TCP peer: a header never says who is local
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
    try:
        config.load()  # a certificate that cannot be used is an error now, in one line
    except (OSError, ValueError) as exc:
        listener.close()
        raise fail(ConfigError(f"cannot use the TLS certificate and key: {exc}")) from exc
    homes = ", ".join(str(h) for h in settings.codex_homes)
    log.info("data dir %s", settings.data_dir)
    log.info("Codex homes %s", "(not followed: --no-ingest)" if no_ingest else homes)
    log.info(
        "listening on %s://%s:%d (Ctrl-C stops)",
        exposure.scheme,
        _url_host(bound[0]),
        bound[1],
    )
    if not exposure.loopback_only:
        log.info(
            "reachable beyond this machine: every request from elsewhere needs a device token"
            " (sessionbase pair); devices may use %s",
            ", ".join(exposure.device_urls()) or "(no address found)",
        )
    # A server holds many small long-lived objects: collect young garbage less often, and
    # keep everything imported so far out of the collector's way.
    gc.set_threshold(10_000, 50, 100)
    gc.freeze()
    # While a thread runs slow queries, the event loop and ingest wait for the interpreter
    # lock at every turn: hand it over after 1 ms instead of 5 (a client's update passes
    # through it several times).
    sys.setswitchinterval(0.001)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it has already shut down for: that is a clean exit
    if not server.started:
        raise click.ClickException("the server did not start (see the log above)")


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything starts: a port in use is a clear error,
    never a server that imports and reports ready and then exits."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror}") from None
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it a response written as head then body waits for the client's
    # delayed ACK (40 ms) on every request of a kept-alive connection.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another sessionbase serve?):"
                " stop that one, or choose another port with --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.set_inheritable(True)
    return listener


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """What is mirrored, how far behind the files it is, and what went wrong.

    Also whether live import runs (and why it stopped, if it did), and the paths under the
    Codex homes that are not mirrored: unreadable ones and unrecognized files, with why.
    """
    from sessionbase.search import semantic_index

    with open_reader(settings) as store:
        report = store.status()
        try:
            index = semantic_index(settings)
            missing = index.vectors.missing(store.unit_hashes())
            report["embedding_model"] = index.embedder.name
            report["units_embedded"] = report["units"] - len(missing)
            report["threads_to_embed"] = len(index.threads_to_index(store))
            if index.refined is not None:
                unrefined = index.refined.vectors.missing(store.unit_hashes())
                report["refining_model"] = index.refined.embedder.name
                report["units_refined"] = report["units"] - len(unrefined)
        except SessionbaseError as exc:
            report["embedding_error"] = str(exc)
        on_disk = survey(settings)
        report["lag_bytes"], report["files_new"] = _lag(store, on_disk.rollouts)
        report["replicas"] = store.replicas()
        report["ingesters"] = store.ingesters()
        paired = store.devices()
    report["database"] = shown(settings.database_url)
    report["backend"] = backend_name(settings.database_url)
    report["codex_homes"] = [str(h) for h in settings.codex_homes]
    shared = (
        claimed_state(settings.machine, report["codex_homes"], report["ingesters"],
                      report["replicas"])
        if is_postgres(settings.database_url)
        else None
    )  # fmt: skip
    report["ingest"] = published_state(settings.data_dir) or shared or {"state": "not_running"}
    report["imported"] = on_disk.imported
    report["unreadable"] = [{"path": p.path, "reason": p.reason} for p in on_disk.unreadable]
    report["unrecognized"] = [{"path": p.path, "reason": p.reason} for p in on_disk.unrecognized]
    live = sum(1 for d in paired if d["revoked_at"] is None)
    report["devices"] = {"paired": live, "revoked": len(paired) - live}
    report["exposure"] = _exposure(settings)
    if as_json:
        emit_json(report)
        return
    console_out().print(f"database     {report['database']} ({report['backend']})")
    for r in report["replicas"]:
        behind = "up to date" if r["lag"] == 0 else f"{r['lag'] / 1e9:.1f} s of commits behind"
        console_out().print(
            f"replica      {r['machine']} pid {r['pid']} {r['address'] or ''} {behind}",
            markup=False,
        )
    for i in report["ingesters"]:
        console_out().print(
            f"ingester     {i['machine']} {i['codex_home']}: {i['holder']}", markup=False
        )
    console_out().print(f"serving      {_exposure_line(report['exposure'])}", markup=False)
    console_out().print(
        f"devices      {report['devices']['paired']} paired"
        + (f", {report['devices']['revoked']} revoked" if report["devices"]["revoked"] else "")
    )
    console_out().print(f"codex homes  {', '.join(report['codex_homes'])}")
    console_out().print(f"ingest       {_ingest_line(report['ingest'])}")
    if report["imported"]:
        console_out().print(f"imported     {counted(len(report['imported']), 'file')}")
    console_out().print(
        f"files        {report['files']} "
        + " ".join(f"{k}={v}" for k, v in sorted(report["files_by_status"].items()))
    )
    console_out().print(f"threads      {report['threads']}   messages {report['messages']}")
    console_out().print(f"projects     {report['projects']}   skills {report['skills']}")
    new = report["files_new"]
    new_files = f" ({counted(new, 'new file')})" if new else ""
    console_out().print(f"lag          {report['lag_bytes']} bytes not yet ingested{new_files}")
    if "units_embedded" in report:
        console_out().print(f"semantic     {_semantic_state(report)}", markup=False)
    if report["skipped_lines"]:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(report["skipped_lines"].items()))
        console_out().print(f"skipped      {reasons}")
    if report["unknown_types"]:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(report["unknown_types"].items()))
        console_out().print(f"kept raw     {kinds}")
    for e in report["errors"]:
        console_out().print(f"[red]error[/red]        {e['path']}: {e['error']}")
    for p in report["skill_problems"]:
        console_out().print(f"[yellow]skill[/yellow]        {p['path']}: {p['reason']}")
    for p in report["unreadable"]:
        console_out().print(f"[red]unreadable[/red]   {p['path']}: {p['reason']}")
    for p in report["unrecognized"]:
        console_out().print(f"[yellow]not mirrored[/yellow] {p['path']}: {p['reason']}")
    if not on_disk.rollouts and not on_disk.imported:
        console_out().print(no_rollouts_hint(settings.codex_homes))


def _exposure(settings: Settings) -> dict[str, Any]:
    """How the running serve of this data dir is exposed (``serving: false`` when none runs)."""
    from sessionbase.server.exposure import recorded

    running = recorded(settings.data_dir)
    if running is None:
        return {"serving": False, "require_auth": settings.require_auth}
    return {"serving": True, **running.facts()}


def _exposure_line(exposure: dict[str, Any]) -> str:
    if not exposure["serving"]:
        return "not running"
    where = "loopback only" if exposure["loopback_only"] else ", ".join(exposure["urls"])
    auth = "; this machine authenticates too" if exposure["require_auth"] else ""
    tls = " (TLS)" if exposure["tls"] else ""
    return f"{exposure['listen']}{tls}: {where or 'no address found'}{auth}"


def _semantic_state(report: dict[str, Any]) -> str:
    """How far semantic search is: embedded units, and threads still to split into units
    and embed (all of them after `backfill --no-embed`), with what to run."""
    model, waiting = report["embedding_model"], report["threads_to_embed"]
    todo = (
        f"{counted(waiting, 'thread')} to embed: run `sessionbase backfill` or `sessionbase serve`"
    )
    if waiting and not report["units"]:
        return f"none embedded yet, {todo}"
    done = f"{report['units_embedded']:,}/{counted(report['units'], 'unit')} embedded ({model})"
    return f"{done}; {todo}" if waiting else done


def _ingest_line(state: dict[str, Any]) -> str:
    """The ingest state in words: who ingests, and why it stopped if it did."""
    kind = state.get("state")
    pid = state.get("pid")
    if kind == "not_running":
        return "not running (`sessionbase serve` follows Codex live)"
    if kind == "importing":
        return f"a backfill or import is running (pid {pid})"
    if kind == "stopped":
        return (
            f"[red]STOPPED[/red] (serve pid {pid}): {state.get('reason')};"
            f" retrying at {state.get('retry_at')}"
        )
    return f"{kind} (serve pid {pid}) since {state.get('since')}"


def _lag(store: Store, on_disk: list[str]) -> tuple[int, int]:
    """Bytes on disk the mirror has not read yet (past its offset in each file it tracks, and
    all of each rollout it has not seen), and how many rollouts it has not seen."""
    sources = store.sources()
    lag = 0
    for s in sources:
        if s.status != SourceStatus.OK or s.path.endswith(".zst"):
            continue
        try:
            lag += max(0, os.stat(s.path).st_size - s.offset)
        except OSError:
            continue
    tracked = {s.path for s in sources}
    new = [path for path in on_disk if path not in tracked]
    for path in new:
        try:
            lag += os.stat(path).st_size
        except OSError:
            continue
    return lag, len(new)
