"""Rollout lines → records: every format generation Codex has written, parsed leniently.

A record is the envelope shape ``(type, payload)`` whatever the generation, so the normalizer
has one vocabulary:

- envelope JSONL (2025-09 on): ``{"timestamp", "ordinal"?, "type", "payload"}`` as is;
- pre-envelope JSONL (2025-05 to 2025-09): the first line is the session metadata, then bare
  response items; ``{"record_type": "state"}`` lines carry nothing;
- TS-era ``.json`` documents: ``{"session": {...}, "items": [...]}`` read whole;
- ``codex exec --json`` streams: ``thread.started`` / ``turn.*`` / ``item.*`` events, kept under
  type ``exec`` for the normalizer's exec path.

Nothing here raises on bad input: a line that is not usable is a ``FormatError``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sessionbase.errors import FormatError


class Generation(enum.StrEnum):
    ENVELOPE = "envelope"
    LEGACY = "legacy"
    TS_JSON = "ts-json"
    EXEC_STREAM = "exec-stream"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Record:
    """One usable line: its envelope type, payload and write timestamp (may be None)."""

    type: str
    payload: dict[str, Any]
    timestamp: str | None
    offset: int


def detect_generation(path: Path | str, first: dict[str, Any] | None) -> Generation:
    """Which generation wrote this file, from its name and its first JSON object."""
    name = str(path)
    if name.endswith(".json"):
        return Generation.TS_JSON
    if first is None:
        return Generation.UNKNOWN
    kind = first.get("type")
    if "payload" in first and isinstance(kind, str):
        return Generation.ENVELOPE
    if isinstance(kind, str) and (
        kind.startswith(("thread.", "turn.", "item.")) or kind == "error"
    ):
        return Generation.EXEC_STREAM
    if "id" in first and "timestamp" in first and "type" not in first:
        return Generation.LEGACY
    if "record_type" in first or isinstance(kind, str):
        return Generation.LEGACY
    return Generation.UNKNOWN


MAX_DEPTH = 128
"""Codex's own JSON reader (serde_json) refuses deeper nesting, so no real line has it."""


class TooDeep(ValueError):
    """A line nested deeper than any Codex build can write or read."""


# Up to this size a line's brackets are counted before its nesting is measured; a longer line
# is nearly all string (a tool's output), so walking its few containers is cheaper than
# scanning every byte twice.
COUNT_BRACKETS_BELOW = 4096


def loads(raw: bytes) -> Any:
    """Decode one JSON line; raises ValueError (incl. TooDeep) on anything unusable."""
    value = orjson.loads(raw)
    may_be_deep = len(raw) >= COUNT_BRACKETS_BELOW or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    if may_be_deep and _depth(value) > MAX_DEPTH:
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in item)
    return deepest


def to_record(
    obj: Any, generation: Generation, offset: int, path: Path | str, lineno: int
) -> Record | FormatError | None:
    """Map one decoded line to a Record; None for lines that carry nothing (state markers)."""
    if not isinstance(obj, dict):
        return FormatError(path, offset, lineno, "line is JSON but not an object")
    if generation is Generation.ENVELOPE:
        kind = obj.get("type")
        payload = obj.get("payload")
        if not isinstance(kind, str):
            return FormatError(path, offset, lineno, "envelope line without a string type")
        if not isinstance(payload, dict):
            payload = {"value": payload}
        ts = obj.get("timestamp")
        return Record(kind, payload, ts if isinstance(ts, str) else None, offset)
    if generation is Generation.EXEC_STREAM:
        return Record("exec", obj, None, offset)
    if generation is Generation.LEGACY:
        if "record_type" in obj:
            return None
        if "type" not in obj and "id" in obj:
            return Record("session_meta", obj, _str(obj.get("timestamp")), offset)
        return Record("response_item", obj, None, offset)
    return FormatError(path, offset, lineno, "file format not recognized")


def ts_json_records(document: Any, path: Path | str) -> list[Record | FormatError]:
    """The records of a TS-era ``.json`` session document."""
    if not isinstance(document, dict):
        return [FormatError(path, 0, 1, "session document is not a JSON object")]
    out: list[Record | FormatError] = []
    session = document.get("session")
    if isinstance(session, dict):
        out.append(Record("session_meta", session, _str(session.get("timestamp")), 0))
    items = document.get("items")
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            out.append(Record("response_item", item, None, 0))
        else:
            out.append(FormatError(path, 0, i + 1, "session item is not a JSON object"))
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
