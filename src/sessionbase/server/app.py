"""The ASGI app: sync WebSocket, HTTP API, MCP and health routes, with ingest in its lifespan.

``create_app(settings)`` is all ``serve`` needs. The lifespan opens the live engine, then
starts ingest in the background: the server answers at once (``/readyz`` says 503 until the
first pass over the Codex homes is done), and every ingest commit wakes the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as package_version
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sessionbase.auth.authority import Authority
from sessionbase.auth.keys import SigningKey
from sessionbase.codex.paths import no_rollouts_hint
from sessionbase.config import Settings
from sessionbase.ingest.health import IngestHealth, IngestState
from sessionbase.ingest.lock import IngestLock
from sessionbase.ingest.mirror import SyncReport
from sessionbase.ingest.watcher import Follower
from sessionbase.live.engine import Engine
from sessionbase.server import exposure as exposures
from sessionbase.server.access import Gate, declare, identity_of
from sessionbase.server.auth_routes import auth_routes
from sessionbase.server.exposure import Exposure
from sessionbase.server.guards import RequestGuard
from sessionbase.server.http import convex_routes, json_routes
from sessionbase.server.mcp_endpoint import McpEndpoint
from sessionbase.server.sync import Hub, SyncSession
from sessionbase.server.webapp import web_routes
from sessionbase.store import is_postgres

log = logging.getLogger("sessionbase")
STANDBY_SECONDS = 1.0  # how often a standby replica's embedder looks whether it ingests now
EMBED_INTERVAL = 30.0  # seconds: a safety net; commits wake the embedder
EMBED_SETTLE = 0.5  # seconds: let a burst of commits settle into one embedding pass
REFINE_SECONDS = 10.0  # of the refining model per pass, so new units wait for no long pass
REFINE_PAUSE = 0.5  # seconds between refining passes


class PairingDesk:
    """What ``pairing:create`` needs: the signing key and the addresses a device may use."""

    def __init__(self, authority: Authority, exposure: Exposure) -> None:
        self.authority = authority
        self.exposure = exposure

    def key(self) -> SigningKey:
        return self.authority.key

    def urls(self, code: str) -> list[str]:
        return self.exposure.pairing_urls(code)


def create_app(
    settings: Settings,
    *,
    ingest: bool = True,
    address: str | None = None,
    exposure: Exposure | None = None,
) -> Starlette:
    """The whole server. ``ingest=False`` serves an existing database without following files.
    ``exposure`` says where it listens (default: loopback only, as in tests).

    Raises SessionbaseError at once, before anything runs, when the database cannot be opened,
    another process already ingests into the data dir, or the signing key cannot be used: a
    server that cannot start says so in one line instead of failing in its lifespan.
    """
    _check_can_serve(settings, ingest)
    if exposure is None:
        exposure = Exposure("127.0.0.1", 0, require_auth=settings.require_auth,
                            public_urls=settings.public_urls)  # fmt: skip
    authority = Authority(settings.database_url, settings.data_dir, token_ttl=settings.token_ttl)
    mcp = McpEndpoint(settings)
    started = time.monotonic()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = Engine(settings.database_url, machine=settings.machine, address=address)
        health = IngestHealth() if ingest else None
        engine.pairing = PairingDesk(authority, exposure)
        app.state.engine = engine
        app.state.authority = authority
        app.state.health = health
        app.state.hub = hub = Hub(engine, authority)
        app.state.ready = asyncio.Event()
        stop = asyncio.Event()
        follower = None
        if health is not None:
            health.on_change(lambda: engine.set_facts(**_ingest_facts(health)))
            follower = Follower(settings, on_commit=engine.notify_commit, health=health)
        if follower is not None and not is_postgres(settings.database_url):
            await follower.open()  # on a shared database, run() waits for the ingest claim
        await engine.start()
        engine.set_facts(
            **_ingest_facts(health),
            codex_homes=[str(home) for home in settings.codex_homes],
            exposure=exposure.facts(),
        )
        await authority.start()
        authority.add_listener(hub.devices_changed)
        engine.add_commit_listener(authority.wake)  # a commit: devices may have changed
        if exposure.port:
            exposures.record(settings.data_dir, exposure)
        hub.start()
        task = None
        if follower is not None:
            task = asyncio.create_task(_follow(follower, app.state.ready, stop, started))
        else:
            app.state.ready.set()
        app.state.semantic = asyncio.Event()
        embedder = None
        if ingest:
            embedder = asyncio.create_task(
                _embed(
                    settings,
                    engine,
                    app.state.ready,
                    app.state.semantic,
                    lambda: follower is not None and follower.ingesting,
                )  # fmt: skip
            )
        try:
            yield
        finally:
            stop.set()
            if embedder is not None:
                embedder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await embedder
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if follower is not None:
                await follower.close()
            await mcp.close()
            await hub.stop()
            engine.remove_commit_listener(authority.wake)
            await authority.close()
            exposures.forget(settings.data_dir)
            await engine.close()

    async def sync(ws: WebSocket) -> None:
        base = identity_of(ws.scope)  # the local owner or nobody, until Authenticate
        await SyncSession(ws, ws.app.state.engine, authority, base).run(ws.app.state.hub)

    async def version(request: Request) -> Response:
        return JSONResponse({"name": "sessionbase", "version": package_version("sessionbase")})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        """Ready once the first import pass is done, and not while ingest is stopped or
        starting over (``ingest`` says why it stopped, and when it retries). Anyone may ask
        whether it is ready; the details (paths among them) need the ``read`` scope."""
        health: IngestHealth | None = request.app.state.health
        following = health is None or health.state in (IngestState.FOLLOWING,
                                                       IngestState.STANDBY)  # fmt: skip
        ready = request.app.state.ready.is_set() and following
        if "read" not in identity_of(request.scope).scopes:
            return JSONResponse({"ready": ready}, status_code=200 if ready else 503)
        engine: Engine = request.app.state.engine
        body = {
            "ready": ready,
            "semantic": request.app.state.semantic.is_set(),
            "version": engine.version,
            "subscriptions": engine.subscription_count,
            "connections": len(request.app.state.hub.sessions),
            "backlog": engine.backlog,
            "ingest": health.summary() if health is not None else None,
        }
        listening = engine.listener_state()
        if listening is not None:
            body["commit_listener"] = listening
        return JSONResponse(body, status_code=200 if ready else 503)

    # Every route says who may use it (server.access): the request guard applies it.
    routes = [
        declare(Route("/version", version), "public"),
        declare(Route("/healthz", healthz), "public"),
        declare(Route("/readyz", readyz), "public"),  # details need read (above)
        # The sync socket opens for anyone; each function checks its scope as it is called.
        declare(WebSocketRoute("/api/{client_version:str}/sync", sync), "public"),
        declare(WebSocketRoute("/api/sync", sync), "public"),  # the PyPI client's path
        *convex_routes(),  # "function"
        *json_routes(),  # "function", and /openapi.json "read"
        *auth_routes(),  # "public": the credential is what they check
        declare(Route("/mcp", mcp), "read"),  # the Model Context Protocol (Streamable HTTP)
        *(declare(r, "public") for r in web_routes()),  # last: the app answers other GETs
    ]
    gate = Gate(authority, routes, require_auth=settings.require_auth)
    middleware = [
        Middleware(
            RequestGuard,
            public_origins=settings.public_urls,
            gate=gate,
            allow_ip_hosts=not exposure.loopback_only,
            extra_hosts=_own_names(exposure),
        )
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def _own_names(exposure: Exposure) -> list[str]:
    """Host names a request may name when the server listens beyond loopback: this
    machine's (and its ``.local`` mDNS name) and the Tailscale name it was found at."""
    if exposure.loopback_only:
        return []
    import socket
    from urllib.parse import urlsplit

    hostname = socket.gethostname().lower()
    names = [hostname, f"{hostname}.local"]
    names += [urlsplit(url).hostname or "" for url in exposure.addresses]
    return [n for n in names if n]


def _check_can_serve(settings: Settings, ingest: bool) -> None:
    """Create and migrate the database before the engine reads it, and make sure no other
    process ingests into the data dir (its lock is taken for good when ingest starts)."""
    from sessionbase.store import open_store

    open_store(settings.database_url).close()
    if ingest:
        if not is_postgres(settings.database_url):  # a shared database: replicas take turns
            IngestLock(settings.data_dir).close()


async def _embed(
    settings: Settings,
    engine: Engine,
    ready: asyncio.Event,
    caught_up: asyncio.Event,
    ingesting: Callable[[], bool] = lambda: True,
) -> None:
    """Keep units and vectors current in the background: new messages become searchable by
    meaning within seconds, and neither ingest nor queries ever wait for the model. On a
    shared database only the process that ingests embeds (``ingesting``), and only while it
    does: the others read the vectors it stores."""
    await ready.wait()  # before the imports below: they would hold up the catch-up pass
    while not ingesting():
        caught_up.set()  # another process embeds; this one searches what it stored
        await asyncio.sleep(STANDBY_SECONDS)
    from sessionbase.search import semantic_index
    from sessionbase.store import Store, open_store

    wake = asyncio.Event()
    engine.add_listener(wake.set)
    index = semantic_index(settings)
    store: Store | None = None
    stopping = threading.Event()

    def run() -> tuple[int, int, int]:
        """Units embedded by the static model, by the refining one, and left to refine."""
        nonlocal store
        if store is None:
            store = open_store(settings.database_url)
            store.on_commit = engine.notify_commit
            index.embed(["warm up"])  # load the model now, not on the first query
        embedded = index.catch_up(store, stop=stopping.is_set)
        refined, unrefined = index.refine(store, stop=stopping.is_set, seconds=REFINE_SECONDS)
        return embedded, refined, unrefined

    worker = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-embed")  # one connection
    loop = asyncio.get_running_loop()
    try:
        while True:
            if not ingesting():
                await asyncio.sleep(STANDBY_SECONDS)
                continue
            unrefined = 0
            wake.clear()  # a commit during the pass below wakes the next one
            try:
                embedded, refined, unrefined = await loop.run_in_executor(worker, run)
                caught_up.set()
                if embedded:
                    log.info("embedded %d new units for semantic search", embedded)
                if refined:
                    log.debug("refined %d units (%d to go)", refined, unrefined)
            except Exception:
                log.exception("embedding failed; retrying later")
            if unrefined:
                await asyncio.sleep(REFINE_PAUSE)  # the rest next, after a breath for queries
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EMBED_INTERVAL):
                    await wake.wait()
            await asyncio.sleep(EMBED_SETTLE)
    finally:
        # A first catch-up can take minutes: ask it to stop, and let the loop run meanwhile.
        stopping.set()
        engine.remove_listener(wake.set)
        try:
            await loop.run_in_executor(worker, index.save)
        except Exception:  # the next start adds back what the saved index lacks
            log.exception("could not save the semantic index")
        if store is not None:
            await loop.run_in_executor(worker, store.close)
        worker.shutdown(wait=False)


def _ingest_facts(health: IngestHealth | None) -> dict[str, Any]:
    """What ``status:get`` says of ingest: ``mirror`` in a word, and ``ingest`` in full."""
    if health is None:
        return {"mirror": "off", "ingest": None}
    mirror = {
        IngestState.STARTING: "catching_up",
        IngestState.FOLLOWING: "live",
        IngestState.STOPPED: "stopped",
        IngestState.STANDBY: "standby",
    }[health.state]
    return {"mirror": mirror, "ingest": health.summary()}


async def _follow(
    follower: Follower, ready: asyncio.Event, stop: asyncio.Event, started: float
) -> None:
    def on_ready(report: SyncReport) -> None:
        ready.set()
        log.info(
            "ready in %.3f s: %d threads, %d messages",
            time.monotonic() - started,
            report.totals.get("threads", 0),
            report.totals.get("messages", 0),
        )
        if report.files_seen == 0:
            hint = no_rollouts_hint(follower.settings.codex_homes)
            log.warning("%s Watching for the first one.", hint)

    await follower.run(stop, on_ready)
