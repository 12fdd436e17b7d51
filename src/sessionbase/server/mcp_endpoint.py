"""``/mcp``: the Model Context Protocol over Streamable HTTP, behind the same door as the rest.

The app's request guard has checked Host, Origin, content type and body size before a request
gets here, as for every route, and who is asking: the route is declared ``read``, so only the
local owner or a device whose token holds ``read`` gets this far (every tool only reads).
"""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope, Send

from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.mcp.http import StreamableHttp
from sessionbase.server.errors import http_error


class McpEndpoint:
    """ASGI app for ``/mcp``: hand the request to the MCP transport."""

    def __init__(self, settings: Settings) -> None:
        self.transport = StreamableHttp(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.transport(scope, receive, send)
        except SessionbaseError as exc:  # MCP could not start (before any answer)
            status, body = http_error(exc)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": orjson.dumps(body)})

    async def close(self) -> None:
        await self.transport.close()
