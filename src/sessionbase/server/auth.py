"""Who may use the API. Device auth plugs in here; today the server is loopback-only."""

from __future__ import annotations

import ipaddress
from typing import Protocol

from sessionbase.errors import AuthError, ConfigError


class Authenticator(Protocol):
    def check(self, token_type: str, token: str | None) -> str | None:
        """Return the identity for a credential; raise AuthError to refuse it."""
        ...


class LoopbackOnly:
    """No credentials exist yet: everyone who can reach the loopback port is the user."""

    def check(self, token_type: str, token: str | None) -> str | None:
        if token_type not in ("None", "User", "Admin"):
            raise AuthError(f"unknown token type {token_type!r}")
        return "local-user"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_loopback(host: str) -> None:
    """Refuse to listen beyond this machine until device auth exists."""
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host}: sessionbase has no device authentication yet, so it "
            "only binds loopback addresses (127.0.0.1, ::1, localhost)"
        )
