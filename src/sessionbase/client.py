"""A small async Python client for a running ``sessionbase serve``, for scripts.

It speaks the same sync protocol as the official Convex clients over one WebSocket::

    async with Client("http://127.0.0.1:7788") as client:
        threads = await client.query("threads:recent", {"limit": 5})
        await client.mutation("threads:rename", {"id": threads[0]["id"], "title": "Fixed"})
        async for messages in client.subscribe("messages:tail", {"threadId": ..., "n": 20}):
            print(messages[-1]["text"])

Results use the server's camelCase field names. A mutation returns once a Transition at or
past its commit has arrived, so a query made after it sees its effect (read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets

from sessionbase.errors import FunctionError, ProtocolError
from sessionbase.protocol.codec import decode_u64, from_convex, to_convex

CLIENT_VERSION = "sessionbase-1"


@dataclass
class _Query:
    path: str
    args: dict[str, Any]
    updates: asyncio.Queue[tuple[bool, Any]] = field(default_factory=asyncio.Queue)


class Client:
    """One connection to a sessionbase server. Use as an async context manager."""

    def __init__(self, url: str = "http://127.0.0.1:7788") -> None:
        base = url.rstrip("/")
        if base.startswith("http"):
            base = "ws" + base[len("http") :]
        self.ws_url = f"{base}/api/{CLIENT_VERSION}/sync"
        self.session_id = str(uuid.uuid4())
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._queries: dict[int, _Query] = {}
        self._next_query = 0
        self._query_set = 0
        self._next_request = 0
        self._pending: dict[int, asyncio.Future[tuple[bool, Any, int]]] = {}
        self._ts = 0
        self._ts_changed = asyncio.Condition()
        self._closed: BaseException | None = None

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._ws = await websockets.connect(self.ws_url, max_size=16 * 1024 * 1024)
        await self._send({"type": "Connect", "sessionId": self.session_id, "connectionCount": 0,
                          "lastCloseReason": None, "clientTs": 0})  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            await self._ws.close()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._ws.send(orjson.dumps(message).decode())

    # ------------------------------------------------------------ public API

    async def query(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """The current result of a query (subscribes, takes the first result, unsubscribes)."""
        async for value in self.subscribe(path, args):
            return value
        raise ProtocolError("connection closed before the query answered")

    async def subscribe(self, path: str, args: dict[str, Any] | None = None) -> AsyncIterator[Any]:
        """Every new result of a query, starting with the current one."""
        query_id = self._next_query
        self._next_query += 1
        query = _Query(path, args or {})
        self._queries[query_id] = query
        await self._modify([{"type": "Add", "queryId": query_id, "udfPath": path,
                             "args": [to_convex(query.args)]}])  # fmt: skip
        try:
            while True:
                ok, value = await query.updates.get()
                if not ok:
                    raise FunctionError(str(value))
                yield value
        finally:
            self._queries.pop(query_id, None)
            if self._closed is None:
                with contextlib.suppress(Exception):
                    await self._modify([{"type": "Remove", "queryId": query_id}])

    async def mutation(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run a mutation; returns its result once its commit is visible to this client."""
        request_id = self._next_request
        self._next_request += 1
        future: asyncio.Future[tuple[bool, Any, int]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._send({"type": "Mutation", "requestId": request_id, "udfPath": path,
                          "args": [to_convex(args or {})]})  # fmt: skip
        ok, result, ts = await future
        if not ok:
            raise FunctionError(str(result))
        async with self._ts_changed:
            await self._ts_changed.wait_for(lambda: self._ts >= ts or self._closed is not None)
        return result

    # ------------------------------------------------------------ internals

    async def _modify(self, modifications: list[dict[str, Any]]) -> None:
        base, self._query_set = self._query_set, self._query_set + 1
        message = {"type": "ModifyQuerySet", "baseVersion": base, "newVersion": self._query_set}
        await self._send({**message, "modifications": modifications})

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                self._dispatch(orjson.loads(frame))
                if self._closed is None:
                    async with self._ts_changed:
                        self._ts_changed.notify_all()
        except websockets.ConnectionClosed as exc:
            self._closed = exc
        finally:
            self._closed = self._closed or ProtocolError("connection closed")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ProtocolError("connection closed"))
            for query in self._queries.values():
                query.updates.put_nowait((False, "connection closed"))
            async with self._ts_changed:
                self._ts_changed.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "Transition":
            for mod in message["modifications"]:
                query = self._queries.get(mod["queryId"])
                if query is None:
                    continue
                if mod["type"] == "QueryUpdated":
                    query.updates.put_nowait((True, from_convex(mod["value"])))
                elif mod["type"] == "QueryFailed":
                    query.updates.put_nowait((False, mod["errorMessage"]))
            self._ts = decode_u64(message["endVersion"]["ts"])
        elif kind == "MutationResponse":
            future = self._pending.pop(message["requestId"], None)
            if future is not None and not future.done():
                ts = decode_u64(message["ts"]) if message.get("success") else 0
                future.set_result((bool(message["success"]), message.get("result"), ts))
        elif kind == "FatalError":
            raise ProtocolError(str(message.get("error")))
