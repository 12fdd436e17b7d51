"""Tool results as compact text a model reads cheaply, never longer than the caller allows.

A result is built as blocks (a hit, a thread, a transcript item) under a ``Budget``: a block
that would take the text past ``max_chars`` is left out along with everything after it, and the
footer says what was left out and how to get it. Room for the footer is kept back from the
start, so the cap holds with the footer included.
"""

from __future__ import annotations

import re
from typing import Any

from sessionbase.ingest.timestamps import iso
from sessionbase.store.rows import StoredMessage

FOOTER_ROOM = 400
"""Characters kept back for the closing line ("more available: …")."""


class Budget:
    """Blocks of text that fit in ``max_chars`` together with a closing line."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.blocks: list[str] = []
        self.used = 0

    @property
    def left(self) -> int:
        """Characters still free for blocks (the footer's room already set aside)."""
        return self.max_chars - FOOTER_ROOM - self.used

    def add(self, block: str) -> bool:
        """Append ``block`` if it fits; False (and nothing added) if it does not."""
        size = len(block) + 1  # the newline joining it
        if size > self.left:
            return False
        self.blocks.append(block)
        self.used += size
        return True

    def text(self, footer: str = "") -> str:
        """The blocks and the footer, cut to ``max_chars`` should the footer run long."""
        body = "\n".join([*self.blocks, footer] if footer else self.blocks)
        return body if len(body) <= self.max_chars else body[: self.max_chars - 1] + "…"


def when(ms: int | None) -> str:
    """``2026-05-11T08:26Z``: to the minute, which is what a reader needs, in UTC."""
    stamp = iso(ms)
    return "unknown time" if stamp is None else stamp[:16] + "Z"


def one_line(text: str, limit: int) -> str:
    """The text on one line, whitespace collapsed, cut to ``limit`` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_MARK = re.compile(r"</?mark>")


def snippet(text: str, limit: int = 300) -> str:
    """A search snippet on one line, its ``<mark>`` highlights as ``**bold**``."""
    return one_line(_MARK.sub("**", text), limit)


def clipped(text: str, limit: int) -> str:
    """The text cut to about ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 80)
    cut = len(text) - keep
    return f"{text[:keep]}… [{cut:,} more characters not shown; a larger max_chars shows more]"


def project_label(project_id: str | None, projects: dict[str, dict[str, Any]]) -> str:
    """``name (working dir)`` for a project id, the bare id for one not listed."""
    if project_id is None:
        return "no project"
    project = projects.get(project_id)
    if project is None:
        return project_id
    return one_line(f"{project['name']} ({project['working_dir']})", 200)


# ------------------------------------------------------------------ transcript items


def transcript_item(message: StoredMessage, output_chars: int) -> str:
    """One transcript row as a few lines: ``#idx kind: text``, with a command's or tool's
    outcome and the end of its output (up to ``output_chars``; the rest is folded)."""
    kind, role, data = message["kind"], message["role"], message["data"] or {}
    text = message["text"] or ""
    head = f"#{message['idx']}"
    if kind == "message":
        stamp = f" {when(message['ts'])}" if role == "user" and message["ts"] else ""
        return f"{head} {role}{stamp}: {text}"
    if kind == "reason":
        return f"{head} reasoning: {text.strip()}"
    if kind == "cmd":
        line = f"{head} {'user ' if role == 'user' else ''}cmd: $ {one_line(text, 1000)}"
        return line + _outcome(data) + _folded(data.get("output"), data, output_chars, tail=True)
    if kind == "patch":
        success = data.get("success")
        status = " → applied" if success is True else " → failed" if success is False else ""
        return f"{head} patch: {one_line(text, 1000)}{status}" + _folded(
            data.get("patch"), {}, output_chars, tail=False
        )
    if kind == "tool":
        line = f"{head} tool: {one_line(text, 500)}"
        return line + _outcome(data) + _folded(data.get("output"), data, output_chars, tail=True)
    label = {"search": "web search", "plan": "plan", "error": "error"}.get(kind, kind)
    return f"{head} {label}: {text}"


def _outcome(data: dict[str, Any]) -> str:
    parts = []
    if data.get("exit_code") is not None:
        parts.append(f"exit {data['exit_code']}")
    elif data.get("status") in ("failed", "running", "declined"):
        parts.append(str(data["status"]))
    if isinstance(data.get("duration_ms"), int | float):
        parts.append(f"{data['duration_ms'] / 1000:.1f} s")
    return f" → {', '.join(parts)}" if parts else ""


def _folded(text: Any, data: dict[str, Any], limit: int, *, tail: bool) -> str:
    """The end (or start) of a long output as ``  | `` lines, and how much there was."""
    if not isinstance(text, str) or not text.strip():
        return ""
    total = data.get("output_chars") if isinstance(data.get("output_chars"), int) else len(text)
    if limit <= 0:
        return f"\n  ({total:,} characters of output folded)"
    shown = text.strip()
    if len(shown) > limit:
        shown = shown[-limit:] if tail else shown[:limit]
        where = "last" if tail else "first"
        note = f"\n  ({total:,} characters; the {where} {limit:,}:)"
    else:
        note = ""
    lines = "\n".join(f"  | {line}" for line in shown.splitlines())
    return f"{note}\n{lines}"
