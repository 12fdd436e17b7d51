"""The functions clients call: queries over the mirror and mutations of user decisions.

Queries read through a ``QueryContext``, which records every table and key they read, so the
engine knows which commits can change their result. Results are snake_case here; the protocol
boundary renames keys to camelCase. Mutations only ever write ``user_metadata``: the rollout
files stay the source of truth, and user decisions survive any rebuild.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from sessionbase.errors import FunctionError
from sessionbase.live import device_functions, search_functions
from sessionbase.live.context import MutationContext, QueryContext
from sessionbase.live.registry import MAX_WHOLE, Args, Registry, Whole
from sessionbase.live.thread_pages import thread_page
from sessionbase.store.base import Entity, ThreadFilter
from sessionbase.store.rows import StoredMessage, ThreadRow

registry = Registry()
MAX_PAGE = 1000


# ------------------------------------------------------------------ shapes


def thread_summary(t: ThreadRow) -> dict[str, Any]:
    return {
        "id": t["id"], "title": t["title"], "title_source": t["title_source"],
        "snippet": t["snippet"], "message_count": t["message_count"],
        "last_message_at": t["last_message_at"], "created_at": t["created_at"],
        "updated_at": t["updated_at"], "source": t["source"], "project_id": t["project_id"],
        "archived": t["archived"], "pinned": t["pinned"],
        "parent_thread_id": t["parent_thread_id"], "forked_from_id": t["forked_from_id"],
        "agent_role": t["agent_role"], "agent_nickname": t["agent_nickname"],
        "model": t["model"], "cwd": t["cwd"], "machine": t["machine"],
    }  # fmt: skip


def thread_detail(t: ThreadRow) -> dict[str, Any]:
    return {
        **thread_summary(t),
        "originator": t["originator"], "cli_version": t["cli_version"],
        "model_provider": t["model_provider"], "git": t["git"],
        "rollout_path": t["rollout_path"], "tokens": t["tokens"],
        "source_detail": t["source_detail"], "resume_command": f"codex resume {t['id']}",
    }  # fmt: skip


def message_shape(thread_id: str, m: StoredMessage) -> dict[str, Any]:
    return {
        "id": f"{thread_id}:{m['idx']}",
        "thread_id": thread_id,
        "idx": m["idx"],
        "turn_id": m["turn_id"],
        "ts": m["ts"],
        "role": m["role"],
        "kind": m["kind"],
        "text": m["text"],
        "data": m["data"],
    }


# ------------------------------------------------------------------ projects


class NoArgs(Args):
    pass


class IdArgs(Args):
    id: str = Field(min_length=1, max_length=200)


@registry.query("projects:list", NoArgs, scope="read")
def projects_list(ctx: QueryContext, args: NoArgs) -> list[dict[str, Any]]:
    """All projects, most recently active first, with their thread counts."""
    return ctx.projects()


@registry.query("projects:get", IdArgs, scope="read")
def projects_get(ctx: QueryContext, args: IdArgs) -> dict[str, Any] | None:
    """One project, or null."""
    return next((p for p in ctx.projects() if p["id"] == args.id), None)


class SaveProjectArgs(Args):
    id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    working_dir: str | None = Field(default=None, max_length=4096)
    repo_url: str | None = Field(default=None, max_length=4096)


@registry.mutation("projects:save", SaveProjectArgs, scope="write")
def projects_save(ctx: MutationContext, args: SaveProjectArgs) -> str:
    """Create a project (no id) or rename / re-point one; returns its id."""
    values = {k: v for k, v in (("name", args.name), ("working_dir", args.working_dir),
                                ("repo_url", args.repo_url)) if v is not None}  # fmt: skip
    if args.id is None:
        if not args.name:
            raise FunctionError("projects:save: a new project needs a name")
        project_id = uuid.uuid4().hex[:16]
        ctx.change(Entity.PROJECT, project_id, record=values, hidden=None)
        return project_id
    known = {p["id"] for p in ctx.store.projects(include_hidden=True)}
    if args.id not in known:
        raise FunctionError(f"no project with id {args.id!r}", status=404)
    ctx.change(Entity.PROJECT, args.id, hidden=None, **values)  # saving brings a removed one back
    return args.id


@registry.mutation("projects:remove", IdArgs, scope="write")
def projects_remove(ctx: MutationContext, args: IdArgs) -> None:
    """Hide a project from lists (its threads stay); saving it again brings it back."""
    known = {p["id"] for p in ctx.store.projects(include_hidden=True)}
    if args.id not in known:
        raise FunctionError(f"no project with id {args.id!r}", status=404)
    ctx.change(Entity.PROJECT, args.id, hidden=True)


# ------------------------------------------------------------------ threads


class RecentArgs(Args):
    project_id: str | None = None
    source: str | None = None
    machine: str | None = Field(default=None, max_length=200)
    include_archived: bool = False
    include_subagents: bool = False
    limit: Whole = Field(default=50, ge=1, le=500)


@registry.query("threads:recent", RecentArgs, scope="read")
def threads_recent(ctx: QueryContext, args: RecentArgs) -> list[dict[str, Any]]:
    """Threads by last update, newest first: title, snippet, message count, source."""
    flt = ThreadFilter(
        project_id=args.project_id,
        source=args.source,
        machine=args.machine,
        include_archived=args.include_archived,
        include_subagents=args.include_subagents,
        limit=args.limit,
    )
    return [thread_summary(t) for t in ctx.threads(flt)]


@registry.query("threads:get", IdArgs, scope="read")
def threads_get(ctx: QueryContext, args: IdArgs) -> dict[str, Any] | None:
    """One thread with lineage, token usage, rollout path, the command that resumes it, and
    ``itemCount``: how many rows its transcript has (messages, reasoning, tool activity)."""
    thread = ctx.thread(args.id)
    if thread is None:
        return None
    return {**thread_detail(thread), "item_count": ctx.transcript_length(thread["id"])}


class RenameArgs(Args):
    id: str = Field(min_length=1, max_length=200)
    title: str | None = Field(default=None, max_length=500)


@registry.mutation("threads:rename", RenameArgs, scope="write")
def threads_rename(ctx: MutationContext, args: RenameArgs) -> None:
    """Set a title that wins over Codex's; an empty or null title restores Codex's."""
    ctx.require_thread(args.id)
    title = (args.title or "").strip()
    ctx.change(Entity.THREAD, args.id, title=title or None)


class FlagArgs(Args):
    id: str = Field(min_length=1, max_length=200)
    value: bool | None = None
    archived: bool | None = None
    pinned: bool | None = None


@registry.mutation("threads:setArchived", FlagArgs, scope="write")
def threads_set_archived(ctx: MutationContext, args: FlagArgs) -> None:
    """Archive or unarchive a thread in sessionbase (the rollout file is not moved)."""
    ctx.require_thread(args.id)
    flag = args.archived if args.archived is not None else args.value
    if flag is None:
        raise FunctionError("threads:setArchived needs `archived: true|false`")
    ctx.change(Entity.THREAD, args.id, archived=flag)


@registry.mutation("threads:setPinned", FlagArgs, scope="write")
def threads_set_pinned(ctx: MutationContext, args: FlagArgs) -> None:
    """Pin or unpin a thread."""
    ctx.require_thread(args.id)
    flag = args.pinned if args.pinned is not None else args.value
    if flag is None:
        raise FunctionError("threads:setPinned needs `pinned: true|false`")
    ctx.change(Entity.THREAD, args.id, pinned=flag or None)


# ------------------------------------------------------------------ messages


class PaginationOpts(Args):
    num_items: Whole = Field(ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=40)
    end_cursor: str | None = Field(default=None, max_length=40)
    id: Whole | None = None
    maximum_rows_read: Whole | None = Field(default=None, ge=0)
    maximum_bytes_read: Whole | None = Field(default=None, ge=0)


class ThreadPaginationOpts(PaginationOpts):
    cursor: str | None = Field(default=None, max_length=300)
    end_cursor: str | None = Field(default=None, max_length=300)


class ThreadListArgs(Args):
    project_id: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=200)
    machine: str | None = Field(default=None, max_length=200)
    include_archived: bool = False
    include_subagents: bool = False
    pinned: bool | None = None
    parent_id: str | None = Field(default=None, min_length=1, max_length=200)
    pagination_opts: ThreadPaginationOpts


@registry.query("threads:list", ThreadListArgs, scope="read")
def threads_list(ctx: QueryContext, args: ThreadListArgs) -> dict[str, Any]:
    """Threads newest first, a page at a time with Convex cursors (``usePaginatedQuery``
    works, and pages stay gapless as threads move: each keeps the end it first had). Top-level
    threads by default, each with ``subagentCount``; ``parentId`` lists one thread's
    sub-agents; ``pinned`` keeps only pinned (or unpinned) threads."""
    opts = args.pagination_opts
    flt = ThreadFilter(
        project_id=args.project_id,
        source=args.source,
        machine=args.machine,
        include_archived=args.include_archived,
        include_subagents=args.include_subagents,
        pinned=args.pinned,
        parent_id=args.parent_id,
    )
    result = thread_page(ctx, flt, opts.cursor, opts.end_cursor, opts.num_items)
    page = [thread_summary(t) for t in result["page"]]
    if args.parent_id is None and not args.include_subagents:
        counts = ctx.subagent_counts([t["id"] for t in page])
        for t in page:
            t["subagent_count"] = counts.get(t["id"], 0)
    return {**result, "page": page}


class ListArgs(Args):
    thread_id: str = Field(min_length=1, max_length=200)
    pagination_opts: PaginationOpts


def _cursor(value: str | None, name: str) -> int | None:
    """A cursor this function handed out: a message position, or -1 before the first."""
    if value is None:
        return None
    try:
        position = int(value)
    except ValueError:
        position = None
    if position is None or not -1 <= position <= MAX_WHOLE:
        raise FunctionError(
            f"messages:list: invalid {name} {value!r}: pass back a cursor this function returned"
        )
    return position


@registry.query("messages:list", ListArgs, scope="read")
def messages_list(ctx: QueryContext, args: ListArgs) -> dict[str, Any]:
    """A page of a thread's messages in order, with Convex cursor semantics."""
    opts = args.pagination_opts
    after = _cursor(opts.cursor, "cursor")
    until = _cursor(opts.end_cursor, "endCursor")
    start = -1 if after is None else after
    limit = MAX_PAGE * 10 if until is not None else opts.num_items
    rows = ctx.messages_page(args.thread_id, start, until, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    if until is not None:
        more = bool(ctx.messages_page(args.thread_id, until, None, 1))
        end = until
    else:
        end = rows[-1]["idx"] if rows else start
    return {
        "page": [message_shape(args.thread_id, m) for m in rows],
        "isDone": not more,
        "continueCursor": str(end),
    }


class TailArgs(Args):
    thread_id: str = Field(min_length=1, max_length=200)
    n: Whole = Field(default=50, ge=1, le=MAX_PAGE)


@registry.query("messages:tail", TailArgs, scope="read")
def messages_tail(ctx: QueryContext, args: TailArgs) -> list[dict[str, Any]]:
    """The newest n messages of a thread, oldest first."""
    return [message_shape(args.thread_id, m) for m in ctx.messages_tail(args.thread_id, args.n)]


# ------------------------------------------------------------------ skills, status


class SkillArgs(Args):
    project_id: str | None = None


@registry.query("skills:list", SkillArgs, scope="read")
def skills_list(ctx: QueryContext, args: SkillArgs) -> list[dict[str, Any]]:
    """Skills Codex can see (a project's repo skills plus user, system and admin ones)."""
    return ctx.skills(args.project_id)


@registry.query("status:get", NoArgs, scope="read")
def status_get(ctx: QueryContext, args: NoArgs) -> dict[str, Any]:
    """Ingest state for an app header: ``mirror`` (``live``, ``catching_up``, ``stopped`` or
    ``off``), ``ingest`` (why it stopped, when it retries, the paths it cannot read or does
    not recognize), ``codexHomes``, counts, files, ``lagBytes``, skipped lines, errors,
    the invalid SKILL.md files (``skillProblems``), ``exposure`` (the addresses the server
    listens on and is reached at, ``tls``, ``requireAuth``) and ``devices`` (``paired``:
    how many devices hold a live pairing, ``revoked``)."""
    paired = ctx.devices()
    live = sum(1 for d in paired if d["revoked_at"] is None)
    return {
        **ctx.status(),
        **ctx.server_facts(),
        "skill_problems": ctx.skill_problems(),
        "devices": {"paired": live, "revoked": len(paired) - live},
    }


search_functions.register(registry)
device_functions.register(registry)
