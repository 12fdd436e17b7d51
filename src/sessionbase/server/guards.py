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

Then, with a ``Gate`` (``server.access``): who is asking, and whether the route allows them
(401 without a valid token where one is needed, 403 without the scope, 429 when attempts run
out). The request goes on with the caller in ``scope["state"]["identity"]``.

A server listening beyond loopback (``allow_ip_hosts``) also takes a ``Host`` that is an IP
address, or one of ``extra_hosts`` (its own names): DNS rebinding needs a name the attacker
controls, never an address. A page's ``Origin`` is accepted when it is the very host the
request names (a page this server itself served).

Refusals are ``{"error": {"code", "message"}}`` with ``Connection: close``; on Convex's HTTP
API (``/api/query`` …) ``{"code", "message"}``, the shape its clients read.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionbase.errors import AuthError, RateLimited
from sessionbase.server.access import Gate
from sessionbase.server.errors import CONVEX_HTTP_PATHS, convex_refusal, http_error
from sessionbase.server.loopback import host_name, is_ip_literal, is_loopback

MAX_BODY = 1024 * 1024
LOOPBACK_ORIGIN_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class Refusal(Exception):
    """A request the guard will not pass on: its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after: float | None = None


class RequestGuard:
    """ASGI middleware: Host, Origin, POST content type and body size, for HTTP and WebSocket.

    ``public_origins`` are normalized origins (``scheme://host[:port]``) the server is also
    reached at, e.g. through a reverse proxy.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_origins: Iterable[str] = (),
        max_body: int = MAX_BODY,
        gate: Gate | None = None,
        allow_ip_hosts: bool = False,
        extra_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.public_origins = frozenset(public_origins)
        self.public_hosts = frozenset(o.partition("://")[2] for o in self.public_origins)
        self.max_body = max_body
        self.gate = gate
        self.allow_ip_hosts = allow_ip_hosts
        self.extra_hosts = frozenset(h.lower() for h in extra_hosts)

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
            if self.gate is not None:
                await self.gate.admit(scope, headers)
        except AuthError as exc:
            await _refuse(scope, send, _refusal(exc))
            return
        except Refusal as refusal:
            await _refuse(scope, send, refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
        else:
            await self._with_body_limit(scope, receive, send)

    def _check_host(self, headers: Headers) -> None:
        host = headers.get("host", "").lower()
        if self._allowed_host(host):
            return
        raise Refusal(400, "bad_request", f"Host {host!r} is not this server")

    def _allowed_host(self, host: str) -> bool:
        name = host_name(host)
        if host in self.public_hosts or is_loopback(name):
            return True
        return bool(name) and (
            name in self.extra_hosts or (self.allow_ip_hosts and is_ip_literal(name))
        )

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
        secure = scope.get("scheme") in ("https", "wss")
        if host in self.public_hosts:
            pass  # behind a proxy only the configured origins count (the scheme seen differs)
        elif self._allowed_host(host) and origin == f"{'https' if secure else 'http'}://{host}":
            return  # a page this server served, at the address it was loaded from
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


def _refusal(exc: AuthError) -> Refusal:
    status, body = http_error(exc)
    refusal = Refusal(status, body["error"]["code"], str(exc))
    if isinstance(exc, RateLimited):
        refusal.retry_after = exc.retry_after
    return refusal


def _is_json(content_type: str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8``."""
    if content_type is None:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    return all(p.replace(" ", "") in ("charset=utf-8", 'charset="utf-8"') for p in params if p)


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    if scope["type"] == "http" and scope.get("path") in CONVEX_HTTP_PATHS:
        body = orjson.dumps(convex_refusal(refusal.status, refusal.code, str(refusal)))
    else:
        body = orjson.dumps({"error": {"code": refusal.code, "message": str(refusal)}})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if refusal.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(refusal.retry_after))).encode()))
    if refusal.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="sessionbase"'))
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
