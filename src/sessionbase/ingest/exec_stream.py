"""``codex exec --json`` stdout captures → rows (codex-formats §3).

The stream has no user prompt and no timestamps; items arrive as ``item.started`` /
``item.updated`` / ``item.completed`` with per-process ids (``item_0``…), which join a
started command to its completion the way ``call_id`` does in rollouts.
"""

from __future__ import annotations

from typing import Any

from sessionbase.codex import items as codex_items
from sessionbase.codex.rollout import Record
from sessionbase.ingest.normalizer import Normalizer


def apply_exec_event(n: Normalizer, record: Record) -> None:
    """Apply one exec-stream event to the normalizer's thread."""
    p = record.payload
    kind = p.get("type")
    state = n.state
    if kind == "thread.started":
        thread_id = p.get("thread_id")
        if isinstance(thread_id, str) and thread_id and state.thread_id is None:
            state.thread_id = thread_id.lower()
            state.meta = {"source": "exec", "originator": "codex_exec"}
            if isinstance(p.get("timestamp"), str):
                state.meta["timestamp"] = p["timestamp"]
    elif kind == "turn.started":
        state.turn_seq += 1
        state.turn_id = f"t{state.turn_seq}"
    elif kind == "turn.completed":
        usage = p.get("usage")
        if isinstance(usage, dict):
            inp, out = usage.get("input_tokens"), usage.get("output_tokens")
            state.tokens = {
                "input": int(inp or 0),
                "cached": int(usage.get("cached_input_tokens") or 0),
                "output": int(out or 0),
                "reasoning": 0,
                "total": int(inp or 0) + int(out or 0),
            }
    elif kind == "turn.failed":
        error = p.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        n.emit(record, "system", "error", str(message or "turn failed"), {"turn_failed": True})
    elif kind == "error":
        n.emit(record, "system", "error", str(p.get("message") or "error"))
    elif kind in ("item.started", "item.updated", "item.completed"):
        item = p.get("item")
        if isinstance(item, dict):
            _item(n, record, item, done=kind == "item.completed")
    else:
        n.count_unknown(f"exec.{kind}", record)


def _item(n: Normalizer, record: Record, item: dict[str, Any], *, done: bool) -> None:
    item_id = item.get("id") if isinstance(item.get("id"), str) else None
    key = f"exec:{item_id}" if item_id else None
    known = n.state.calls.get(key) if key else None
    kind = item.get("type")
    if kind in ("agent_message", "reasoning", "error") and done:
        text = str(item.get("text") or item.get("message") or "")
        if text.strip():
            role, row_kind = {
                "agent_message": ("assistant", "message"),
                "reasoning": ("assistant", "reason"),
                "error": ("system", "error"),
            }[kind]
            n.emit(record, role, row_kind, text, item_id=item_id)
        return
    data, role, tool_kind, label = _tool_fields(item)
    if tool_kind is None:
        n.count_unknown(f"exec.item.{kind}", record)
        return
    if known is not None:
        n.patch_row(known, data)
        return
    idx = n.emit(record, role, tool_kind, label, data, item_id=item_id)
    n.remember_call(key, idx)


def _tool_fields(item: dict[str, Any]) -> tuple[dict[str, Any], str, str | None, str]:
    kind = item.get("type")
    status = item.get("status")
    if kind == "command_execution":
        output = str(item.get("aggregated_output") or "")
        data = {
            "command": item.get("command"),
            "status": status,
            "exit_code": item.get("exit_code"),
        }
        if output:
            data.update(output=codex_items.excerpt(output), output_chars=len(output))
        return data, "assistant", "cmd", str(item.get("command") or "")
    if kind == "file_change":
        changes = item.get("changes") if isinstance(item.get("changes"), list) else []
        assert isinstance(changes, list)
        files = [str(c.get("path")) for c in changes if isinstance(c, dict)]
        return {"files": files, "status": status}, "assistant", "patch", ", ".join(files)
    if kind == "mcp_tool_call":
        label = f"mcp__{item.get('server')}__{item.get('tool')}"
        return {"tool": label, "status": status}, "assistant", "tool", label
    if kind == "collab_tool_call":
        label = str(item.get("tool") or "collab")
        return {"tool": label, "status": status}, "assistant", "tool", label
    if kind == "web_search":
        query = str(item.get("query") or "")
        return {"action": "search"}, "assistant", "search", query
    if kind == "todo_list":
        steps = item.get("items") if isinstance(item.get("items"), list) else []
        assert isinstance(steps, list)
        lines = [
            f"{'[x]' if s.get('completed') else '[ ]'} {s.get('text', '')}"
            for s in steps
            if isinstance(s, dict)
        ]
        return {"plan": steps}, "assistant", "plan", "\n".join(lines)
    return {}, "assistant", None, ""
