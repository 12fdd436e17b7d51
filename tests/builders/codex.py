"""Build Codex rollout files in tests, line by line, in the shapes real builds write.

``Rollout`` makes envelope-format files (codex-formats §2); ``legacy_rollout`` and
``ts_document`` the older generations (§2.8). Timestamps advance one second per line unless
given, so files are deterministic.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

DEFAULT_START = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_id(moment: datetime = DEFAULT_START) -> str:
    """A UUIDv7 minted at ``moment``, like Codex's thread and turn ids."""
    ms = int(moment.timestamp() * 1000)
    rand = uuid.uuid4().int & ((1 << 80) - 1)
    value = (ms << 80) | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


class Rollout:
    """An envelope rollout under construction."""

    def __init__(
        self,
        thread_id: str | None = None,
        *,
        start: datetime = DEFAULT_START,
        cwd: str = "/work/project",
        source: Any = "cli",
        originator: str = "codex-tui",
        cli_version: str = "0.125.0",
        model: str = "gpt-5.5",
        meta: dict[str, Any] | None = None,
        write_meta: bool = True,
    ) -> None:
        self.thread_id = thread_id or new_id(start)
        self.start = start
        self.clock = start
        self.lines: list[bytes] = []
        self.model = model
        self.cwd = cwd
        self._calls = 0
        if write_meta:
            payload = {
                "id": self.thread_id,
                "timestamp": stamp(start),
                "cwd": cwd,
                "originator": originator,
                "cli_version": cli_version,
                "source": source,
                "model_provider": "openai",
                **(meta or {}),
            }
            self.line("session_meta", payload)

    # ------------------------------------------------------------ primitives

    def tick(self, seconds: float = 1.0) -> str:
        self.clock += timedelta(seconds=seconds)
        return stamp(self.clock)

    def line(self, kind: str, payload: Any, *, ts: str | None = None, **extra: Any) -> Rollout:
        obj = {"timestamp": ts or self.tick(), "type": kind, "payload": payload, **extra}
        self.lines.append(orjson.dumps(obj))
        return self

    def raw(self, data: bytes) -> Rollout:
        """A line exactly as given (without its newline): for hostile input."""
        self.lines.append(data)
        return self

    def event(self, payload: dict[str, Any]) -> Rollout:
        return self.line("event_msg", payload)

    def item(self, payload: dict[str, Any]) -> Rollout:
        return self.line("response_item", payload)

    # ------------------------------------------------------------ transcript

    def turn(self, turn_id: str | None = None) -> str:
        turn_id = turn_id or new_id(self.clock)
        self.event({"type": "task_started", "turn_id": turn_id})
        self.line("turn_context", {"turn_id": turn_id, "cwd": self.cwd, "model": self.model})
        return turn_id

    def end_turn(self, turn_id: str, last: str | None = None, error: str | None = None) -> Rollout:
        payload: dict[str, Any] = {
            "type": "task_complete",
            "turn_id": turn_id,
            "last_agent_message": last,
        }
        if error:
            payload["error"] = {"message": error}
        return self.event(payload)

    def user(self, text: str, *, item: bool = True, event: bool = True) -> Rollout:
        if item:
            self.item(
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            )
        if event:
            self.event({"type": "user_message", "message": text, "images": []})
        return self

    def context(self, cwd: str = "/work/project") -> Rollout:
        """Injected environment context (not a user message)."""
        text = f"<environment_context>\n  <cwd>{cwd}</cwd>\n</environment_context>"
        return self.item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        )

    def assistant(
        self,
        text: str,
        *,
        item: bool = True,
        event: bool = True,
        phase: str | None = "final_answer",
    ) -> Rollout:
        if event:
            self.event({"type": "agent_message", "message": text, "phase": phase})
        if item:
            self.item(
                {
                    "type": "message",
                    "role": "assistant",
                    "phase": phase,
                    "content": [{"type": "output_text", "text": text}],
                }
            )
        return self

    def reasoning(self, text: str) -> Rollout:
        self.event({"type": "agent_reasoning", "text": text})
        return self.item(
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": text}],
                "content": None,
                "encrypted_content": "gAAAA",
            }
        )

    def shell(
        self, command: str, output: str = "", exit_code: int = 0, tool: str = "shell_command"
    ) -> str:
        self._calls += 1
        call_id = f"call_{self._calls:04d}"
        self.item(
            {
                "type": "function_call",
                "name": tool,
                "call_id": call_id,
                "arguments": orjson.dumps({"command": command, "workdir": self.cwd}).decode(),
            }
        )
        self.item(
            {
                "type": "function_call_output",
                "call_id": call_id,
                "output": f"Exit code: {exit_code}\nWall time: 0.1 seconds\nOutput:\n{output}",
            }
        )
        return call_id

    def tool(self, name: str, arguments: dict[str, Any], output: str = "") -> str:
        """A function call to any tool (``write_stdin``, an MCP tool…) and its output."""
        self._calls += 1
        call_id = f"call_{self._calls:04d}"
        self.item({"type": "function_call", "name": name, "call_id": call_id,
                   "arguments": orjson.dumps(arguments).decode()})  # fmt: skip
        self.item({"type": "function_call_output", "call_id": call_id, "output": output})
        return call_id

    def apply_patch(self, path: str, body: str = "+hello") -> str:
        self._calls += 1
        call_id = f"call_{self._calls:04d}"
        patch = f"*** Begin Patch\n*** Add File: {path}\n{body}\n*** End Patch"
        self.item(
            {
                "type": "custom_tool_call",
                "status": "completed",
                "call_id": call_id,
                "name": "apply_patch",
                "input": patch,
            }
        )
        out = {
            "output": f"Success. Updated the following files:\nA {path}\n",
            "metadata": {"exit_code": 0, "duration_seconds": 0.0},
        }
        self.item(
            {
                "type": "custom_tool_call_output",
                "call_id": call_id,
                "output": orjson.dumps(out).decode(),
            }
        )
        return call_id

    def tokens(self, total: int, input_tokens: int | None = None) -> Rollout:
        inp = input_tokens if input_tokens is not None else total - total // 10
        usage = {
            "input_tokens": inp,
            "cached_input_tokens": inp // 2,
            "output_tokens": total - inp,
            "reasoning_output_tokens": 0,
            "total_tokens": total,
        }
        return self.event(
            {
                "type": "token_count",
                "info": {
                    "total_token_usage": usage,
                    "last_token_usage": usage,
                    "model_context_window": 258400,
                },
            }
        )

    def rename(self, name: str) -> Rollout:
        return self.event(
            {"type": "thread_name_updated", "thread_id": self.thread_id, "thread_name": name}
        )

    # ------------------------------------------------------------ output

    def to_bytes(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)

    def file_name(self) -> str:
        return f"rollout-{self.start.strftime('%Y-%m-%dT%H-%M-%S')}-{self.thread_id}.jsonl"

    def path_in(self, codex_home: Path, *, archived: bool = False) -> Path:
        if archived:
            return codex_home / "archived_sessions" / self.file_name()
        day = self.start.strftime("%Y/%m/%d")
        return codex_home / "sessions" / day / self.file_name()

    def append_to(self, path: Path, text: str) -> None:
        """Add a user message to the rollout written at ``path`` as Codex does: its new lines
        in one write at the end of the file."""
        before = len(self.lines)
        self.user(text)
        with open(path, "ab") as fh:
            fh.write(b"".join(line + b"\n" for line in self.lines[before:]))

    def write(self, codex_home: Path, *, archived: bool = False) -> Path:
        path = self.path_in(codex_home, archived=archived)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path


def legacy_rollout(
    thread_id: str, user: str, answer: str, *, ts: str = "2025-07-20T10:00:00.000Z"
) -> bytes:
    """A pre-envelope (2025-05 to 2025-09) rollout: bare metadata line, then bare items."""
    lines: list[Any] = [
        {
            "id": thread_id,
            "timestamp": ts,
            "instructions": None,
            "git": {"commit_hash": "abc123", "branch": "main"},
        },
        {"record_type": "state"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": user}]},
        {"record_type": "state"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Thinking"}],
        },
        {
            "type": "function_call",
            "name": "shell",
            "call_id": "c1",
            "arguments": orjson.dumps({"command": ["bash", "-lc", "ls"]}).decode(),
        },
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": orjson.dumps(
                {"output": "a\nb\n", "metadata": {"exit_code": 0, "duration_seconds": 0.2}}
            ).decode(),
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": answer}],
        },
    ]
    return b"".join(orjson.dumps(obj) + b"\n" for obj in lines)


def ts_document(thread_id: str, user: str, answer: str) -> bytes:
    """A TypeScript-era ``.json`` session document."""
    doc = {
        "session": {"timestamp": "2025-04-10T09:00:00.000Z", "id": thread_id, "instructions": ""},
        "items": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": user}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer}],
            },
        ],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
