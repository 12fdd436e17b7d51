"""MCP's Streamable HTTP transport as an ASGI app for ``serve`` to mount, started on first use.

The SDK takes a while to import (its protocol models), longer than ``serve`` takes to start.
So nothing of it loads until a client first reaches ``/mcp``: that request imports it off the
event loop and starts the session manager, which then serves every request until ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

from starlette.types import Receive, Scope, Send

from sessionbase.config import Settings


class StreamableHttp:
    """ASGI app serving MCP over Streamable HTTP (POST with JSON, GET for the event stream,
    DELETE to end a session). Raises whatever starting the SDK raised (e.g. ConfigError for
    an unusable embedding setting) to the request that started it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._manager: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._starting = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager or await self._start()
        await manager.handle_request(scope, receive, send)

    async def _start(self) -> Any:
        async with self._starting:
            if self._manager is None:
                server = await asyncio.to_thread(importlib.import_module, "sessionbase.mcp.server")
                ready = asyncio.Event()
                self._task = asyncio.create_task(self._run(server, ready), name="sessionbase-mcp")
                waiting = asyncio.create_task(ready.wait())
                await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if not ready.is_set():
                    task, self._task = self._task, None
                    task.result()  # raises why it could not start
        return self._manager

    async def _run(self, server: Any, ready: asyncio.Event) -> None:
        async with server.http_sessions(self.settings) as manager:
            self._manager = manager
            ready.set()
            await self._stop.wait()

    async def close(self) -> None:
        """End every session and stop the tool workers (if it was ever started)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        self._manager = None
