"""Pairing, token exchange and device management over a ``Store``: the same code whether the
CLI calls it on the database directly or the server does for a request.

A code is made with the scopes the owner grants (``pair --scope``); the device that redeems it
gets exactly those, whatever it asks for. Every change goes through ``Store.apply_user_changes``
(one transaction with its audit entry and a ``devices:<id>`` commit-log entry, which is how
every serving process learns of it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sessionbase.auth import credentials
from sessionbase.auth.keys import SigningKey
from sessionbase.auth.scopes import Identity
from sessionbase.auth.tokens import TokenClaims
from sessionbase.errors import AuthError, FunctionError
from sessionbase.store import Store
from sessionbase.store.base import Entity, NewDevice, UserChange

DEFAULT_PAIRING_TTL = 600  # seconds
MIN_PAIRING_TTL = 60
MAX_PAIRING_TTL = 3600
MAX_LIVE_CODES = 10
MAX_NAME = 100


@dataclass(frozen=True)
class PairingCode:
    code: str  # as shown: ABCD-EFGH
    expires_at: int  # ms
    scopes: tuple[str, ...]
    name: str | None


def pairing_change(
    key: SigningKey, name: str | None, scopes: tuple[str, ...], ttl: int, by: str
) -> tuple[PairingCode, UserChange]:
    """A new code and the change that stores it (hashed); ValueError for a bad TTL."""
    if not MIN_PAIRING_TTL <= ttl <= MAX_PAIRING_TTL:
        raise ValueError(
            f"a pairing code lives {MIN_PAIRING_TTL // 60} to {MAX_PAIRING_TTL // 60} minutes"
        )
    code = credentials.new_code()
    expires_at = int(time.time() * 1000) + ttl * 1000
    normalized = credentials.normalize_code(code)
    assert normalized is not None
    record = {"name": _name(name), "scopes": list(scopes), "expires_at": expires_at}
    change = UserChange(
        Entity.PAIRING, credentials.code_hash(key, normalized), {"record": record, "by": by}
    )
    return PairingCode(code, expires_at, scopes, _name(name)), change


def check_room_for_code(store: Store) -> None:
    """FunctionError (429) when ``MAX_LIVE_CODES`` codes are live already."""
    if store.live_pairing_codes(int(time.time() * 1000)) >= MAX_LIVE_CODES:
        raise FunctionError(
            f"{MAX_LIVE_CODES} pairing codes are live already: use one, or wait for them to expire",
            status=429,
        )


def create_pairing(
    store: Store, key: SigningKey, name: str | None, scopes: tuple[str, ...], ttl: int, by: str
) -> PairingCode:
    check_room_for_code(store)
    code, change = pairing_change(key, name, scopes, ttl, by)
    store.apply_user_changes([change], None, None)
    return code


def redeem(
    store: Store,
    key: SigningKey,
    typed: str,
    name: str | None,
    address: str | None,
    user_agent: str | None,
) -> tuple[dict[str, Any], str]:
    """Exchange a live code for a new device and its secret (shown once); AuthError for a
    wrong, used or expired code (audited as a failure)."""
    code = credentials.normalize_code(typed)
    device_id = credentials.new_device_id()
    secret = credentials.new_device_secret(device_id)
    device = None
    if code is not None:
        new = NewDevice(
            device_id, _name(name), credentials.secret_hash(secret), address, _agent(user_agent)
        )
        device = store.redeem_pairing(
            credentials.code_hash(key, code), int(time.time() * 1000), new
        )
    if device is None:
        store.log_auth_event("failed", address=address, detail="pairing code refused")
        raise AuthError("that pairing code is wrong, used or expired")
    return device, secret


def device_for_secret(store: Store, secret: str) -> dict[str, Any]:
    """The live device a secret belongs to; AuthError otherwise."""
    device = store.device(credentials.secret_device_id(secret))
    if device is None or not credentials.secret_matches(secret, device["secret_hash"]):
        raise AuthError("unknown device secret: pair this device again")
    if device["revoked_at"] is not None:
        raise AuthError("this device was revoked: pair it again")
    device.pop("secret_hash")
    return device


def identity_for(device: dict[str, Any] | None, claims: TokenClaims) -> Identity:
    """The identity a verified token gives, checked against its device as stored now."""
    if device is None:
        raise AuthError("the token's device no longer exists: pair it again")
    if device["revoked_at"] is not None:
        raise AuthError("the token's device was revoked")
    scopes = frozenset(claims.scopes) & frozenset(device["scopes"])
    return Identity("device", scopes, device["id"], float(claims.expires_at), claims.kid)


def require_device(store: Store, device_id: str) -> dict[str, Any]:
    device = store.device(device_id)
    if device is None:
        raise FunctionError(f"no device with id {device_id!r} (sessionbase devices lists them)",
                            status=404)  # fmt: skip
    device.pop("secret_hash")
    return device


def revoke_change(device_id: str, by: str) -> UserChange:
    return UserChange(Entity.DEVICE, device_id, {"revoked_at": int(time.time() * 1000), "by": by})


def rename_change(device_id: str, name: str, by: str) -> UserChange:
    cleaned = _name(name)
    if not cleaned:
        raise FunctionError("a device name cannot be empty")
    return UserChange(Entity.DEVICE, device_id, {"name": cleaned, "by": by})


def remove_change(device_id: str, by: str) -> UserChange:
    return UserChange(Entity.DEVICE, device_id, {"removed": True, "by": by})


def _name(name: str | None) -> str | None:
    cleaned = " ".join((name or "").split())[:MAX_NAME]
    return cleaned or None


def _agent(user_agent: str | None) -> str | None:
    return user_agent[:300] if user_agent else None
