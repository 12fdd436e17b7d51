"""Embedding units: one per user message, one per run of assistant output between them.

A unit is what semantic search retrieves. Embedding whole runs rather than every fragment
gives far fewer vectors and better ones: an answer, the commands behind it and its reasoning
read as one piece. Commands are summarized as ``$ command (exit N)``; long units are cut, since
the models only read their first few hundred tokens anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sessionbase.store.rows import StoredMessage

MAX_UNIT_CHARS = 2000


@dataclass(frozen=True)
class Unit:
    thread_id: str
    start_idx: int
    end_idx: int
    role: str  # user | assistant
    text: str

    @property
    def content_hash(self) -> str:
        """The key of the unit's vector: the same text is never embedded twice."""
        return hashlib.blake2b(self.text.encode("utf-8", "replace"), digest_size=16).hexdigest()


def _line(message: StoredMessage) -> str:
    kind, text = message["kind"], " ".join(str(message["text"]).split())
    data = message.get("data") or {}
    if kind == "cmd":
        code = data.get("exit_code")
        return f"$ {text}" + (f" (exit {code})" if code is not None else "")
    if kind == "patch":
        return f"edited {text}"
    if kind in ("tool", "search"):
        return f"{kind}: {text[:200]}"
    return text


def build_units(thread_id: str, messages: Iterable[StoredMessage]) -> list[Unit]:
    """Units of one thread from its messages in order (system rows are left out)."""
    units: list[Unit] = []
    run: list[StoredMessage] = []

    def close_run() -> None:
        if run:
            text = "\n".join(line for line in (_line(m) for m in run) if line)
            if text.strip():
                units.append(
                    Unit(
                        thread_id, run[0]["idx"], run[-1]["idx"], "assistant", text[:MAX_UNIT_CHARS]
                    )  # fmt: skip
                )
            run.clear()

    for message in messages:
        if message["role"] == "user" and message["kind"] == "message":
            close_run()
            text = " ".join(str(message["text"]).split())[:MAX_UNIT_CHARS]
            if text:
                units.append(Unit(thread_id, message["idx"], message["idx"], "user", text))
        elif message["role"] == "assistant":
            run.append(message)
    close_run()
    return units
