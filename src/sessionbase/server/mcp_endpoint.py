"""``/mcp``: the Model Context Protocol over Streamable HTTP, behind the same door as the rest.

The app's request guard has checked Host, Origin, content type and body size before a request
gets here, as for every route. What is left is who is asking: the credential, if any, goes
through the server's ``Authenticator`` (``server.auth``), the one place that decides. Today
that is ``LoopbackOnly``: the server binds loopback only, and whoever reaches it is its user.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from sessionbase.config import Settings
from sessionbase.errors import AuthError, SessionbaseError
from sessionbase.mcp.http import StreamableHttp
from sessionbase.server.auth import Authenticator
from sessionbase.server.errors import http_error


class McpEndpoint:
    """ASGI app for ``/mcp``: authenticate, then hand the request to the MCP transport."""

    def __init__(self, settings: Settings, auth: Authenticator) -> None:
        self.auth = auth
        self.transport = StreamableHttp(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._authenticate(Headers(scope=scope))
            await self.transport(scope, receive, send)
        except SessionbaseError as exc:  # refused, or MCP could not start (before any answer)
            status, body = http_error(exc)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": orjson.dumps(body)})

    def _authenticate(self, headers: Headers) -> str | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if not scheme:
            return self.auth.check("None", None)
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization must be a Bearer token")
        return self.auth.check("User", token.strip())

    async def close(self) -> None:
        await self.transport.close()
