"""Functions for managing devices from an admin device (the web app's devices page): list,
rename and revoke devices, and make pairing codes. Each needs the ``admin`` scope.

A device can grant only scopes it holds itself, so an admin device without ``run`` cannot make
a code that has it. The code itself is shown once: the mutation log keeps the result without it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sessionbase.auth import devices
from sessionbase.auth.scopes import DEFAULT_SCOPES, SCOPES
from sessionbase.errors import FunctionError, ScopeError
from sessionbase.live.context import MutationContext, QueryContext
from sessionbase.live.registry import Args, Registry, Whole


class NoArgs(Args):
    pass


class DeviceIdArgs(Args):
    id: str = Field(min_length=1, max_length=64)


class RenameDeviceArgs(Args):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=devices.MAX_NAME)


class PairingArgs(Args):
    name: str | None = Field(default=None, max_length=devices.MAX_NAME)
    scopes: list[Literal["read", "write", "admin", "run"]] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES), min_length=1, max_length=len(SCOPES)
    )
    ttl_seconds: Whole = Field(
        default=devices.DEFAULT_PAIRING_TTL,
        ge=devices.MIN_PAIRING_TTL,
        le=devices.MAX_PAIRING_TTL,
    )


def _without_code(result: Any) -> Any:
    """What the mutation log keeps of a new code: everything but the code and its URLs."""
    return {**result, "code": None, "urls": []} if isinstance(result, dict) else result


def register(registry: Registry) -> None:
    """Add the device functions to ``registry``."""

    @registry.query("devices:list", NoArgs, scope="admin")
    def devices_list(ctx: QueryContext, args: NoArgs) -> list[dict[str, Any]]:
        """Paired devices, newest first: name, scopes, created, last seen (when and from
        which address, with its user agent), revoked."""
        return ctx.devices()

    @registry.mutation("devices:revoke", DeviceIdArgs, scope="admin")
    def devices_revoke(ctx: MutationContext, args: DeviceIdArgs) -> None:
        """Revoke a device: its tokens are refused and its connections closed at once."""
        devices.require_device(ctx.store, args.id)
        ctx.stage(devices.revoke_change(args.id, ctx.identity.label))

    @registry.mutation("devices:rename", RenameDeviceArgs, scope="admin")
    def devices_rename(ctx: MutationContext, args: RenameDeviceArgs) -> None:
        """Give a device another name."""
        devices.require_device(ctx.store, args.id)
        ctx.stage(devices.rename_change(args.id, args.name, ctx.identity.label))

    @registry.mutation("pairing:create", PairingArgs, scope="admin", log_as=_without_code)
    def pairing_create(ctx: MutationContext, args: PairingArgs) -> dict[str, Any]:
        """A one-time pairing code for a new device with these scopes (at most the caller's
        own), and the pairing page's URL at every address the server is reached at. The code
        is shown once: a retried call gets ``code: null``."""
        if ctx.pairing is None:
            raise FunctionError("pairing:create needs a running server", status=503)
        granted = tuple(s for s in SCOPES if s in args.scopes)
        beyond = [s for s in granted if s not in ctx.identity.scopes]
        if beyond:
            raise ScopeError(f"a device can only grant scopes it holds: not {', '.join(beyond)}")
        devices.check_room_for_code(ctx.store)
        code, change = devices.pairing_change(
            ctx.pairing.key(), args.name, granted, args.ttl_seconds, ctx.identity.label
        )
        ctx.stage(change)
        return {
            "code": code.code,
            "urls": ctx.pairing.urls(code.code),
            "expires_at": code.expires_at,
            "scopes": list(code.scopes),
        }
