"""The MCP tools: what each takes (a JSON schema written for a model), does and answers.

Every tool reads through the same query functions the live server runs (``live.functions``)
or the store reads beneath them, never a query of its own, and answers in compact text under
a size cap the caller can see and change (``max_chars``). Tools are plain functions of a
``Store`` and validated arguments, so they run (and are measured) without the MCP SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sessionbase.errors import FunctionError
from sessionbase.ingest.timestamps import moment_ms
from sessionbase.live import names
from sessionbase.live.context import QueryContext
from sessionbase.live.functions import registry
from sessionbase.mcp import render
from sessionbase.store import Store
from sessionbase.store.rows import MessageKind
from sessionbase.wording import counted

SCAN_BATCH = 200
MAX_SCAN = 5000
"""Transcript rows one read_thread call looks through for the kinds asked for."""


def _whole_float(value: Any) -> Any:
    """``10.0`` is 10: some clients send every JSON number as a float."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole_float)]


class ToolInputError(FunctionError):
    """Arguments a tool refuses; the message names each problem."""


class ToolArgs(BaseModel):
    """Base of every tool's arguments: nothing unexpected, nothing coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def _cap(default: int, most: int) -> Any:
    return Field(
        default=default,
        ge=2000,
        le=most,
        description="Most characters this result may take (it says what was left out and how"
        f" to get it). Default {default}.",
    )


Thread = Field(
    min_length=1,
    max_length=200,
    description="The thread's id, or at least its first 4 characters (search_sessions and"
    " recent_threads give ids).",
)
Project = Field(
    default=None,
    min_length=1,
    max_length=4096,
    description="Only this project: its name, id or working directory (list_projects shows them).",
)


class SearchArgs(ToolArgs):
    query: str = Field(
        min_length=1,
        max_length=2000,
        description="Words, identifiers, file paths, an error message, or a question in plain"
        ' words. "Quotes" make an exact phrase.',
    )
    mode: Literal["hybrid", "text", "semantic"] = Field(
        default="hybrid",
        description="hybrid (default): exact words and meaning together. text: exact words only"
        " (best for identifiers, paths, error messages). semantic: meaning only.",
    )
    project: str | None = Project
    since: str | None = Field(
        default=None,
        max_length=40,
        description="Only messages from this moment on: a date (2026-05-01), a UTC time"
        " (2026-05-01T10:00) or an age (7d, 12h, 30m).",
    )
    kind: MessageKind | None = Field(
        default=None,
        description="Only items of this kind: message (what the user or assistant said),"
        " reason (reasoning summaries), cmd (shell commands), patch (file edits), tool (other"
        " tool calls), search (web searches), plan, error.",
    )
    limit: Whole = Field(default=10, ge=1, le=50, description="Most hits to return (1-50).")
    max_chars: Whole = _cap(8000, 50_000)


class ReadArgs(ToolArgs):
    thread: str = Thread
    start: Whole = Field(
        default=0,
        ge=0,
        alias="from",
        description="Position (#) of the first item to show: 0 for the start, a search hit's"
        " position to read around it, or the `from` the previous page ended with.",
    )
    limit: Whole = Field(default=50, ge=1, le=500, description="Most items to show (1-500).")
    kinds: list[MessageKind] | None = Field(
        default=None,
        min_length=1,
        description='Only items of these kinds, e.g. ["message"] for the conversation alone.'
        " Kinds: message, reason, cmd, patch, tool, search, plan, error. Default: all.",
    )
    tool_output_chars: Whole = Field(
        default=300,
        ge=0,
        le=20_000,
        description="How much of each command's or tool's output to show: its last characters,"
        " where errors are (a patch shows its first). 0 folds outputs away. Default 300.",
    )
    max_chars: Whole = _cap(16_000, 100_000)


class RecentArgs(ToolArgs):
    project: str | None = Project
    limit: Whole = Field(default=20, ge=1, le=100, description="Most threads to list (1-100).")
    max_chars: Whole = _cap(8000, 50_000)


class SimilarArgs(ToolArgs):
    thread: str = Thread
    limit: Whole = Field(default=10, ge=1, le=30, description="Most threads to list (1-30).")
    max_chars: Whole = _cap(8000, 50_000)


class ProjectsArgs(ToolArgs):
    max_chars: Whole = _cap(8000, 50_000)


@dataclass(frozen=True)
class Tool:
    """One tool: its name, what a model is told about it, its arguments and its body."""

    name: str
    title: str
    description: str
    args: type[ToolArgs]
    run: Callable[[Store, Any], str]

    def input_schema(self) -> dict[str, Any]:
        """The arguments' JSON schema, plain enough for every client: no titles, and an
        optional argument shown with its own type rather than ``anyOf [type, null]``."""
        schema: dict[str, Any] = _plain(self.args.model_json_schema(by_alias=True))
        schema["additionalProperties"] = False
        return schema

    def parse(self, raw: dict[str, Any] | None) -> Any:
        """Validated arguments; ToolInputError naming every problem otherwise."""
        try:
            return self.args.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(_problem(err) for err in exc.errors())
            raise ToolInputError(f"invalid arguments for {self.name}: {problems}") from None


def _plain(node: Any) -> Any:
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and len(options) == 2:
        (kept,) = (o for o in options if o != {"type": "null"})
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **kept}
        if node.get("default", ...) is None:
            del node["default"]
    return {k: _plain(v) for k, v in node.items() if k != "title"}


def _problem(err: Any) -> str:
    where = ".".join(str(part) for part in err["loc"]) or "arguments"
    given = "" if err["type"] == "missing" else f" (got {render.one_line(repr(err['input']), 40)})"
    return f"{where}: {err['msg']}{given}"


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
            f'No hits for "{args.query}" ({args.mode}). Try other words, mode="semantic" for'
            " meaning, or fewer filters."
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
    for row in _rows_from(store, thread_id, args.start):
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


def _rows_from(store: Store, thread_id: str, start: int) -> Iterator[dict[str, Any]]:
    """A thread's transcript rows from position ``start`` on, a batch at a time, at most
    ``MAX_SCAN`` of them (read_thread filtering by kind stops there)."""
    ctx, after, left = QueryContext(store), start - 1, MAX_SCAN
    while left > 0:
        rows = ctx.messages_page(thread_id, after, None, min(SCAN_BATCH, left))
        yield from rows
        if len(rows) < min(SCAN_BATCH, left):
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
