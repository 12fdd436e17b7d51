"""``Authority``: what a serving process knows about credentials, and how it learns of changes.

It verifies tokens (the signature here, the device's state from a cache of device rows), runs
pairing and token exchange on a thread with its own store, limits attempts, and reads the
commit log for ``devices:<id>`` and ``auth:key`` entries: any process may pair, rename, revoke
or rotate (the CLI, another replica, an admin device). Then it forgets those devices, and
tells its listeners, which close the connections a revoked device still holds.

It reads the commit log when told of a commit (``wake``: the live engine hears of every one,
this process's at once, other processes' from its commit listener), every ``WATCH_SECONDS``
in case, and before it trusts its cache for a token: on SQLite it asks the file whether
anything was committed since it last read (a query on the event loop, microseconds), so a
device revoked by the CLI a moment ago is refused at once; on PostgreSQL, another replica's
revocation counts from its ``NOTIFY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sessionbase.auth import devices, tokens
from sessionbase.auth.keys import KeyFile, SigningKey, ensure_key, key_path
from sessionbase.auth.ratelimit import AttemptLimiter, Limits
from sessionbase.auth.scopes import Identity
from sessionbase.errors import AuthError, ConfigError
from sessionbase.store import Store, open_store

log = logging.getLogger("sessionbase.auth")
T = TypeVar("T")
WATCH_SECONDS = 1.0  # a safety net: commits are announced (``wake``), not polled for
SEEN_EVERY = 60.0  # seconds: how often a device's last-seen time is written
REFUSALS_EVERY = 10.0  # seconds: at most one audit row summing attempts the limits refused
PAIR_LIMITS = Limits()
TOKEN_LIMITS = Limits(per_address=20, address_refill=3.0, overall=200, overall_refill=0.1)
Changed = Callable[[set[str], bool], None]
"""A listener: (device ids that changed, whether the signing key changed)."""


class Authority:
    def __init__(
        self,
        database: str | Path,
        data_dir: Path,
        *,
        token_ttl: int = tokens.DEFAULT_TTL,
        pair_limits: Limits = PAIR_LIMITS,
    ) -> None:
        if not tokens.MIN_TTL <= token_ttl <= tokens.MAX_TTL:
            raise ConfigError(
                f"token_ttl {token_ttl} is out of range: a token lives {tokens.MIN_TTL} to"
                f" {tokens.MAX_TTL} seconds (the Convex client refreshes 10 s before expiry)"
            )
        self.database = database
        ensure_key(data_dir)
        self.keys = KeyFile(key_path(data_dir))
        self.token_ttl = token_ttl
        self.pair_limiter = AttemptLimiter(pair_limits)
        self.token_limiter = AttemptLimiter(TOKEN_LIMITS)
        self._verifier = tokens.Verifier()
        self._devices: dict[str, dict[str, Any] | None] = {}
        self._forgotten = 0  # how many times changed devices were dropped from the cache
        self._seen: dict[str, float] = {}
        self._listeners: list[Changed] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-auth")
        self._local = threading.local()
        self._version = 0  # the commit log is read up to here
        self._stale = False  # a commit was announced that the cache may not reflect yet
        self._checking = asyncio.Lock()
        self._inline: Store | None = None  # the event loop's own, on SQLite (see catch_up)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refused_logged = 0
        self._refusals_logged_at = -REFUSALS_EVERY

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._version = await self._run(lambda store: store.last_version())
        if await self._run(lambda store: store.in_process):
            self._inline = open_store(self.database, readonly=True)
        self._task = asyncio.create_task(self._watch(), name="sessionbase-auth-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = self.pair_limiter.refused + self.token_limiter.refused - self._refused_logged
        if pending:  # the last refusals' row, not yet written
            with contextlib.suppress(Exception):  # the database is gone: nowhere to keep it
                await self._run(lambda store: store.log_auth_event("failed", detail=(
                    f"{pending} attempts refused by the rate limit")))  # fmt: skip
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close_store)
        self._pool.shutdown(wait=True)
        if self._inline is not None:
            self._inline.close()
            self._inline = None

    def add_listener(self, listener: Changed) -> None:
        self._listeners.append(listener)

    def wake(self) -> None:
        """Something committed (call on the event loop): look at the commit log now, and
        before trusting the cache again."""
        self._stale = True
        self._wake.set()

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.database)
        return store

    def _close_store(self) -> None:
        store = getattr(self._local, "store", None)
        if store is not None:
            store.close()
            self._local.store = None

    async def _run(self, fn: Callable[[Store], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, lambda: fn(self._store())
        )

    @property
    def key(self) -> SigningKey:
        return self.keys.current()

    # ------------------------------------------------------------ credentials

    async def identify(self, token: str) -> Identity:
        """The identity a token proves; AuthError (a clean, one-line reason) otherwise."""
        await self.catch_up()
        claims = self._verifier.verify(self.key, token)
        return devices.identity_for(await self.device(claims.device_id), claims)

    async def catch_up(self) -> None:
        """Read whatever was committed since the commit log was last read (devices revoked,
        renamed or removed, the key rotated), so that the cache is current for a decision
        made now."""
        if self._stale or (
            self._inline is not None and self._inline.last_version() > self._version
        ):
            await self._check()

    async def ended(self, identity: Identity) -> str | None:
        """Why a device identity proven earlier (a sync connection's) no longer holds, as of
        now: its device revoked or removed, or the key that signed its token replaced."""
        if identity.device_id is None:
            return None
        await self.catch_up()
        if identity.kid is not None and identity.kid != self.key.kid:
            return "the signing key was rotated: fetch a new token"
        device = await self.device(identity.device_id)
        if device is None:
            return "this device was removed"
        if device["revoked_at"] is not None:
            return "this device was revoked"
        return None

    def seen(self, identity: Identity, address: str | None, user_agent: str | None) -> None:
        """Note that a device made a request (written at most every ``SEEN_EVERY`` s)."""
        device_id = identity.device_id
        if device_id is None:
            return
        now = time.monotonic()
        if now - self._seen.get(device_id, -SEEN_EVERY) < SEEN_EVERY:
            return
        self._seen[device_id] = now
        at = int(time.time() * 1000)
        self._pool.submit(lambda: self._store().touch_device(device_id, at, address, user_agent))

    async def pair(
        self, code: str, name: str | None, address: str | None, user_agent: str | None
    ) -> dict[str, Any]:
        """``POST /auth/pair``: a new device and its secret, once per code."""
        self.pair_limiter.take(address)  # refusals: summed in the audit log (_read_commits)
        key = self.key
        device, secret = await self._run(
            lambda store: devices.redeem(store, key, code, name, address, user_agent)
        )
        return {
            "deviceId": device["id"],
            "secret": secret,
            "name": device["name"],
            "scopes": device["scopes"],
        }

    async def token_for(
        self, secret: str, address: str | None, user_agent: str | None
    ) -> dict[str, Any]:
        """``POST /auth/token``: a short-lived token for a live device's secret."""
        self.token_limiter.take(address)
        key, ttl = self.key, self.token_ttl

        def exchange(store: Store) -> tokens.TokenClaims:
            try:
                device = devices.device_for_secret(store, secret)
            except AuthError as exc:
                store.log_auth_event("failed", address=address, detail=str(exc))
                raise
            claims = tokens.issue(key, device["id"], tuple(device["scopes"]), ttl)
            now = int(time.time() * 1000)
            store.touch_device(device["id"], now, address, user_agent)
            store.log_auth_event("token", device_id=device["id"], address=address)
            return claims

        claims = await self._run(exchange)
        return {
            "token": tokens.encode(key, claims),
            "expiresAt": claims.expires_at * 1000,
            "deviceId": claims.device_id,
            "scopes": list(claims.scopes),
        }

    # ------------------------------------------------------------ watching for changes

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._check()
            except Exception as exc:  # the database is down: keep what we know, retry
                log.debug("device watch: %s", exc)
                await asyncio.sleep(WATCH_SECONDS)

    async def _check(self) -> None:
        async with self._checking:  # one reader at a time; a waiter reads what came after
            self._stale = False
            try:
                await self._read_commits()
            except BaseException:
                self._stale = True
                raise

    async def _read_commits(self) -> None:
        since = self._version
        refused = self.pair_limiter.refused + self.token_limiter.refused
        new_refusals = refused - self._refused_logged
        now = time.monotonic()
        if new_refusals and now - self._refusals_logged_at >= REFUSALS_EVERY:
            self._refused_logged, self._refusals_logged_at = refused, now
        else:
            new_refusals = 0  # summed into a later row: a flood writes one row per interval

        def look(store: Store) -> tuple[int, set[str], bool]:
            if new_refusals:
                store.log_auth_event(
                    "failed", detail=f"{new_refusals} attempts refused by the rate limit"
                )
            if store.last_version() <= since:
                return since, set(), False
            changed: set[str] = set()
            key_changed = False
            commits = store.commits_since(since)
            for _, keys in commits:
                for k in keys:
                    if k.startswith("devices:"):
                        changed.add(k.partition(":")[2])
                    elif k == "auth:key":
                        key_changed = True
            return (commits[-1][0] if commits else since), changed, key_changed

        version, changed, key_changed = await self._run(look)
        self._version = max(self._version, version)
        if not changed and not key_changed:
            return
        self._forgotten += 1
        for device_id in changed:
            self._devices.pop(device_id, None)
        if key_changed:
            self.keys.reload()
        for listener in list(self._listeners):
            listener(changed, key_changed)

    async def device(self, device_id: str) -> dict[str, Any] | None:
        """A device as stored now (cached until the commit log says it changed)."""
        if device_id in self._devices:
            return self._devices[device_id]
        forgotten = self._forgotten
        found = await self._run(lambda s: _listed(s.device(device_id)))
        if forgotten == self._forgotten:  # else it may have changed since it was read
            self._devices[device_id] = found
        return found


def _listed(device: dict[str, Any] | None) -> dict[str, Any] | None:
    if device is not None:
        device.pop("secret_hash", None)
    return device
