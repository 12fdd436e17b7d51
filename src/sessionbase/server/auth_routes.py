"""``POST /auth/pair`` and ``POST /auth/token``: how a device gets its secret, then tokens.

``/auth/pair`` takes ``{"code", "name"}`` and answers ``{"deviceId", "secret", "name",
"scopes"}`` once per code; ``/auth/token`` takes ``Authorization: Bearer <device secret>``
and answers ``{"token", "expiresAt", "deviceId", "scopes"}`` (``expiresAt`` in ms). Both
are public routes (the credential is what they check) and both count attempts per address
and overall; a refusal is a 401, or 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sessionbase.auth.authority import Authority
from sessionbase.errors import AuthError, FunctionError, RateLimited, SessionbaseError
from sessionbase.server.access import declare, peer_address
from sessionbase.server.errors import http_error


def _authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


def _error(exc: SessionbaseError) -> Response:
    status, body = http_error(exc)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sessionbase"'
    return JSONResponse(body, status_code=status, headers=headers)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise FunctionError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise FunctionError("the body must be a JSON object")
    return body


async def pair(request: Request) -> Response:
    try:
        body = await _body(request)
        code, name = body.get("code"), body.get("name")
        if not isinstance(code, str) or not code:
            raise FunctionError('send {"code": "ABCD-EFGH", "name": "my phone"}')
        if name is not None and not isinstance(name, str):
            raise FunctionError("name must be a string")
        paired = await _authority(request).pair(
            code, name, peer_address(request.scope), request.headers.get("user-agent")
        )
    except SessionbaseError as exc:
        return _error(exc)
    return JSONResponse(paired, headers={"Cache-Control": "no-store"})


async def token(request: Request) -> Response:
    try:
        kind, _, secret = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            raise AuthError("send the device secret as `Authorization: Bearer <secret>`")
        issued = await _authority(request).token_for(
            secret.strip(), peer_address(request.scope), request.headers.get("user-agent")
        )
    except SessionbaseError as exc:
        return _error(exc)
    return JSONResponse(issued, headers={"Cache-Control": "no-store"})


def auth_routes() -> list[Route]:
    return [
        declare(Route("/auth/pair", pair, methods=["POST"]), "public"),
        declare(Route("/auth/token", token, methods=["POST"]), "public"),
    ]
