"""Rows that cross the store's boundary: what ingest writes, and threads and messages as
every backend returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, get_args

import orjson

MessageKind = Literal["message", "reason", "cmd", "patch", "tool", "search", "plan", "error"]
Role = Literal["user", "assistant", "system"]
MESSAGE_KINDS: tuple[str, ...] = get_args(MessageKind)
ROLES: tuple[str, ...] = get_args(Role)

MessageValues = tuple[str, int, str | None, int | None, str, str, str, str, str | None, int | None]
"""(thread_id, idx, turn_id, ts, role, kind, text, data, item_id, source_offset). Ingest hands
the store rows in this shape: plain tuples of strings and numbers cross from a reading process
several times faster than dataclasses holding nested dicts, and bind as they are."""


@dataclass(slots=True)
class MessageRow:
    """One transcript entry; ``(thread_id, idx)`` is its stable key."""

    thread_id: str
    idx: int
    role: str
    kind: str
    text: str
    ts: int | None = None
    turn_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    item_id: str | None = None
    source_offset: int | None = None

    def values(self) -> MessageValues:
        """The row as the store binds it, ``data`` already JSON."""
        return (
            self.thread_id, self.idx, self.turn_id, self.ts, self.role, self.kind, self.text,
            orjson.dumps(self.data).decode(), self.item_id, self.source_offset,
        )  # fmt: skip


@dataclass(slots=True)
class ExtraRow:
    """A line kept raw because nothing maps it yet (unknown type or payload type)."""

    thread_id: str
    source_offset: int
    type: str
    raw: str


@dataclass(slots=True)
class QuarantineRow:
    """A line that could not be used at all, kept for inspection."""

    path: str
    offset: int
    lineno: int
    reason: str
    raw: bytes


class ThreadFields(TypedDict, total=False):
    """A thread as one rollout defines it (ingest writes it; the title is the automatic one,
    user decisions are applied by the store). Tokens may still be empty."""

    id: str
    project_id: str | None
    machine: str
    source: str | None
    source_detail: dict[str, Any] | None
    originator: str | None
    cli_version: str | None
    model: str | None
    model_provider: str | None
    cwd: str | None
    git: dict[str, Any] | None
    name_event: str | None
    title_auto: str | None
    rollout_path: str
    forked_from_id: str | None
    parent_thread_id: str | None
    agent_role: str | None
    agent_nickname: str | None
    created_at: int | None
    updated_at: int | None
    message_count: int
    last_message_at: int | None
    snippet: str | None
    tokens: dict[str, int]
    archived: int


class TokenCounts(TypedDict):
    """A thread's token usage: the last cumulative total Codex reported."""

    input: int
    cached: int
    output: int
    reasoning: int
    total: int


TitleSource = Literal["user", "index", "event", "message"]
"""Where a thread's effective title comes from: a rename, session_index.jsonl, the rollout's
own name event, or the first real user message."""


class ThreadRow(TypedDict):
    """A thread as the store returns it: the rollout's facts with user decisions applied."""

    id: str
    project_id: str | None
    machine: str | None
    source: str | None
    source_detail: dict[str, Any] | None
    originator: str | None
    cli_version: str | None
    model: str | None
    model_provider: str | None
    cwd: str | None
    git: dict[str, Any] | None
    title: str | None
    title_source: TitleSource | None
    title_auto: str | None
    name_event: str | None
    rollout_path: str | None
    forked_from_id: str | None
    parent_thread_id: str | None
    agent_role: str | None
    agent_nickname: str | None
    created_at: int | None
    updated_at: int | None
    message_count: int
    last_message_at: int | None
    snippet: str | None
    tokens: TokenCounts
    archived: bool
    pinned: bool


class StoredMessage(TypedDict):
    """One transcript entry as the store returns it, ``data`` decoded."""

    idx: int
    turn_id: str | None
    ts: int | None
    role: Role
    kind: MessageKind
    text: str
    data: dict[str, Any]
    item_id: str | None
    source_offset: int | None
