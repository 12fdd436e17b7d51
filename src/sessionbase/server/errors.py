"""The one place a SessionbaseError becomes an HTTP status and body."""

from __future__ import annotations

from typing import Any

from sessionbase.errors import (
    AuthError,
    ConfigError,
    FunctionError,
    ProtocolError,
    RateLimited,
    ScopeError,
    SessionbaseError,
    StoreError,
)


def http_error(exc: SessionbaseError) -> tuple[int, dict[str, Any]]:
    """Status and ``{"error": {"code", "message"}}`` body for an error at the HTTP boundary."""
    if isinstance(exc, FunctionError):
        status = exc.status
        code = "not_found" if status == 404 else "bad_request"
    elif isinstance(exc, ProtocolError):
        status, code = 400, "bad_request"
    elif isinstance(exc, ScopeError):
        status, code = 403, "forbidden"
    elif isinstance(exc, RateLimited):
        status, code = 429, "too_many_requests"
    elif isinstance(exc, AuthError):
        status, code = 401, "unauthorized"
    elif isinstance(exc, StoreError | ConfigError):
        status, code = 503, "unavailable"
    else:
        status, code = 500, "internal"
    return status, {"error": {"code": code, "message": str(exc)}}


CONVEX_HTTP_PATHS = frozenset({"/api/query", "/api/mutation", "/api/action"})
"""Convex's HTTP API: its clients read a refusal as ``{code, message}``, not ``{error}``."""


def convex_refusal(status: int, code: str, message: str) -> dict[str, str]:
    """The body Convex's HTTP API refuses a request with: ``Unauthenticated`` (401) and
    ``Forbidden`` (403) as Convex names them, any other refusal under its own code."""
    names = {401: "Unauthenticated", 403: "Forbidden"}
    return {"code": names.get(status, code), "message": message}
