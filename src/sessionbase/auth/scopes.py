"""Scopes and identities: what a caller may do, and the one check every call goes through."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from sessionbase.errors import AuthError, ScopeError

Scope = Literal["read", "write", "admin", "run"]
"""``read``: queries and search. ``write``: renames, pins, archive flags, projects.
``admin``: pair, rename and revoke devices. ``run``: reserved for running Codex from a device."""

SCOPES: tuple[Scope, ...] = get_args(Scope)
DEFAULT_SCOPES: tuple[Scope, ...] = ("read", "write")


def parse_scopes(raw: str | Iterable[str]) -> tuple[Scope, ...]:
    """``"read,write"`` or ``["read", "write"]`` → the scopes in canonical order; ValueError
    names an unknown one. At least one scope is needed."""
    parts = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw)
    unknown = sorted({p for p in parts if p not in SCOPES})
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)} (scopes: {', '.join(SCOPES)})")
    if not parts:
        raise ValueError(f"give at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in parts)


Kind = Literal["local", "device", "anonymous"]


@dataclass(frozen=True)
class Identity:
    """Who is calling. ``local``: the owner on this machine (every scope). ``device``: a paired
    device through a token (its scopes, until ``expires_at``, seconds since the epoch).
    ``anonymous``: nobody known (no scope at all)."""

    kind: Kind
    scopes: frozenset[str]
    device_id: str | None = None
    expires_at: float | None = None
    kid: str | None = None  # the key that signed its token

    def require(self, scope: Scope, what: str) -> None:
        """Raise AuthError (nobody known) or ScopeError (not granted) unless this identity
        holds ``scope``; ``what`` names the call in the message."""
        if scope in self.scopes:
            return
        if self.kind == "anonymous":
            raise AuthError(
                f"{what} needs authentication: pair this device (sessionbase pair) and send"
                " its token"
            )
        raise ScopeError(f"{what} needs the {scope!r} scope, which this device was not granted")

    @property
    def label(self) -> str:
        """For logs and the audit trail: ``local`` or ``device:<id>``."""
        return f"device:{self.device_id}" if self.device_id else self.kind


LOCAL = Identity("local", frozenset(SCOPES))
ANONYMOUS = Identity("anonymous", frozenset())
