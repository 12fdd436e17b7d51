"""Search as live query functions: results update as matching messages arrive."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sessionbase.errors import FunctionError, StoreError
from sessionbase.live.context import QueryContext
from sessionbase.live.registry import Args, Registry
from sessionbase.search import hybrid
from sessionbase.store.base import SearchFilter

Mode = Literal["text", "semantic", "hybrid"]


class SearchArgs(Args):
    q: str = Field(max_length=10_000)
    mode: Mode = "hybrid"
    project_id: str | None = None
    thread_id: str | None = None
    role: Literal["user", "assistant", "system"] | None = None
    kind: str | None = None
    source: str | None = None
    since: int | None = Field(default=None, description="ms since the epoch, inclusive")
    until: int | None = Field(default=None, description="ms since the epoch, exclusive")
    include_subagents: bool = False
    limit: int = Field(default=20, ge=1, le=100)

    def search_filter(self) -> SearchFilter:
        return SearchFilter(
            project_id=self.project_id,
            thread_id=self.thread_id,
            role=self.role,
            kind=self.kind,
            source=self.source,
            since=self.since,
            until=self.until,
            include_subagents=self.include_subagents,
        )


def register(registry: Registry) -> None:
    """Add the search functions to ``registry``."""

    @registry.query("search:messages", SearchArgs)
    def search_messages(ctx: QueryContext, args: SearchArgs) -> list[dict[str, Any]]:
        """Messages matching q (text, semantic or hybrid), best first, with snippets."""
        try:
            hits = hybrid.search(
                ctx.searched(), args.q, args.mode, args.search_filter(), args.limit
            )
        except StoreError as exc:
            raise FunctionError(f"search failed: {exc}") from None
        return [h.to_json() for h in hits]

    @registry.query("search:threads", SearchArgs)
    def search_threads(ctx: QueryContext, args: SearchArgs) -> list[dict[str, Any]]:
        """Threads matching q, best first, each with its best hits."""
        try:
            hits = hybrid.search(
                ctx.searched(), args.q, args.mode, args.search_filter(), args.limit * 5
            )
        except StoreError as exc:
            raise FunctionError(f"search failed: {exc}") from None
        return hybrid.group_by_thread(hits, args.limit)
