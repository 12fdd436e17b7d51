"""Running tools off the event loop, each worker thread with its own read-only store.

SQLite never runs on the loop: a tool call takes an idle worker (a thread of its own) and runs
there. A worker opens the database read-only on its first call, so the server starts, and says
why a call failed, even before any database exists, and keeps it open for the next call.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.mcp.tools import TOOLS
from sessionbase.store import Store, open_store

log = logging.getLogger("sessionbase.mcp")


@dataclass(frozen=True)
class ToolAnswer:
    """What a tool call produced: its text, and whether that text reports a failure."""

    text: str
    is_error: bool = False


@dataclass
class _Worker:
    """One thread and the store only it uses."""

    thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="sessionbase-mcp")
    )
    store: Store | None = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


class ToolRunner:
    """Calls tools by name on ``workers`` threads (stdio serves one caller: one is enough).
    Create it on the event loop that calls it."""

    def __init__(self, settings: Settings, workers: int = 1) -> None:
        self.settings = settings
        self._workers = [_Worker() for _ in range(workers)]
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        for worker in self._workers:
            self._idle.put_nowait(worker)

    async def call(self, name: str, raw_args: dict[str, Any] | None) -> ToolAnswer:
        """Run tool ``name``; a refusal or failure is an error answer, never an exception.
        Raises KeyError for a tool that does not exist (a protocol error, not a tool's)."""
        tool = TOOLS[name]
        try:
            args = tool.parse(raw_args)
            worker = await self._idle.get()
            try:
                loop = asyncio.get_running_loop()
                text = await loop.run_in_executor(
                    worker.thread, lambda: tool.run(self._store(worker), args)
                )
            finally:
                self._idle.put_nowait(worker)
        except SessionbaseError as exc:
            return ToolAnswer(str(exc), is_error=True)
        except Exception:  # a bug in one tool must not end the session
            log.exception("tool %s crashed", name)
            return ToolAnswer(f"{name} failed: internal error (see the server's log)", True)
        return ToolAnswer(text)

    def _store(self, worker: _Worker) -> Store:
        if worker.store is None:
            worker.store = open_store(self.settings.database_url, readonly=True)
        return worker.store

    def close(self) -> None:
        """Close every worker's store on its own thread, then stop the threads (blocks)."""
        for worker in self._workers:
            worker.thread.submit(worker.close).result()
            worker.thread.shutdown(wait=True)
