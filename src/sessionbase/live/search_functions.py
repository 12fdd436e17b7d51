"""Search as live query functions: results update as matching messages arrive."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sessionbase.errors import FunctionError
from sessionbase.live.context import QueryContext
from sessionbase.live.registry import MAX_WHOLE, Args, Registry, Whole
from sessionbase.store.base import SearchFilter
from sessionbase.store.rows import MessageKind, Role

Mode = Literal["text", "semantic", "hybrid"]


class SearchArgs(Args):
    q: str = Field(max_length=10_000)
    mode: Mode = "hybrid"
    project_id: str | None = None
    thread_id: str | None = None
    role: Role | None = None
    kind: MessageKind | None = None
    source: str | None = None
    machine: str | None = Field(default=None, max_length=200)
    since: Whole | None = Field(default=None, description="ms since the epoch, inclusive")
    until: Whole | None = Field(default=None, description="ms since the epoch, exclusive")
    include_subagents: bool = False
    limit: Whole = Field(default=20, ge=1, le=100)

    def search_filter(self) -> SearchFilter:
        return SearchFilter(
            project_id=self.project_id,
            thread_id=self.thread_id,
            role=self.role,
            kind=self.kind,
            source=self.source,
            machine=self.machine,
            since=self.since,
            until=self.until,
            include_subagents=self.include_subagents,
        )


class SimilarMessageArgs(Args):
    message_id: str = Field(min_length=3, max_length=300, description="<threadId>:<idx>")
    limit: Whole = Field(default=10, ge=1, le=100)


class SimilarThreadArgs(Args):
    thread_id: str = Field(min_length=1, max_length=200)
    limit: Whole = Field(default=10, ge=1, le=100)


def register(registry: Registry) -> None:
    """Add the search functions to ``registry``."""

    @registry.query("search:messages", SearchArgs, scope="read")
    def search_messages(ctx: QueryContext, args: SearchArgs) -> list[dict[str, Any]]:
        """Messages matching q (text, semantic or hybrid), best first, with snippets."""
        from sessionbase.search import hybrid  # numpy and the model load on first use only

        hits = hybrid.search(ctx.searched(), args.q, args.mode, args.search_filter(), args.limit)
        return [h.to_json() for h in hits]

    @registry.query("search:threads", SearchArgs, scope="read")
    def search_threads(ctx: QueryContext, args: SearchArgs) -> list[dict[str, Any]]:
        """Threads matching q, best first, each with its best hits."""
        from sessionbase.search import hybrid

        hits = hybrid.search(
            ctx.searched(), args.q, args.mode, args.search_filter(), args.limit * 5
        )
        return hybrid.group_by_thread(hits, args.limit)

    @registry.query("messages:similar", SimilarMessageArgs, scope="read")
    def messages_similar(ctx: QueryContext, args: SimilarMessageArgs) -> list[dict[str, Any]]:
        """Messages nearest in meaning to one message (``<threadId>:<idx>``)."""
        from sessionbase.search import semantic

        thread_id, _, idx = args.message_id.rpartition(":")
        if not thread_id or not idx.isdigit() or int(idx) > MAX_WHOLE:
            raise FunctionError("messageId must look like <threadId>:<idx>")
        hits = semantic.similar_messages(ctx.searched(), thread_id, int(idx), args.limit)
        return [h.to_json() for h in hits]

    @registry.query("threads:similar", SimilarThreadArgs, scope="read")
    def threads_similar(ctx: QueryContext, args: SimilarThreadArgs) -> list[dict[str, Any]]:
        """Threads like this one ("find threads like this"), best first."""
        from sessionbase.search import hybrid, semantic

        hits = semantic.similar_threads(ctx.searched(), args.thread_id, args.limit)
        return hybrid.group_by_thread(hits, args.limit)
