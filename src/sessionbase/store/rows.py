"""The rows ingest produces: what the normalizer emits and the store commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MESSAGE_KINDS = ("message", "reason", "cmd", "patch", "tool", "search", "plan", "error")
ROLES = ("user", "assistant", "system")


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
