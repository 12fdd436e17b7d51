"""The rows ingest produces: what the normalizer emits and the store commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

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
