"""A thread as ``sessionbase show`` prints it: one row per message, wrapped to the terminal.

The conversation (what you typed, the answers, the reasoning) is shown whole. Tool activity
is folded to a few lines, with what it produced summed up (exit code, time, size of the
output); ``--full`` shows each command, argument list and output excerpt whole. A run of
consecutive polls of running commands (``write_stdin`` sending nothing) reads as one row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sessionbase.codex.items import parse_arguments
from sessionbase.store.rows import StoredMessage
from sessionbase.wording import counted

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

FOLD_LINES = 3  # lines of a tool call shown before "… N more lines" (and at most two
# screen lines' worth of characters, for one very long line)
STAMP_WIDTH = 8
LABEL_WIDTH = 9
ROLE_STYLES = {"user": "bold cyan", "assistant": "green", "system": "red"}


@dataclass
class Row:
    """One row of the transcript: a message, or a run of polls folded into one."""

    message: StoredMessage
    polls: int = 1


def print_transcript(console: Console, messages: list[StoredMessage], *, full: bool) -> None:
    """Print every message (``full``: tool calls and outputs unfolded, polls one by one),
    each wrapped beside its time and label to the console's width."""
    from rich.text import Text

    indent = STAMP_WIDTH + 1 + LABEL_WIDTH + 1
    width = max(console.width - indent, 20)
    for row in rows(messages, full=full):
        m = row.message
        stamp = time.strftime("%H:%M:%S", time.localtime(m["ts"] / 1000)) if m["ts"] else ""
        label = {"message": m["role"], "reason": "thinking"}.get(m["kind"], m["kind"])
        head = Text.assemble(
            (f"{stamp:<{STAMP_WIDTH}} ", "dim"),
            (f"{label:>{LABEL_WIDTH}} ", ROLE_STYLES.get(m["role"], "")),
        )
        body = _body(row, full=full, fold_chars=2 * width)
        for n, line in enumerate(body.wrap(console, width, overflow="fold")):
            line.rstrip()
            if n == 0:
                console.print(head, line, sep="", soft_wrap=True)
            elif line.plain:
                console.print(" " * indent, line, sep="", soft_wrap=True)
            else:
                console.print()


def rows(messages: list[StoredMessage], *, full: bool) -> Iterator[Row]:
    """The messages in order, consecutive polls folded into one row unless ``full``."""
    run: list[StoredMessage] = []
    for m in messages:
        if not full and is_poll(m):
            run.append(m)
            continue
        if run:
            yield Row(run[0], len(run))
            run = []
        yield Row(m)
    if run:
        yield Row(run[0], len(run))


def is_poll(m: StoredMessage) -> bool:
    """A poll of a running command: ``write_stdin`` that sends it nothing."""
    data = m["data"]
    if m["kind"] != "tool" or data.get("tool") != "write_stdin":
        return False
    return not parse_arguments(data.get("arguments")).get("chars")


def _body(row: Row, *, full: bool, fold_chars: int) -> Text:
    from rich.text import Text

    m, data = row.message, row.message["data"]
    if row.polls > 1:
        return Text.assemble(
            f"write_stdin ×{row.polls}",
            (" polled running commands (--full lists each)", "dim"),
        )
    if not full and is_poll(m):
        facts = _facts(data)
        return Text.assemble(
            "write_stdin", (" polled a running command" + (f"  [{facts}]" if facts else ""), "dim")
        )
    kind = m["kind"]
    if kind not in ("cmd", "tool", "patch", "search", "plan"):
        return Text(m["text"].strip())  # the conversation: always whole
    text = f"$ {m['text']}" if kind == "cmd" else m["text"]
    body = Text(text) if full else _folded(text, fold_chars)
    facts = _facts(data)
    if facts:
        body.append(f"  [{facts}]", style="dim")
    extra = _details(kind, data) if full else ""
    if extra:
        body.append("\n" + extra.rstrip("\n"), style="dim")
    return body


def _folded(text: str, max_chars: int) -> Text:
    """The first lines of a long tool call, and how much more --full would show."""
    from rich.text import Text

    lines = text.splitlines() or [""]
    shown = "\n".join(lines[:FOLD_LINES])
    cut = len(shown) > max_chars
    if cut:
        shown = shown[: max_chars - 1] + "…"
    body = Text(shown)
    hidden = len(lines) - FOLD_LINES
    if hidden > 0:
        body.append(f" … {counted(hidden, 'more line')} (--full)", style="dim")
    elif cut:
        body.append(" (--full)", style="dim")
    return body


def _facts(data: dict[str, Any]) -> str:
    """Exit code, duration and size of output, as far as they are known."""
    facts = []
    if data.get("exit_code") is not None:
        facts.append(f"exit {data['exit_code']}")
    if data.get("duration_ms"):
        facts.append(f"{data['duration_ms'] / 1000:.1f} s")
    if data.get("output_chars"):
        facts.append(counted(data["output_chars"], "char") + " out")
    return " · ".join(facts)


def _details(kind: str, data: dict[str, Any]) -> str:
    """What --full adds beneath a tool call: its output excerpt, or the patch itself."""
    if kind == "patch" and isinstance(data.get("patch"), str):
        return str(data["patch"])
    output = data.get("output")
    return output if isinstance(output, str) else ""
