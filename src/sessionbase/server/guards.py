"""The checks every request passes before anything else runs, WebSocket upgrades included.

A pure ASGI middleware (``RequestGuard``), so one place covers HTTP and WebSockets alike:

- ``Host`` must name this machine's loopback or a configured public URL: a page that rebinds
  its own DNS name to 127.0.0.1 still sends its own name (DNS rebinding). 400 otherwise.
- ``Origin``, when present, must be one of the server's own origins: its loopback names with
  the port the request arrived on (``http://127.0.0.1:P``, ``http://localhost:P``,
  ``http://[::1]:P``), the loopback address the browser reached it at (an SSH tunnel), and the
  configured public URLs. Browsers send it on every WebSocket upgrade and on every cross-site
  fetch or form POST, so a page elsewhere can neither read nor mutate; ``null`` (sandboxed
  frames, ``file:`` pages) is refused too. 403, before the WebSocket is accepted. Requests
  without one (curl, scripts, native clients) pass.
- A POST must be ``application/json`` (a "simple" text/plain or form POST is what a browser
  sends cross-site without asking first). 415, before the body is read.
- A body may not exceed ``max_body`` bytes: a larger ``Content-Length`` is refused up front,
  and a body without one (chunked) is counted as it streams and cut off at the limit. 413.

Refusals are ``{"error": {"code", "message"}}`` with ``Connection: close``.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionbase.server.auth import is_loopback

MAX_BODY = 1024 * 1024
LOOPBACK_ORIGIN_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class Refusal(Exception):
    """A request the guard will not pass on: its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RequestGuard:
    """ASGI middleware: Host, Origin, POST content type and body size, for HTTP and WebSocket.

    ``public_origins`` are normalized origins (``scheme://host[:port]``) the server is also
    reached at, e.g. through a reverse proxy.
    """

    def __init__(
        self, app: ASGIApp, *, public_origins: Iterable[str] = (), max_body: int = MAX_BODY
    ) -> None:
        self.app = app
        self.public_origins = frozenset(public_origins)
        self.public_hosts = frozenset(o.partition("://")[2] for o in self.public_origins)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # the lifespan
            return
        headers = Headers(scope=scope)
        try:
            self._check_host(headers)
            self._check_origin(scope, headers)
            if scope["type"] == "http":
                self._check_body_headers(scope, headers)
        except Refusal as refusal:
            await _refuse(scope, send, refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
        else:
            await self._with_body_limit(scope, receive, send)

    def _check_host(self, headers: Headers) -> None:
        host = headers.get("host", "").lower()
        if host in self.public_hosts or is_loopback(_host_name(host)):
            return
        raise Refusal(400, "bad_request", f"Host {host!r} is not this server")

    def _check_origin(self, scope: Scope, headers: Headers) -> None:
        origin = headers.get("origin")
        if origin is None:
            return
        origin = origin.lower()
        if origin in self.public_origins:
            return
        server = scope.get("server")
        if server is not None and origin in _loopback_origins(server[1]):
            return
        host = headers.get("host", "").lower()
        if is_loopback(_host_name(host)) and origin == f"http://{host}":
            return  # the loopback address the page itself was loaded from (an SSH tunnel)
        raise Refusal(403, "forbidden", f"requests from {origin} are not allowed")

    def _check_body_headers(self, scope: Scope, headers: Headers) -> None:
        if scope["method"] == "POST" and not _is_json(headers.get("content-type")):
            raise Refusal(415, "unsupported_media_type", "POST bodies must be application/json")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            raise _too_large(self.max_body)

    async def _with_body_limit(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _too_large(self.max_body)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except Refusal as refusal:
            if started:
                raise
            await _refuse(scope, send, refusal)


def _loopback_origins(port: int | None) -> set[str]:
    """The origins of pages served by this server at its loopback names."""
    suffix = "" if port in (None, 80) else f":{port}"
    return {f"http://{host}{suffix}" for host in LOOPBACK_ORIGIN_HOSTS}


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"request bodies are limited to {limit} bytes")


def _host_name(host: str) -> str:
    """``127.0.0.1:7788`` → ``127.0.0.1``; ``[::1]:7788`` → ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.partition(":")[0]


def _is_json(content_type: str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8``."""
    if content_type is None:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    return all(p.replace(" ", "") in ("charset=utf-8", 'charset="utf-8"') for p in params if p)


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    body = orjson.dumps({"error": {"code": refusal.code, "message": str(refusal)}})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {"type": "websocket.http.response.start", "status": refusal.status, "headers": headers}
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # a server without the response extension answers 403 to a close before accepting
        await send({"type": "websocket.close", "code": 1008})
