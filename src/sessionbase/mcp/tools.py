"""The MCP tools: what each one does and answers (what it takes: ``mcp.arguments``).

Every tool reads through the same query functions the live server runs (``live.functions``)
or the store reads beneath them, never a query of its own, and answers in compact text under
a size cap the caller can see and change (``max_chars``). Tools are plain functions of a
``Store`` and validated arguments, so they run (and are measured) without the MCP SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sessionbase.ingest.timestamps import moment_ms
from sessionbase.live import names
from sessionbase.live.context import QueryContext
from sessionbase.live.functions import registry
from sessionbase.mcp import render
from sessionbase.mcp.arguments import (
    ProjectsArgs,
    ReadArgs,
    RecentArgs,
    SearchArgs,
    SimilarArgs,
    ToolArgs,
    ToolInputError,
    input_schema,
    parse,
)
from sessionbase.store import Store
from sessionbase.store.rows import StoredMessage
from sessionbase.wording import counted

SCAN_BATCH = 200
MAX_SCAN = 5000
"""Transcript rows one read_thread call looks through for the kinds asked for."""


@dataclass(frozen=True)
class Tool:
    """One tool: its name, what a model is told about it, its arguments and its body."""

    name: str
    title: str
    description: str
    args: type[ToolArgs]
    run: Callable[[Store, Any], str]

    def input_schema(self) -> dict[str, Any]:
        """The arguments' JSON schema (see ``arguments.input_schema``)."""
        return input_schema(self.args)

    def parse(self, raw: dict[str, Any] | None) -> Any:
        """Validated arguments; ToolInputError naming every problem otherwise."""
        return parse(self.args, self.name, raw)


# ------------------------------------------------------------------ shared reads


def _query(store: Store, path: str, args: dict[str, Any]) -> Any:
    """Run one of the live server's query functions, as its HTTP route would."""
    function = registry.get(path, "query")
    return function.handler(QueryContext(store), function.parse(args))


def _projects(store: Store) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in _query(store, "projects:list", {})}


def _thread_id(store: Store, given: str) -> str:
    try:
        return names.thread_id_for(store, given)
    except names.NameNotFound as exc:
        hint = "" if exc.ambiguous else " (search_sessions or recent_threads give thread ids)"
        raise ToolInputError(f"{exc}{hint}") from None


def _project_id(store: Store, given: str | None) -> str | None:
    if given is None:
        return None
    try:
        return names.project_id_for(store, given)
    except names.NameNotFound as exc:
        hint = "" if exc.ambiguous else " (list_projects shows the projects)"
        raise ToolInputError(f"{exc}{hint}") from None


def _cut_note(shown: int, total: int, what: str, max_chars: int) -> str:
    return (
        f"{total - shown} more {what} left out to stay within max_chars={max_chars}:"
        " raise max_chars or lower limit to see them."
    )


# ------------------------------------------------------------------ the tools


def search_sessions(store: Store, args: SearchArgs) -> str:
    try:
        since = None if args.since is None else moment_ms(args.since, int(time.time() * 1000))
    except ValueError as exc:
        raise ToolInputError(f"since: {exc}") from None
    query: dict[str, Any] = {"q": args.query, "mode": args.mode, "limit": args.limit}
    if args.project is not None:
        query["projectId"] = _project_id(store, args.project)
    if since is not None:
        query["since"] = since
    if args.kind is not None:
        query["kind"] = args.kind
    hits = _query(store, "search:messages", query)
    if not hits:
        return (
            f'No hits for "{render.one_line(args.query, 200)}" ({args.mode}). Try other words,'
            ' mode="semantic" for meaning, or fewer filters.'
        )
    projects = _projects(store)
    page = render.Budget(args.max_chars)
    page.add(
        f'Hits for "{render.one_line(args.query, 200)}" ({args.mode}), best first. Read around'
        " one with read_thread(thread=<id>, from=<#>).\n"
    )
    shown = 0
    for n, hit in enumerate(hits, 1):
        title = render.one_line(hit["thread_title"] or "(untitled)", 150)
        block = (
            f"{n}. thread {hit['thread_id']} #{hit['idx']}, {render.when(hit['ts'])},"
            f" {hit['role']} {hit['kind']}\n"
            f'   "{title}" · project {render.project_label(hit["project_id"], projects)}\n'
            f"   {render.snippet(hit['snippet'])}\n"
            f"   resume: {hit['resume_command']}"
        )
        if not page.add(block):
            break
        shown += 1
    footer = "" if shown == len(hits) else _cut_note(shown, len(hits), "hits", args.max_chars)
    return page.text(footer)


def read_thread(store: Store, args: ReadArgs) -> str:
    thread_id = _thread_id(store, args.thread)
    thread = _query(store, "threads:get", {"id": thread_id})
    if thread is None:  # gone since its id was found
        raise ToolInputError(f"no thread matches {args.thread!r}")
    total = thread["item_count"]
    page = render.Budget(args.max_chars)
    projects = _projects(store)
    tokens = (thread.get("tokens") or {}).get("total")
    page.add(
        f'Thread {thread_id}: "{render.one_line(thread["title"] or "(untitled)", 300)}"\n'
        f"project {render.project_label(thread['project_id'], projects)} ·"
        f" {thread['source'] or 'unknown source'} · {thread['model'] or 'unknown model'} ·"
        f" started {render.when(thread['created_at'])} · last active"
        f" {render.when(thread['updated_at'])} · {counted(total, 'item')}"
        + (f" · {tokens:,} tokens" if tokens else "")
        + f"\nresume: {thread['resume_command']}\n"
    )
    kinds = set(args.kinds) if args.kinds else None
    next_from, shown, full = args.start, 0, False
    batch = args.limit if kinds is None else SCAN_BATCH  # each row read is decoded: no more
    for row in _rows_from(store, thread_id, args.start, batch):
        if kinds is None or row["kind"] in kinds:
            if shown == args.limit:
                break
            item = render.transcript_item(row, args.tool_output_chars)
            if shown == 0 and len(item) + 1 > page.left:  # too big for any page: cut it
                item, full = render.clipped(item, page.left - 1), True
            if not page.add(item):
                full = True
                break
            shown += 1
        next_from = row["idx"] + 1
        if full:
            break
    if next_from >= total:
        if args.start >= total:
            footer = f"No items from #{args.start}: this thread has {total} (#0 to #{total - 1})."
        elif shown == 0:
            footer = f"No items of the kinds {sorted(kinds or ())} from #{args.start} on."
        else:
            footer = "End of thread."
    else:
        why = (
            f"max_chars={args.max_chars}"
            if full
            else f"limit={args.limit}"
            if shown == args.limit
            else f"{MAX_SCAN} items looked through"
        )
        footer = (
            f"More available: read_thread(thread={thread_id!r}, from={next_from}) —"
            f" {counted(total - next_from, 'item')} left (this page stopped at {why})."
        )
    return page.text(footer)


def _rows_from(store: Store, thread_id: str, start: int, batch: int) -> Iterator[StoredMessage]:
    """A thread's transcript rows from position ``start`` on, ``batch`` at a time, at most
    ``MAX_SCAN`` of them (read_thread filtering by kind stops there)."""
    ctx, after, left = QueryContext(store), start - 1, MAX_SCAN
    while left > 0:
        rows = ctx.messages_page(thread_id, after, None, min(batch, left))
        yield from rows
        if len(rows) < min(batch, left):
            return
        after, left = rows[-1]["idx"], left - len(rows)


def recent_threads(store: Store, args: RecentArgs) -> str:
    query: dict[str, Any] = {"limit": args.limit}
    if args.project is not None:
        query["projectId"] = _project_id(store, args.project)
    threads = _query(store, "threads:recent", query)
    if not threads:
        return "No threads" + (" in this project." if args.project else " yet.")
    return _thread_list(
        store,
        [
            (t, f"{render.when(t['updated_at'])}, {counted(t['message_count'], 'message')}")
            for t in threads
        ],
        "Threads, most recently active first:",
        args.max_chars,
    )


def similar_threads(store: Store, args: SimilarArgs) -> str:
    thread_id = _thread_id(store, args.thread)
    groups = _query(store, "threads:similar", {"threadId": thread_id, "limit": args.limit})
    if not groups:
        return (
            f"Nothing similar to {thread_id} yet: similarity needs embeddings, which"
            " `sessionbase serve` and `sessionbase backfill` build."
        )
    return _thread_list(
        store,
        [({**g, "id": g["thread_id"]}, f"similarity {g['score']:.2f}") for g in groups],
        f"Threads like {thread_id}, most similar first:",
        args.max_chars,
    )


def _thread_list(
    store: Store, rows: list[tuple[dict[str, Any], str]], heading: str, max_chars: int
) -> str:
    projects = _projects(store)
    page = render.Budget(max_chars)
    page.add(heading)
    shown = 0
    for thread, facts in rows:
        title = render.one_line(thread["title"] or "(untitled)", 150)
        project = render.project_label(thread["project_id"], projects)
        if not page.add(f'- {thread["id"]} · {facts} · project {project}\n  "{title}"'):
            break
        shown += 1
    footer = "" if shown == len(rows) else _cut_note(shown, len(rows), "threads", max_chars)
    return page.text(footer)


def list_projects(store: Store, args: ProjectsArgs) -> str:
    projects = _query(store, "projects:list", {})
    if not projects:
        return "No projects yet: they come from the working directories of mirrored threads."
    page = render.Budget(args.max_chars)
    page.add("Projects, most recently active first:")
    shown = 0
    for p in projects:
        line = (
            f"- {p['name']} · {p['working_dir']} · {counted(p['thread_count'], 'thread')} ·"
            f" last active {render.when(p['last_active_at'])} · id {p['id']}"
        )
        if not page.add(line):
            break
        shown += 1
    footer = (
        ""
        if shown == len(projects)
        else _cut_note(shown, len(projects), "projects", args.max_chars)
    )
    return page.text(footer)


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "search_sessions",
            "Search past coding sessions",
            "Search every past Codex session on this machine: what the user asked, what the"
            " assistant answered, the commands it ran, the files it patched and the tools it"
            " called. Use it to recall how something was done or decided before (a fix, an"
            " error message, a file path, an identifier, a design choice). Returns the"
            " best-matching items, best first: thread id, the item's position (#), time, title,"
            " project, a snippet with the matches in **bold**, and the `codex resume` command."
            " Read around a hit with read_thread(thread=<id>, from=<#>).",
            SearchArgs,
            search_sessions,
        ),
        Tool(
            "read_thread",
            "Read a past session",
            "Read one past Codex session (a thread) as a compact transcript, a page at a time:"
            " user and assistant messages in full, each command with its exit code and the end"
            " of its output, patches with the files they changed, other tool calls and their"
            " results folded. Each item starts with its position (#). When there is more, the"
            " result ends with the `from` to pass for the next page.",
            ReadArgs,
            read_thread,
        ),
        Tool(
            "recent_threads",
            "List recent sessions",
            "List the most recently active past Codex sessions (threads), newest first: id,"
            " last activity, message count, project and title.",
            RecentArgs,
            recent_threads,
        ),
        Tool(
            "similar_threads",
            "Find similar sessions",
            "Find past Codex sessions whose content is close in meaning to a given one (for"
            " example earlier attempts at the same problem), most similar first.",
            SimilarArgs,
            similar_threads,
        ),
        Tool(
            "list_projects",
            "List projects",
            "List the projects past sessions ran in (one per repository or working directory),"
            " most recently active first, with thread counts. A project's name works as the"
            " `project` argument of search_sessions and recent_threads.",
            ProjectsArgs,
            list_projects,
        ),
    )
}
