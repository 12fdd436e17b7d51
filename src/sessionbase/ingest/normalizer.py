"""Records → rows: one thread's transcript, built incrementally and deterministically.

Everything decided here is a pure function of the file's content read so far, and all of it
lives in ``ThreadState``, which the store commits beside the byte offset. So a file can be fed
in any number of pieces, across crashes and restarts, and always yields the same rows.

The transcript follows DESIGN §3: human messages from ``event_msg`` (or the typed
``item_completed`` items of newer builds), falling back to ``response_item`` messages; tool
activity from calls joined to their outputs by ``call_id``. The same message often arrives
twice (a ``response_item`` and an event, in either order); ``_Candidates`` pairs them by text
so it becomes one row.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from sessionbase.codex import items as codex_items
from sessionbase.codex.rollout import Record
from sessionbase.ingest.timestamps import to_ms, uuid7_ms
from sessionbase.store.rows import ExtraRow, MessageRow, ThreadFields

MAX_PENDING_CALLS = 512
MAX_CANDIDATES = 64
EXTRA_RAW_LIMIT = 64 * 1024
TITLE_LIMIT = 200
SNIPPET_LIMIT = 200
# Without UUIDv7 turn ids, a replayed parent history ends at the first pause this long.
REPLAY_GAP_MS = 1000

# Line and payload types we understand but that make no row (see codex-formats §2.2, §10).
_QUIET_LINE_TYPES = frozenset(
    {
        "turn_context",
        "compacted",
        "world_state",
        "token_usage_record",
        "security_risk_score",
        "retained_context",
        "inter_agent_communication_metadata",
    }
)
_QUIET_ITEMS = frozenset(
    {"ghost_snapshot", "compaction", "compaction_summary", "other", "tool_search_output"}
)
_QUIET_EVENTS = frozenset(
    {
        "context_compacted",
        "entered_review_mode",
        "exited_review_mode",
        "undo_completed",
        "thread_rolled_back",
        "image_generation_end",
        "thread_settings_applied",
        "guardian_assessment",
        "view_image_tool_call",
        "dynamic_tool_call_request",
        "dynamic_tool_call_response",
        "turn_diff",
        "agent_reasoning_raw_content",
        "user_message_item",
        "collab_agent_spawn_end",
        "collab_agent_interaction_end",
        "collab_waiting_end",
        "collab_close_end",
        "collab_resume_end",
    }
)


@dataclass
class ThreadState:
    """Everything the normalizer knows about a file so far; JSON-safe, committed with offsets."""

    fallback_id: str | None = None
    thread_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    next_idx: int = 0
    turn_id: str | None = None
    turn_seq: int = 0
    explicit_turns: bool = False
    name_event: str | None = None
    first_user: str | None = None
    first_answer: str | None = None
    """The first assistant message: the title of a thread without a prompt (an exec capture)."""
    tokens: dict[str, int] = field(default_factory=dict)
    token_baseline: dict[str, int] = field(default_factory=dict)
    message_count: int = 0
    last_message_at: int | None = None
    snippet: str | None = None
    first_ts: str | None = None
    last_ts: str | None = None
    calls: dict[str, int] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)
    """Calls whose output came from an end event: the model-facing tool output (often cut
    shorter) must not replace it."""
    candidates: list[list[Any]] = field(default_factory=list)
    replaying: bool = False
    replay_last_ms: int | None = None
    unknown: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # A deep copy through orjson (which encodes dataclasses natively): several times
        # cheaper than dataclasses.asdict, and this runs on every commit of every file.
        copy: dict[str, Any] = orjson.loads(orjson.dumps(self))
        return copy

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThreadState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _key(role: str, kind: str, text: str) -> str:
    digest = hashlib.blake2b(text.strip().encode("utf-8", "replace"), digest_size=8)
    return f"{role}:{kind}:{digest.hexdigest()}"


class Normalizer:
    """Feeds records of one file into rows. Call ``take()`` to collect what was produced."""

    def __init__(self, state: ThreadState) -> None:
        self.state = state
        self._rows: dict[int, MessageRow] = {}
        self._patches: list[tuple[int, dict[str, Any]]] = []
        self._extras: list[ExtraRow] = []

    # ---------------------------------------------------------------- public

    @property
    def thread_id(self) -> str | None:
        return self.state.thread_id or self.state.fallback_id

    def feed(self, record: Record) -> None:
        """Apply one record. Never raises on odd content: unknowns are counted and kept raw."""
        state = self.state
        if record.timestamp:
            if state.first_ts is None:
                state.first_ts = record.timestamp
            if state.last_ts is None or record.timestamp > state.last_ts:
                state.last_ts = record.timestamp
        if state.replaying and self._replay_ends(record):
            state.replaying = False
            state.token_baseline = dict(state.tokens)
        handler = _HANDLERS.get(record.type)
        if handler is not None:
            handler(self, record)
        elif record.type == "turn_context":
            self._turn_context(record.payload)
        elif record.type not in _QUIET_LINE_TYPES:
            self.count_unknown(record.type, record)

    def take(self) -> tuple[list[MessageRow], list[tuple[int, dict[str, Any]]], list[ExtraRow]]:
        """Rows created, data patches for rows committed earlier, and raw extras; then reset."""
        out = (list(self._rows.values()), self._patches, self._extras)
        self._rows, self._patches, self._extras = {}, [], []
        return out

    def thread_fields(self) -> ThreadFields:
        """The thread row as the file defines it (title here is the automatic one); only once
        the thread has an id."""
        state, meta = self.state, self.state.meta
        thread_id = self.thread_id
        if thread_id is None:
            raise ValueError("no thread yet: nothing in the file names one")
        tokens = _tokens_since(state.tokens, state.token_baseline)
        undated = uuid7_ms(self.thread_id)  # a file without timestamps (an exec capture)
        return {
            "id": thread_id,
            "source": meta.get("source"),
            "source_detail": meta.get("source_detail"),
            "originator": meta.get("originator"),
            "cli_version": meta.get("cli_version"),
            "model_provider": meta.get("model_provider"),
            "model": state.model,
            "cwd": meta.get("cwd"),
            "git": meta.get("git"),
            "forked_from_id": meta.get("forked_from_id"),
            "parent_thread_id": meta.get("parent_thread_id"),
            "agent_role": meta.get("agent_role"),
            "agent_nickname": meta.get("agent_nickname"),
            "name_event": state.name_event,
            "title_auto": state.first_user or state.first_answer,
            "created_at": to_ms(meta.get("timestamp")) or to_ms(state.first_ts) or undated,
            "updated_at": to_ms(state.last_ts) or to_ms(meta.get("timestamp")) or undated,
            "message_count": state.message_count,
            "last_message_at": state.last_message_at,
            "snippet": state.snippet,
            "tokens": tokens,
        }

    # ------------------------------------------------------------- emitting

    def _ts(self, record: Record) -> int | None:
        return to_ms(record.timestamp)

    def emit(
        self,
        record: Record,
        role: str,
        kind: str,
        text: str,
        data: dict[str, Any] | None = None,
        *,
        origin: str | None = None,
        item_id: str | None = None,
    ) -> int | None:
        """Create a row (or pair it with its twin from another origin). Returns its idx."""
        state = self.state
        if state.replaying or self.thread_id is None:
            return None
        key = None
        if origin is not None:
            key = _key(role, kind, text)
            twin = self._pair(key, origin)
            if twin is not None:
                if data:
                    self.patch_row(twin, {k: v for k, v in data.items() if v is not None})
                return twin
        idx = state.next_idx
        state.next_idx += 1
        if kind == "message" and role == "user" and not state.explicit_turns:
            state.turn_seq += 1
            state.turn_id = f"t{state.turn_seq}"
        ts = self._ts(record)
        row = MessageRow(
            thread_id=self.thread_id,
            idx=idx,
            role=role,
            kind=kind,
            text=text,
            ts=ts,
            turn_id=state.turn_id,
            data={k: v for k, v in (data or {}).items() if v is not None},
            item_id=item_id,
            source_offset=record.offset,
        )
        self._rows[idx] = row
        if kind == "message":
            state.message_count += 1
            state.last_message_at = ts or state.last_message_at
            state.snippet = " ".join(text.split())[:SNIPPET_LIMIT] or state.snippet
            if role == "user" and state.first_user is None:
                title = " ".join(codex_items.request_text(text).split())
                state.first_user = title[:TITLE_LIMIT] or None
            elif role == "assistant" and state.first_answer is None:
                state.first_answer = " ".join(text.split())[:TITLE_LIMIT] or None
        if key is not None:
            state.candidates.append([key, idx, [origin]])
            del state.candidates[:-MAX_CANDIDATES]
        return idx

    def _pair(self, key: str, origin: str) -> int | None:
        for candidate in self.state.candidates:
            if candidate[0] == key and origin not in candidate[2]:
                candidate[2].append(origin)
                return int(candidate[1])
        return None

    def patch_row(self, idx: int, data: dict[str, Any]) -> None:
        if not data:
            return
        row = self._rows.get(idx)
        if row is not None:
            row.data.update(data)
        else:
            self._patches.append((idx, data))

    def remember_call(self, call_id: Any, idx: int | None) -> None:
        if isinstance(call_id, str) and call_id and idx is not None:
            calls = self.state.calls
            calls[call_id] = idx
            if len(calls) > MAX_PENDING_CALLS:
                del calls[next(iter(calls))]

    def count_unknown(self, label: str, record: Record) -> None:
        self.state.unknown[label] = self.state.unknown.get(label, 0) + 1
        if self.thread_id is None:
            return
        raw = orjson.dumps({"type": record.type, "payload": record.payload}).decode()
        self._extras.append(ExtraRow(self.thread_id, record.offset, label, raw[:EXTRA_RAW_LIMIT]))

    # ------------------------------------------------------------- replays

    def _replay_ends(self, record: Record) -> bool:
        """A fork's copy of its parent's history ends where the fork's own turns begin."""
        payload = record.payload
        turn_id = payload.get("turn_id") if isinstance(payload, dict) else None
        created = to_ms(self.state.meta.get("timestamp"))
        if isinstance(turn_id, str) and created is not None:
            minted = _uuid7_ms(turn_id)
            if minted is not None:
                return minted >= created
        now = to_ms(record.timestamp)
        last = self.state.replay_last_ms
        self.state.replay_last_ms = now if now is not None else last
        return now is not None and last is not None and now - last > REPLAY_GAP_MS

    # ------------------------------------------------------------- handlers

    def _session_meta(self, record: Record) -> None:
        payload = record.payload
        state = self.state
        meta_id = payload.get("id")
        meta_id = meta_id if isinstance(meta_id, str) and meta_id else None
        if state.thread_id is None and not state.meta:
            state.thread_id = meta_id.lower() if meta_id else state.fallback_id
            state.meta = _thread_meta(payload)
            return
        if meta_id and meta_id.lower() != state.thread_id and not state.replaying:
            # A copy of another thread's history (fork or sub-agent) begins here.
            state.replaying = True
            state.replay_last_ms = to_ms(record.timestamp)
            state.meta.setdefault("forked_from_id", meta_id.lower())

    def _turn_context(self, payload: dict[str, Any]) -> None:
        model = payload.get("model")
        if isinstance(model, str) and model and not self.state.replaying:
            self.state.model = model
        self._set_turn(payload.get("turn_id"))

    def _set_turn(self, turn_id: Any) -> None:
        if isinstance(turn_id, str) and turn_id:
            self.state.turn_id = turn_id
            self.state.explicit_turns = True

    def _response_item(self, record: Record) -> None:
        p = record.payload
        kind = p.get("type")
        if kind == "message":
            role = p.get("role")
            text = codex_items.content_text(p.get("content"))
            if role == "user":
                if not text.strip() or codex_items.is_injected(text):
                    return
                images = codex_items.count_images(p.get("content"))
                self.emit(
                    record, "user", "message", text, {"images": images or None}, origin="item"
                )
            elif role == "assistant":
                if text.strip():
                    self.emit(
                        record,
                        "assistant",
                        "message",
                        text,
                        {"phase": p.get("phase")},
                        origin="item",
                    )
            return
        if kind == "reasoning":
            for text in _reasoning_texts(p):
                self.emit(record, "assistant", "reason", text, origin="item")
            return
        if kind in ("function_call", "custom_tool_call", "local_shell_call", "tool_search_call"):
            self._tool_call(record, p)
            return
        if kind in ("function_call_output", "custom_tool_call_output"):
            self._tool_output(p)
            return
        if kind == "web_search_call":
            text, data = _search(p.get("action"))
            if text:
                self.emit(record, "assistant", "search", text, data, origin="item")
            return
        if kind == "image_generation_call":
            prompt = p.get("revised_prompt")
            self.emit(
                record,
                "assistant",
                "tool",
                f"image generation: {prompt or ''}".strip(),
                {"tool": "image_generation", "status": p.get("status")},
            )
            return
        if kind in _QUIET_ITEMS:
            return
        self.count_unknown(f"response_item.{kind}", record)

    def _tool_call(self, record: Record, p: dict[str, Any]) -> None:
        name = str(p.get("name") or p.get("type") or "tool")
        namespace = p.get("namespace")
        call_id = p.get("call_id") or p.get("id")
        if p.get("type") == "local_shell_call":
            action = p.get("action") if isinstance(p.get("action"), dict) else {}
            assert isinstance(action, dict)
            args: dict[str, Any] = {
                "command": action.get("command"),
                "workdir": action.get("working_directory"),
            }
            name = "local_shell"
        elif p.get("type") == "custom_tool_call":
            args = {"input": p.get("input")}
        else:
            args = codex_items.parse_arguments(p.get("arguments"))
        idx = self._call_row(record, name, namespace, args, call_id)
        self.remember_call(call_id, idx)

    def _call_row(
        self, record: Record, name: str, namespace: Any, args: dict[str, Any], call_id: Any
    ) -> int | None:
        data: dict[str, Any] = {"call_id": call_id, "tool": name}
        if name in codex_items.SHELL_TOOLS:
            command = codex_items.command_string(args)
            data.update(command=command, workdir=args.get("workdir"))
            return self.emit(record, "assistant", "cmd", command, data)
        if name in codex_items.PATCH_TOOLS:
            patch = args.get("input") if isinstance(args.get("input"), str) else args.get("patch")
            patch = patch if isinstance(patch, str) else str(args.get("raw", ""))
            files = codex_items.patch_files(patch)
            data.update(files=files, patch=codex_items.excerpt(patch, 48 * 1024, 8 * 1024))
            return self.emit(record, "assistant", "patch", ", ".join(files) or "apply_patch", data)
        if name in codex_items.PLAN_TOOLS:
            data.update(plan=args.get("plan"), explanation=args.get("explanation"))
            return self.emit(record, "assistant", "plan", codex_items.plan_text(args), data)
        label = _tool_label(namespace, name)
        shown = codex_items.excerpt(_compact_json(args), 2000, 0) if args else ""
        data.update(tool=label, arguments=codex_items.excerpt(_compact_json(args), 16 * 1024, 0))
        return self.emit(record, "assistant", "tool", f"{label} {shown}".strip(), data)

    def _tool_output(self, p: dict[str, Any]) -> None:
        call_id = p.get("call_id")
        idx = self.state.calls.get(call_id) if isinstance(call_id, str) else None
        if idx is None:
            self.state.unknown["orphan_output"] = self.state.unknown.get("orphan_output", 0) + 1
            return
        if call_id in self.state.ended:
            return  # the end event's output is already there, and often longer
        out = codex_items.parse_tool_output(p.get("output"))
        self.patch_row(
            idx,
            _drop_none(
                {
                    "output": codex_items.excerpt(out.text),
                    "output_chars": len(out.text),
                    "exit_code": out.exit_code,
                    "duration_ms": out.duration_ms,
                    "status": "running" if out.running else None,
                }
            ),
        )

    def _event_msg(self, record: Record) -> None:
        p = record.payload
        kind = p.get("type")
        state = self.state
        if kind == "user_message":
            text = p.get("message")
            if isinstance(text, str) and (text.strip() or p.get("images")):
                images = len(p.get("images") or []) + len(p.get("local_images") or [])
                self.emit(
                    record, "user", "message", text, {"images": images or None}, origin="event"
                )
        elif kind == "agent_message":
            text = p.get("message")
            if isinstance(text, str) and text.strip():
                self.emit(
                    record, "assistant", "message", text, {"phase": p.get("phase")}, origin="event"
                )
        elif kind == "agent_reasoning":
            text = p.get("text")
            if isinstance(text, str) and text.strip():
                self.emit(record, "assistant", "reason", text, origin="event")
        elif kind == "token_count":
            info = p.get("info")
            total = info.get("total_token_usage") if isinstance(info, dict) else None
            if isinstance(total, dict):
                state.tokens = _tokens(total)
        elif kind in ("task_started", "turn_started"):
            self._set_turn(p.get("turn_id"))
        elif kind in ("task_complete", "turn_complete"):
            error = p.get("error")
            if isinstance(error, dict | str):
                message = error.get("message") if isinstance(error, dict) else error
                self.emit(
                    record, "system", "error", str(message or "turn failed"), {"turn_failed": True}
                )
        elif kind == "turn_aborted":
            reason = p.get("reason") or "aborted"
            self.emit(record, "system", "error", f"Turn {reason}", {"aborted": reason})
        elif kind == "thread_name_updated":
            name = p.get("thread_name")
            state.name_event = name.strip() if isinstance(name, str) and name.strip() else None
        elif kind == "error":
            self.emit(
                record,
                "system",
                "error",
                str(p.get("message") or "error"),
                {"info": p.get("codex_error_info")},
            )
        elif kind == "exec_command_end":
            self._command_end(record, p)
        elif kind == "patch_apply_end":
            self._patch_end(record, p)
        elif kind == "mcp_tool_call_end":
            self._mcp_end(record, p)
        elif kind == "web_search_end":
            text, data = _search(p.get("action") or {"query": p.get("query")})
            if text:
                self.emit(record, "assistant", "search", text, data, origin="event")
        elif kind == "item_completed":
            self._typed_item(record, p.get("item"))
        elif kind not in _QUIET_EVENTS:
            self.count_unknown(f"event_msg.{kind}", record)

    def _command_end(self, record: Record, p: dict[str, Any]) -> None:
        output = p.get("aggregated_output") or p.get("formatted_output") or p.get("stdout") or ""
        data = _drop_none(
            {
                "exit_code": p.get("exit_code"),
                "duration_ms": codex_items.duration_ms(p.get("duration")),
                "status": p.get("status"),
                "cwd": _local_path(p.get("cwd")),
            }
        )
        if isinstance(output, str) and output:
            data["output"] = codex_items.excerpt(output)
            data["output_chars"] = len(output)
        call_id = str(p.get("call_id"))
        if data.get("output") is not None:
            self.state.ended.append(call_id)
            del self.state.ended[:-MAX_CANDIDATES]
        idx = self.state.calls.get(call_id)
        if idx is not None:
            self.patch_row(idx, data)
            return
        command = codex_items.command_string({"command": p.get("command")})
        role = "user" if p.get("source") == "user_shell" else "assistant"
        idx = self.emit(
            record, role, "cmd", command, {"call_id": p.get("call_id"), "command": command, **data}
        )
        self.remember_call(p.get("call_id"), idx)

    def _patch_end(self, record: Record, p: dict[str, Any]) -> None:
        changes = p.get("changes")
        files = sorted(changes) if isinstance(changes, dict) else []
        data = _drop_none(
            {"success": p.get("success"), "status": p.get("status"), "files": files or None}
        )
        idx = self.state.calls.get(str(p.get("call_id")))
        if idx is not None:
            self.patch_row(idx, data)
        else:
            idx = self.emit(record, "assistant", "patch", ", ".join(files) or "patch", data)
            self.remember_call(p.get("call_id"), idx)

    def _mcp_end(self, record: Record, p: dict[str, Any]) -> None:
        result = p.get("result")
        failed = isinstance(result, dict) and "Err" in result
        data = _drop_none(
            {
                "duration_ms": codex_items.duration_ms(p.get("duration")),
                "status": "failed" if failed else "completed",
                "output": codex_items.excerpt(_compact_json(result))
                if result is not None
                else None,
            }
        )
        idx = self.state.calls.get(str(p.get("call_id")))
        if idx is not None:
            self.patch_row(idx, data)
            return
        inv = p.get("invocation") if isinstance(p.get("invocation"), dict) else {}
        assert isinstance(inv, dict)
        label = f"mcp__{inv.get('server')}__{inv.get('tool')}"
        self.emit(record, "assistant", "tool", label, {"tool": label, **data})

    def _typed_item(self, record: Record, item: Any) -> None:
        """Newer builds' ``item_completed`` events carry typed thread items (codex-formats §10)."""
        if not isinstance(item, dict):
            return
        kind = str(item.get("type") or "")
        norm = kind.replace("_", "").lower()
        item_id = item.get("id") if isinstance(item.get("id"), str) else None
        if norm == "usermessage":
            text = _typed_text(item.get("content"))
            if text.strip():
                self.emit(record, "user", "message", text, origin="typed", item_id=item_id)
        elif norm == "agentmessage":
            text = _typed_text(item.get("content")) or str(item.get("text") or "")
            if text.strip():
                self.emit(
                    record,
                    "assistant",
                    "message",
                    text,
                    {"phase": item.get("phase")},
                    origin="typed",
                    item_id=item_id,
                )
        elif norm == "reasoning":
            for text in _strings(item.get("summary_text")) or _strings(item.get("summary")):
                self.emit(record, "assistant", "reason", text, origin="typed", item_id=item_id)
        elif norm == "plan":
            text = str(item.get("text") or "")
            if text.strip():
                self.emit(record, "assistant", "plan", text, origin="typed", item_id=item_id)
        elif norm == "commandexecution":
            self._command_end(record, {**item, "call_id": item_id})
        elif norm == "filechange":
            self._patch_end(
                record, {**item, "call_id": item_id, "success": item.get("status") == "completed"}
            )
        elif norm == "websearch":
            text, data = _search(item.get("action") or {"query": item.get("query")})
            if text:
                self.emit(record, "assistant", "search", text, data, origin="typed")
        elif norm in (
            "contextcompaction",
            "imageview",
            "collabagenttoolcall",
            "mcptoolcall",
            "dynamictoolcall",
            "hookprompt",
            "enteredreviewmode",
            "exitedreviewmode",
            "imagegeneration",
        ):
            return
        else:
            self.count_unknown(f"item_completed.{kind}", record)


def _handle_exec(normalizer: Normalizer, record: Record) -> None:
    from sessionbase.ingest.exec_stream import apply_exec_event

    apply_exec_event(normalizer, record)


_HANDLERS = {
    "session_meta": Normalizer._session_meta,
    "response_item": Normalizer._response_item,
    "event_msg": Normalizer._event_msg,
    "exec": _handle_exec,
}


# ---------------------------------------------------------------- helpers


def _thread_meta(p: dict[str, Any]) -> dict[str, Any]:
    """The thread-level fields of a session_meta payload (any generation)."""
    source = p.get("source")
    detail: Any = None
    parent = p.get("parent_thread_id")
    role, nickname = p.get("agent_role") or p.get("agent_type"), p.get("agent_nickname")
    if isinstance(source, dict):
        detail = source
        if "subagent" in source:
            sub = source["subagent"]
            spawn = sub.get("thread_spawn") if isinstance(sub, dict) else None
            if isinstance(spawn, dict):
                parent = parent or spawn.get("parent_thread_id")
                role = role or spawn.get("agent_role")
                nickname = nickname or spawn.get("agent_nickname")
            source = "subagent"
        elif "custom" in source:
            source = str(source["custom"])
        else:
            source = next(iter(source), "unknown")
    if not isinstance(source, str):
        source = _source_from_originator(p.get("originator"))
    git = p.get("git") if isinstance(p.get("git"), dict) else None
    meta = {
        "timestamp": p.get("timestamp"),
        "source": source,
        "source_detail": detail,
        "originator": p.get("originator"),
        "cli_version": p.get("cli_version"),
        "model_provider": p.get("model_provider"),
        "cwd": p.get("cwd"),
        "git": git,
        "forked_from_id": p.get("forked_from_id"),
        "history_base": p.get("history_base"),
        "parent_thread_id": parent,
        "agent_role": role,
        "agent_nickname": nickname,
        "thread_source": p.get("thread_source"),
    }
    return {k: v for k, v in meta.items() if v is not None}


def _source_from_originator(originator: Any) -> str | None:
    """Files from before ``source`` existed (2025-10): infer it from who wrote them."""
    if not isinstance(originator, str):
        return None
    if "exec" in originator:
        return "exec"
    if "vscode" in originator:
        return "vscode"
    if "cli" in originator or "tui" in originator:
        return "cli"
    return None


def _reasoning_texts(p: dict[str, Any]) -> list[str]:
    texts = [
        s["text"]
        for s in p.get("summary") or []
        if isinstance(s, dict) and isinstance(s.get("text"), str) and s["text"].strip()
    ]
    if not texts and isinstance(p.get("content"), list):
        texts = [
            s["text"]
            for s in p["content"]
            if isinstance(s, dict) and isinstance(s.get("text"), str) and s["text"].strip()
        ]
    return texts


def _typed_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(c.get("text")) for c in content if isinstance(c, dict) and c.get("text")
        )
    return ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        out = []
        for v in value:
            text = v.get("text") if isinstance(v, dict) else v
            if isinstance(text, str) and text.strip():
                out.append(text)
        return out
    return []


def _search(action: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(action, dict):
        return "", {}
    query = action.get("query")
    if not query and isinstance(action.get("queries"), list) and action["queries"]:
        query = action["queries"][0]
    text = query or action.get("url") or action.get("pattern") or ""
    return str(text), _drop_none(
        {"action": action.get("type"), "url": action.get("url"), "queries": action.get("queries")}
    )


def _tokens(total: dict[str, Any]) -> dict[str, int]:
    def num(key: str) -> int:
        value = total.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return {
        "input": num("input_tokens"),
        "cached": num("cached_input_tokens"),
        "output": num("output_tokens"),
        "reasoning": num("reasoning_output_tokens"),
        "total": num("total_tokens") or num("input_tokens") + num("output_tokens"),
    }


def _tokens_since(tokens: dict[str, int], baseline: dict[str, int]) -> dict[str, int]:
    """A fork's own usage: its cumulative total minus what the replayed parent had used."""
    if not baseline or any(tokens.get(k, 0) < v for k, v in baseline.items()):
        return dict(tokens)
    return {k: v - baseline.get(k, 0) for k, v in tokens.items()}


def _uuid7_ms(value: str) -> int | None:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed.int >> 80 if parsed.version == 7 else None


def _tool_label(namespace: Any, name: str) -> str:
    """A namespaced tool's full name as Codex shows it (``mcp__<server>__<tool>``): the rollout
    gives the namespace apart, with its trailing ``__`` or (0.169.0) without it."""
    if not isinstance(namespace, str) or not namespace:
        return name
    return f"{namespace}{name}" if namespace.endswith("__") else f"{namespace}__{name}"


def _compact_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _local_path(value: Any) -> Any:
    """Newer builds write ``cwd`` as a ``file://`` URL; show it as a path."""
    if isinstance(value, str) and value.startswith("file://"):
        return unquote(urlparse(value).path)
    return value


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
