"""Small typed queries over parsed rollout lines (``{"timestamp", "ordinal", "type", "payload"}``).

Why: tests that check raw rollout files keep asking the same questions (which items completed,
which user prompts were recorded, which tool outputs belong to a call); these helpers keep
those assertions short and tolerant of unknown line types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

Line = dict[str, Any]

__all__ = [
    "Line",
    "completed_items",
    "event_msgs",
    "genuine_user_texts",
    "line_kinds",
    "response_items",
    "tool_output",
]


def _payload(line: Line) -> dict[str, Any]:
    payload = line.get("payload")
    return payload if isinstance(payload, dict) else {}


def line_kinds(lines: Sequence[Line]) -> Counter[str]:
    """Count ``type`` or ``type/payload.type`` (e.g. ``event_msg/token_count``) per line."""
    kinds: Counter[str] = Counter()
    for line in lines:
        ptype = _payload(line).get("type")
        kinds[
            f"{line.get('type')}/{ptype}" if isinstance(ptype, str) else str(line.get("type"))
        ] += 1
    return kinds


def event_msgs(lines: Sequence[Line], event_type: str | None = None) -> list[dict[str, Any]]:
    """Payloads of ``event_msg`` lines, optionally only those of ``event_type``."""
    return [
        _payload(line)
        for line in lines
        if line.get("type") == "event_msg"
        and (event_type is None or _payload(line).get("type") == event_type)
    ]


def completed_items(lines: Sequence[Line], item_type: str | None = None) -> list[dict[str, Any]]:
    """``item`` of every ``event_msg``/``item_completed`` (``UserMessage``, ``AgentMessage``,
    ``Reasoning``, ``CommandExecution``, ``FileChange``, ...), optionally of one type."""
    items = [p.get("item") for p in event_msgs(lines, "item_completed")]
    return [
        item
        for item in items
        if isinstance(item, dict) and (item_type is None or item.get("type") == item_type)
    ]


def response_items(lines: Sequence[Line], item_type: str | None = None) -> list[dict[str, Any]]:
    """Payloads of ``response_item`` lines (``message``, ``function_call``, ...)."""
    return [
        _payload(line)
        for line in lines
        if line.get("type") == "response_item"
        and (item_type is None or _payload(line).get("type") == item_type)
    ]


def genuine_user_texts(lines: Sequence[Line]) -> list[str]:
    """Texts of user ``message`` response items typed by the user (content kind ``user.text``),
    excluding injected context such as ``<environment_context>``."""
    texts: list[str] = []
    for item in response_items(lines, "message"):
        if item.get("role") != "user":
            continue
        meta = item.get("internal_chat_message_metadata_passthrough") or {}
        kinds = meta.get("content_item_kinds") or []
        for index, part in enumerate(item.get("content") or []):
            kind = kinds[index] if index < len(kinds) else None
            if kind == "user.text" and isinstance(part, dict):
                texts.append(str(part.get("text")))
    return texts


def tool_output(lines: Sequence[Line], call_id: str) -> Any:
    """``output`` of the ``function_call_output`` / ``custom_tool_call_output`` for a call."""
    for item in response_items(lines):
        if (
            item.get("type") in ("function_call_output", "custom_tool_call_output")
            and item.get("call_id") == call_id
        ):
            return item.get("output")
    return None
