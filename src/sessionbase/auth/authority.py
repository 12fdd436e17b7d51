"""``Authority``: what a serving process knows about credentials, and how it learns of changes.

It verifies tokens (the signature here, the device's state from a cache of device rows), runs
pairing and token exchange on a thread with its own store, limits attempts, and watches the
commit log for ``devices:<id>`` and ``auth:key`` entries: any process may pair, rename, revoke
or rotate (the CLI, another replica, an admin device), and each serving process sees it within
``WATCH_SECONDS`` (at once for its own commits and, on PostgreSQL, for other replicas' too:
the live engine wakes it on every commit it applies). Then it forgets those devices, and tells
its listeners, which close the connections a revoked device still holds.
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
from sessionbase.errors import AuthError, ConfigError, RateLimited
from sessionbase.store import Store, is_postgres, open_store

log = logging.getLogger("sessionbase.auth")
T = TypeVar("T")
WATCH_SECONDS = {"sqlite": 0.1, "postgresql": 1.0}  # safety-net polls of the commit log
SEEN_EVERY = 60.0  # seconds: how often a device's last-seen time is written
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
        self._devices: dict[str, dict[str, Any] | None] = {}
        self._seen: dict[str, float] = {}
        self._listeners: list[Changed] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-auth")
        self._local = threading.local()
        self._version = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refused_logged = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._version = await self._run(lambda store: store.last_version())
        self._task = asyncio.create_task(self._watch(), name="sessionbase-auth-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close_store)
        self._pool.shutdown(wait=True)

    def add_listener(self, listener: Changed) -> None:
        self._listeners.append(listener)

    def wake(self) -> None:
        """Something committed (call on the event loop): look at the commit log now."""
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
        claims = tokens.verify(self.key, token)
        if claims.device_id in self._devices:
            device = self._devices[claims.device_id]
        else:
            device = await self._run(lambda store: _listed(store.device(claims.device_id)))
            self._devices[claims.device_id] = device
        return devices.identity_for(device, claims)

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
        self._take(self.pair_limiter, address)
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
        self._take(self.token_limiter, address)
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

    def _take(self, limiter: AttemptLimiter, address: str | None) -> None:
        try:
            limiter.take(address)
        except RateLimited:
            self._wake.set()  # the watcher writes a summary of refusals to the audit log
            raise

    # ------------------------------------------------------------ watching for changes

    async def _watch(self) -> None:
        interval = WATCH_SECONDS["postgresql" if is_postgres(self.database) else "sqlite"]
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._check()
            except Exception as exc:  # the database is down: keep what we know, retry
                log.debug("device watch: %s", exc)
                await asyncio.sleep(interval)

    async def _check(self) -> None:
        since = self._version
        refused = self.pair_limiter.refused + self.token_limiter.refused
        new_refusals = refused - self._refused_logged
        self._refused_logged = refused

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
        for device_id in changed:
            self._devices.pop(device_id, None)
        if key_changed:
            self.keys.reload()
        for listener in list(self._listeners):
            listener(changed, key_changed)

    async def device(self, device_id: str) -> dict[str, Any] | None:
        """A device as stored now (cached until the commit log says it changed)."""
        if device_id not in self._devices:
            self._devices[device_id] = await self._run(lambda s: _listed(s.device(device_id)))
        return self._devices[device_id]


def _listed(device: dict[str, Any] | None) -> dict[str, Any] | None:
    if device is not None:
        device.pop("secret_hash", None)
    return device
