"""Commands that search: search (words and meaning) and similar."""

from __future__ import annotations

import time
from typing import Any

import click

from sessionbase.cli._group import cli
from sessionbase.cli._output import (
    console_err,
    console_out,
    emit_json,
    fail,
    local_time,
    open_reader,
    resolve_project,
    resolve_thread,
)
from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.ingest.timestamps import iso, moment_ms
from sessionbase.store.rows import MESSAGE_KINDS, ROLES


@cli.command()
@click.argument("query")
@click.option("--mode", type=click.Choice(["text", "semantic", "hybrid"]), default="hybrid",
              show_default=True, help="Exact words, meaning, or both fused.")  # fmt: skip
@click.option("--project", help="Only this project: its id, name or working dir.")
@click.option("--thread", "thread_id", help="Only this thread (an unambiguous id prefix will do).")
@click.option("--role", type=click.Choice(ROLES), help="Only messages of this role.")
@click.option("--kind", type=click.Choice(MESSAGE_KINDS), help="Only messages of this kind.")
@click.option("--source", help="Only threads from this source (cli, vscode, exec…).")
@click.option("--machine", help="Only threads that ran on this machine (a shared database).")
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
    machine: str | None,
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
        raise fail(exc) from exc

    with open_reader(settings) as store:
        try:
            if thread_id is not None:
                thread_id = resolve_thread(store, thread_id, "--thread")
            flt = SearchFilter(
                project_id=resolve_project(store, project), thread_id=thread_id, role=role,
                kind=kind, source=source, machine=machine, since=_when(since), until=_when(until),
                include_subagents=include_subagents,
            )  # fmt: skip
            hits = hybrid.search(store, query, mode, flt, limit)
        except SessionbaseError as exc:
            raise fail(exc) from exc
    if as_json:
        emit_json([_hit_json(h.to_json()) for h in hits])
        return
    if not hits:
        console_err().print("no matches" if query.strip() else "nothing to search for: give a word")
        return
    from rich.text import Text  # imported here: only the human output draws

    out = console_out()
    for h in hits:
        _header(h.thread_title, f"{local_time(h.ts)} · {h.role} {h.kind} · #{h.idx}")
        snippet = Text.from_markup(_marked(" ".join(h.snippet.split())))
        for line in snippet.wrap(out, max(out.width - 2, 20)):
            line.rstrip()
            out.print("  ", line, sep="", soft_wrap=True)
        out.print(f"  [dim]codex resume {h.thread_id}[/dim]", soft_wrap=True)


@cli.command()
@click.argument("thread_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of threads.")
@click.pass_obj
def similar(settings: Settings, thread_id: str, limit: int, as_json: bool) -> None:
    """Threads like this one, by meaning (needs embeddings: run backfill or serve)."""
    from sessionbase.search import hybrid, semantic, semantic_index

    try:
        index = semantic_index(settings)
    except SessionbaseError as exc:
        raise fail(exc) from exc
    with open_reader(settings) as store:
        found = resolve_thread(store, thread_id)
        groups = hybrid.group_by_thread(semantic.similar_threads(store, found, limit), limit)
        embedded = not groups and found not in index.threads_to_index(store)
    if as_json:
        emit_json([{**g, "hits": [_hit_json(h) for h in g["hits"]]} for g in groups])
        return
    if not groups and not embedded:
        console_err().print(
            "this thread is not embedded yet: run `sessionbase backfill` (without --no-embed),"
            " or `sessionbase serve`, which embeds in the background",
            markup=False,
        )
    elif not groups:
        console_err().print("no other thread is like this one yet")
    for g in groups:
        _header(g["title"], f"{g['score']:.3f}")
        console_out().print(f"  [dim]codex resume {g['thread_id']}[/dim]", soft_wrap=True)


def _header(title: str | None, facts: str) -> None:
    """A result's title in bold, cut to leave room for its facts on the same line."""
    from rich.text import Text

    out = console_out()
    room = max(out.width - len(facts) - 2, 10)
    shown = title or "(no message yet)"
    if len(shown) > room:
        shown = shown[: room - 1] + "…"
    out.print(Text.assemble((shown, "bold"), "  ", (facts, "dim")), soft_wrap=True)


def _hit_json(hit: dict[str, Any]) -> dict[str, Any]:
    """A hit as the JSON contract has it: its time as an RFC 3339 string, like every time."""
    return {**hit, "ts": iso(hit["ts"])}


def _when(value: str | None) -> int | None:
    """``2026-05-01``, ``2026-05-01T10:00`` or a relative ``7d`` / ``12h`` / ``30m`` → ms."""
    if value is None:
        return None
    try:
        return moment_ms(value, int(time.time() * 1000))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _marked(snippet: str) -> str:
    """Snippet <mark> tags as terminal bold."""
    from rich.markup import escape

    return escape(snippet).replace("<mark>", "[bold yellow]").replace("</mark>", "[/bold yellow]")
