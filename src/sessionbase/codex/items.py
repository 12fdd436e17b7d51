"""Reading the payloads Codex writes: message text, injected context, tool calls and outputs.

Pure helpers shared by the rollout and exec-stream paths of the normalizer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import orjson

# Leading markers of model-visible context that the user never typed (codex-formats §2.5).
_INJECTED_PREFIXES = (
    "# AGENTS.md instructions for",
    "<environment_context>",
    "<user_instructions>",
    "<skill>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<subagent_notification>",
    "<permissions instructions>",
    "<skills_instructions>",
    "<plugins_instructions>",
    "<apps_instructions>",
    "<collaboration_mode>",
    "<personality_spec>",
    "<model_switch>",
    "<realtime_conversation>",
    "<spawned_agent_context>",
    "<INSTRUCTIONS>",
)
REQUEST_MARKER = "## My request for Codex:"

SHELL_TOOLS = frozenset({"shell", "shell_command", "exec_command", "container.exec", "local_shell"})
PATCH_TOOLS = frozenset({"apply_patch"})
PLAN_TOOLS = frozenset({"update_plan"})

OUTPUT_HEAD = 6 * 1024
OUTPUT_TAIL = 2 * 1024


def is_injected(text: str) -> bool:
    """True when a user-role message is context Codex injected, not something typed."""
    return text.lstrip().startswith(_INJECTED_PREFIXES)


def content_text(content: Any) -> str:
    """Join the text parts of a message content list (input_text / output_text / text)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for item in content:
        if isinstance(item, dict):
            text = item.get("text")
            if isinstance(text, str):
                parts.append(text)
    return "\n".join(parts)


def count_images(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(
        1
        for item in content
        if isinstance(item, dict) and item.get("type") in ("input_image", "image", "local_image")
    )


def request_text(message: str) -> str:
    """What the user asked: the text after Codex's legacy request marker, trimmed."""
    _, marker, rest = message.partition(REQUEST_MARKER)
    return (rest if marker else message).strip()


def excerpt(text: str, head: int = OUTPUT_HEAD, tail: int = OUTPUT_TAIL) -> str:
    """Head and tail of a long text with a marker saying how much was left out."""
    if len(text) <= head + tail:
        return text
    cut = len(text) - head - tail
    return f"{text[:head]}\n… [{cut} characters omitted] …\n{text[-tail:]}"


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments are a JSON string; tolerate objects and garbage."""
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {"raw": arguments}
        return value if isinstance(value, dict) else {"value": value}
    return {}


def command_string(args: dict[str, Any]) -> str:
    """The command line of a shell-like tool call, as a person would type it."""
    command = args.get("command", args.get("cmd"))
    if isinstance(command, list):
        words = [str(w) for w in command]
        # ["bash", "-lc", "ls -la"] → "ls -la": the wrapper is noise for a reader.
        if len(words) == 3 and words[1] in ("-lc", "-c") and words[0].endswith("sh"):
            return words[2]
        return shlex.join(words)
    if isinstance(command, str):
        return command
    return ""


@dataclass(frozen=True)
class ToolOutput:
    text: str
    exit_code: int | None = None
    duration_ms: int | None = None
    running: bool = False


_EXIT_LINE = re.compile(r"^(?:Exit code|Process exited with code):?\s*(-?\d+)", re.MULTILINE)
_WALL = re.compile(r"^Wall time:\s*([0-9.]+)\s*seconds?", re.MULTILINE)


def parse_tool_output(output: Any) -> ToolOutput:
    """Decode the shapes Codex used for tool output over the years.

    JSON ``{"output", "metadata": {"exit_code", "duration_seconds"}}`` (shell, apply_patch);
    ``Exit code: N / Wall time: S seconds / Output:`` text (shell_command); unified exec chunks
    (``Chunk ID`` … ``Process exited with code N`` or ``Process running with session ID``);
    or a list of content items (view_image, MCP).
    """
    if isinstance(output, list):
        return ToolOutput(content_text(output))
    if isinstance(output, dict):
        inner = output.get("content", output.get("output", ""))
        return ToolOutput(content_text(inner) if not isinstance(inner, str) else inner)
    if not isinstance(output, str):
        return ToolOutput("")
    stripped = output.lstrip()
    if stripped.startswith("{"):
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict) and "output" in value:
            meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            assert isinstance(meta, dict)
            code = meta.get("exit_code")
            secs = meta.get("duration_seconds")
            return ToolOutput(
                str(value.get("output") or ""),
                code if isinstance(code, int) else None,
                round(secs * 1000) if isinstance(secs, int | float) else None,
            )
    head, marker, body = output.partition("\nOutput:\n")
    if marker and ("Wall time:" in head or "Exit code" in head or "Chunk ID" in head):
        code_match = _EXIT_LINE.search(head)
        wall = _WALL.search(head)
        return ToolOutput(
            body,
            int(code_match.group(1)) if code_match else None,
            round(float(wall.group(1)) * 1000) if wall else None,
            running="Process running with session ID" in head,
        )
    return ToolOutput(output)


def patch_files(patch: str) -> list[str]:
    """Files named by an apply_patch body (``*** Add/Update/Delete File: path``)."""
    files = []
    for line in patch.splitlines():
        for verb in ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "):
            if line.startswith(verb):
                files.append(line[len(verb) :].strip())
    return files


def plan_text(args: dict[str, Any]) -> str:
    """A readable rendering of an update_plan call."""
    lines = []
    explanation = args.get("explanation")
    if isinstance(explanation, str) and explanation.strip():
        lines.append(explanation.strip())
    plan = args.get("plan")
    for step in plan if isinstance(plan, list) else []:
        if isinstance(step, dict):
            mark = {"completed": "[x]", "in_progress": "[~]"}.get(str(step.get("status")), "[ ]")
            lines.append(f"{mark} {step.get('step', '')}")
    return "\n".join(lines)


def duration_ms(value: Any) -> int | None:
    """Codex durations: ``{"secs", "nanos"}`` objects, or plain milliseconds."""
    if isinstance(value, dict):
        secs = value.get("secs", 0)
        nanos = value.get("nanos", 0)
        if isinstance(secs, int | float) and isinstance(nanos, int | float):
            return round(secs * 1000 + nanos / 1e6)
    if isinstance(value, int | float):
        return round(value)
    return None
