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

from sessionbase.codex.paths import no_rollouts_hint
from sessionbase.config import Settings
from sessionbase.ingest.health import IngestHealth, IngestState
from sessionbase.ingest.lock import IngestLock
from sessionbase.ingest.mirror import SyncReport
from sessionbase.ingest.watcher import Follower
from sessionbase.live.engine import Engine
from sessionbase.server.auth import LoopbackOnly
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


def create_app(settings: Settings, *, ingest: bool = True, address: str | None = None) -> Starlette:
    """The whole server. ``ingest=False`` serves an existing database without following files.

    Raises SessionbaseError at once, before anything runs, when the database cannot be opened
    or another process already ingests into the data dir: a server that cannot start says so
    in one line instead of failing in its lifespan.
    """
    _check_can_serve(settings, ingest)
    auth = LoopbackOnly()
    mcp = McpEndpoint(settings, auth)
    started = time.monotonic()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = Engine(settings.database_url, machine=settings.machine, address=address)
        health = IngestHealth() if ingest else None
        app.state.engine = engine
        app.state.health = health
        app.state.hub = hub = Hub(engine)
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
            **_ingest_facts(health), codex_homes=[str(home) for home in settings.codex_homes]
        )
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
            await engine.close()

    async def sync(ws: WebSocket) -> None:
        await SyncSession(ws, ws.app.state.engine, auth).run(ws.app.state.hub)

    async def version(request: Request) -> Response:
        return JSONResponse({"name": "sessionbase", "version": package_version("sessionbase")})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        """Ready once the first import pass is done, and not while ingest is stopped or
        starting over (``ingest`` says why it stopped, and when it retries)."""
        health: IngestHealth | None = request.app.state.health
        following = health is None or health.state in (IngestState.FOLLOWING,
                                                       IngestState.STANDBY)  # fmt: skip
        ready = request.app.state.ready.is_set() and following
        engine: Engine = request.app.state.engine
        body = {
            "ready": ready,
            "semantic": request.app.state.semantic.is_set(),
            "version": engine.version,
            "subscriptions": engine.subscription_count,
            "connections": len(request.app.state.hub.sessions),
            "ingest": health.summary() if health is not None else None,
        }
        listening = engine.listener_state()
        if listening is not None:
            body["commit_listener"] = listening
        return JSONResponse(body, status_code=200 if ready else 503)

    routes = [
        Route("/version", version),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        WebSocketRoute("/api/{client_version:str}/sync", sync),
        WebSocketRoute("/api/sync", sync),  # the PyPI client's path (no version)
        *convex_routes(),
        *json_routes(),
        Route("/mcp", mcp),  # the Model Context Protocol (Streamable HTTP)
        *web_routes(),  # last: the app answers every other GET
    ]
    middleware = [Middleware(RequestGuard, public_origins=settings.public_urls)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


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

    def run() -> int:
        nonlocal store
        if store is None:
            store = open_store(settings.database_url)
            store.on_commit = engine.notify_commit
            index.embed(["warm up"])  # load the model now, not on the first query
        return index.catch_up(store, stop=stopping.is_set)

    worker = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-embed")  # one connection
    loop = asyncio.get_running_loop()
    try:
        while True:
            if not ingesting():
                await asyncio.sleep(STANDBY_SECONDS)
                continue
            try:
                embedded = await loop.run_in_executor(worker, run)
                caught_up.set()
                if embedded:
                    log.info("embedded %d new units for semantic search", embedded)
            except Exception:
                log.exception("embedding failed; retrying later")
            wake.clear()
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
