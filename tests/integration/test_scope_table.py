"""Every scope boundary against a real `sessionbase serve --require-auth`, from one table.

The functions come from the live registry and the routes from the app ``create_app`` builds,
so a function or route added without a row here fails the test. For each function, through
each way one is called (``/v1/<kind>/<path>``, Convex's ``/api/query|mutation`` and the sync
WebSocket): nobody known is refused as unauthenticated, a device holding every scope but the
one needed is refused for that scope (a 403, a failed query or mutation: never a 500), and a
device holding that scope alone gets its answer. A ``read`` device cannot rename a thread; a
``write`` device cannot make a pairing code.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from starlette.routing import Route, WebSocketRoute

from sessionbase import config
from sessionbase.auth import devices
from sessionbase.auth.keys import ensure_key
from sessionbase.auth.scopes import SCOPES, Scope
from sessionbase.live.functions import registry
from sessionbase.server import create_app
from sessionbase.server.access import Access, access_of
from sessionbase.store import open_store
from tests.builders.codex import Rollout
from tests.integration.test_mcp_clients import ACCEPT, INITIALIZE
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
Args = Callable[["World"], dict[str, Any]]
PAGE = {"numItems": 10, "cursor": None}

FUNCTIONS: dict[str, tuple[Scope, Args]] = {
    "projects:list": ("read", lambda w: {}),
    "projects:get": ("read", lambda w: {"id": w.project}),
    "projects:save": ("write", lambda w: {"name": "scoped"}),
    "projects:remove": ("write", lambda w: {"id": w.project}),
    "threads:recent": ("read", lambda w: {}),
    "threads:list": ("read", lambda w: {"paginationOpts": PAGE}),
    "threads:get": ("read", lambda w: {"id": w.thread}),
    "threads:rename": ("write", lambda w: {"id": w.thread, "title": "renamed"}),
    "threads:setArchived": ("write", lambda w: {"id": w.thread, "archived": False}),
    "threads:setPinned": ("write", lambda w: {"id": w.thread, "pinned": True}),
    "messages:list": ("read", lambda w: {"threadId": w.thread, "paginationOpts": PAGE}),
    "messages:tail": ("read", lambda w: {"threadId": w.thread, "n": 2}),
    "skills:list": ("read", lambda w: {}),
    "status:get": ("read", lambda w: {}),
    "search:messages": ("read", lambda w: {"q": "question", "mode": "text"}),
    "search:threads": ("read", lambda w: {"q": "question", "mode": "text"}),
    "messages:similar": ("read", lambda w: {"messageId": f"{w.thread}:0"}),
    "threads:similar": ("read", lambda w: {"threadId": w.thread}),
    "devices:list": ("admin", lambda w: {}),
    "devices:revoke": ("admin", lambda w: {"id": w.spare_device()}),
    "devices:rename": ("admin", lambda w: {"id": w.devices["read"][0], "name": "renamed"}),
    "pairing:create": ("admin", lambda w: {"scopes": ["admin"], "ttlSeconds": 60}),
}
"""Each function: the scope it needs, and arguments it accepts (so a call allowed succeeds)."""

Probe = tuple[str, str, dict[str, Any]]  # method, path, httpx keywords
ROUTES: dict[str, tuple[Access, Probe | None]] = {
    "/version": ("public", ("GET", "/version", {})),
    "/healthz": ("public", ("GET", "/healthz", {})),
    "/readyz": ("public", ("GET", "/readyz", {})),
    "/api/{client_version:str}/sync": ("public", None),  # the sync socket: below
    "/api/sync": ("public", None),
    "/api/query": ("function", None),  # every function: below
    "/api/mutation": ("function", None),
    "/api/action": ("function", ("POST", "/api/action", {"json": {"path": "x:y", "args": [{}]}})),
    "/v1/{kind:str}/{path:str}": ("function", None),
    "/openapi.json": ("read", ("GET", "/openapi.json", {})),
    "/auth/pair": ("public", ("POST", "/auth/pair", {"json": {"code": "AAAA-AAAA"}})),
    "/auth/token": ("public", ("POST", "/auth/token", {"json": {}})),
    "/mcp": ("read", ("POST", "/mcp", {"json": INITIALIZE, "headers": {"Accept": ACCEPT}})),
    "/{path:path}": ("public", ("GET", "/", {})),
}
"""Each route: what it needs, and a request that it answers without a 401 or 403 when allowed."""


@dataclass
class World:
    """The served data dir: a thread, a project, and devices by the scopes they hold
    (``read``: that one alone; ``-read``: every scope but that one)."""

    data: Path
    thread: str = ""
    project: str = ""
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # id, secret
    tokens: dict[str, str] = field(default_factory=dict)

    def pair(self, scopes: tuple[str, ...], name: str) -> tuple[str, str]:
        key = ensure_key(self.data)
        with open_store(self.data / "sessionbase.db") as store:
            code = devices.create_pairing(store, key, name, scopes, 600, "test")
            device, secret = devices.redeem(store, key, code.code, name, None, None)
        return str(device["id"]), secret

    def spare_device(self) -> str:
        """A device made to be revoked."""
        return self.pair(("read",), f"spare-{uuid.uuid4().hex[:6]}")[0]


def holders() -> dict[str, tuple[str, ...]]:
    needed = sorted({scope for scope, _ in FUNCTIONS.values()} | {"read"})
    groups = {scope: (scope,) for scope in needed}
    groups |= {f"-{scope}": tuple(s for s in SCOPES if s != scope) for scope in needed}
    return groups


def app_routes(tmp_path: Path) -> dict[str, Access]:
    """The routes of the app `serve` runs, with what each declares."""
    settings = config.load(environ={}, overrides={"data_dir": tmp_path / "listing",
                                                  "codex_homes": (tmp_path / "none",)})  # fmt: skip
    app = create_app(settings, ingest=False)
    return {
        route.path: access_of(route)
        for route in app.routes
        if isinstance(route, Route | WebSocketRoute)
    }


def test_the_tables_cover_every_function_and_route(tmp_path: Path) -> None:
    registered = {fn.path: fn.scope for fn in registry}
    assert registered == {path: scope for path, (scope, _) in FUNCTIONS.items()}
    assert app_routes(tmp_path) == {path: access for path, (access, _) in ROUTES.items()}


def refused_for(scope: str) -> Callable[[str], bool]:
    return lambda message: f"needs the {scope!r} scope" in message


def unauthenticated(message: str) -> bool:
    return "needs authentication" in message


class Caller:
    """One caller's HTTP client and sync connection."""

    def __init__(self, url: str, token: str | None) -> None:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=30,
                                      trust_env=False)  # fmt: skip
        self.ws_url = url.replace("http://", "ws://") + "/api/1.31.0/sync"
        self.token = token
        self.query_id = 0
        self.request_id = 0
        self.query_set = 0

    async def open(self) -> None:
        self.ws = await websockets.connect(self.ws_url, proxy=None, ping_interval=None)
        await self.send({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0,
                         "lastCloseReason": None, "clientTs": 0})  # fmt: skip
        if self.token is not None:
            await self.send({"type": "Authenticate", "tokenType": "User", "value": self.token,
                             "baseVersion": 0})  # fmt: skip

    async def close(self) -> None:
        await self.ws.close()
        await self.http.aclose()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def receive(self, match: Callable[[dict[str, Any]], Any]) -> Any:
        async with asyncio.timeout(20):
            while True:
                found = match(orjson.loads(await self.ws.recv()))
                if found is not None:
                    return found

    async def http_call(self, kind: str, path: str, args: dict[str, Any]) -> tuple[int, str]:
        """``/v1``: the status and the error message (or the body)."""
        response = await self.http.post(f"/v1/{kind}/{path}", json=args)
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        return response.status_code, error["message"] if error else response.text

    async def convex_call(self, kind: str, path: str, args: dict[str, Any]) -> tuple[int, str]:
        """Convex's HTTP API: the status and the error message (or the body)."""
        response = await self.http.post(f"/api/{kind}", json={"path": path, "args": [args]})
        body = response.json()
        return response.status_code, body.get("message") or body.get("errorMessage") or ""

    async def sync_call(self, kind: str, path: str, args: dict[str, Any]) -> tuple[bool, str]:
        """Over the socket: whether it succeeded, and the error message."""
        if kind == "mutation":
            self.request_id += 1
            rid = self.request_id
            await self.send({"type": "Mutation", "requestId": rid, "udfPath": path,
                             "args": [args]})  # fmt: skip
            reply = await self.receive(
                lambda m: m if m["type"] == "MutationResponse" and m["requestId"] == rid else None
            )
            return reply["success"], "" if reply["success"] else str(reply["result"])
        self.query_id += 1
        qid = self.query_id
        await self.send({"type": "ModifyQuerySet", "baseVersion": self.query_set,
                         "newVersion": self.query_set + 1,
                         "modifications": [{"type": "Add", "queryId": qid, "udfPath": path,
                                            "args": [args]}]})  # fmt: skip
        self.query_set += 1

        def result(message: dict[str, Any]) -> tuple[bool, str] | None:
            if message["type"] == "AuthError":
                return False, f"AuthError: {message['error']}"
            for mod in message.get("modifications", []) if message["type"] == "Transition" else []:
                if mod.get("queryId") == qid and mod["type"] == "QueryUpdated":
                    return True, ""
                if mod.get("queryId") == qid and mod["type"] == "QueryFailed":
                    return False, str(mod["errorMessage"])
            return None

        return await self.receive(result)


async def check_functions(url: str, world: World) -> list[str]:
    """Every function through every path, as nobody, as a device lacking its scope and as a
    device holding it alone; the problems found."""
    problems: list[str] = []
    callers = {"anonymous": Caller(url, None)}
    callers |= {group: Caller(url, token) for group, token in world.tokens.items()}
    for caller in callers.values():
        await caller.open()
    try:
        for fn in registry:
            scope, make_args = FUNCTIONS[fn.path]
            for who, expect in (("anonymous", unauthenticated), (f"-{scope}", refused_for(scope)),
                                (scope, None)):  # fmt: skip
                caller = callers[who]
                status, message = await caller.http_call(fn.kind, fn.path, make_args(world))
                wanted = 200 if expect is None else (401 if who == "anonymous" else 403)
                if status != wanted or (expect is not None and not expect(message)):
                    problems.append(f"/v1 {fn.path} as {who}: {status} {message[:200]}")
                status, message = await caller.convex_call(fn.kind, fn.path, make_args(world))
                if status != wanted or (expect is not None and not expect(message)):
                    problems.append(f"/api {fn.path} as {who}: {status} {message[:200]}")
                ok, message = await caller.sync_call(fn.kind, fn.path, make_args(world))
                if ok != (expect is None) or (expect is not None and not expect(message)):
                    problems.append(f"sync {fn.path} as {who}: {ok} {message[:200]}")
    finally:
        for caller in callers.values():
            await caller.close()
    return problems


async def probe(http: httpx.AsyncClient, request: Probe, token: str | None) -> httpx.Response:
    method, target, options = request
    auth = {} if token is None else {"Authorization": f"Bearer {token}"}
    headers = {**options.get("headers", {}), **auth}
    rest = {k: v for k, v in options.items() if k != "headers"}
    return await http.request(method, target, headers=headers, **rest)


async def check_routes(url: str, world: World, routes: dict[str, Access]) -> list[str]:
    """Every route with a probe: a scope route refuses nobody (401) and a device without its
    scope (403) and answers one holding it alone; a public route answers anyone without a
    401 or 403 from the gate, and nothing answers a 500."""
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
        for path, access in routes.items():
            request = ROUTES[path][1]
            if request is None:
                continue
            if access in ("public", "function"):
                response = await probe(http, request, None)
                text = response.text
                if response.status_code >= 500 and response.status_code != 560:
                    problems.append(f"{path} as anonymous: {response.status_code} {text[:200]}")
                if "needs authentication" in text or "needs the" in text:
                    problems.append(f"{path} as anonymous is refused by the gate: {text[:200]}")
                continue
            for who, wanted in (("anonymous", 401), (f"-{access}", 403), (access, 200)):
                response = await probe(http, request, world.tokens.get(who))
                if response.status_code != wanted:
                    problems.append(
                        f"{path} as {who}: {response.status_code} {response.text[:200]}"
                    )
    return problems


def test_every_function_and_route_refuses_callers_without_its_scope(tmp_path: Path) -> None:
    routes = app_routes(tmp_path)
    home, data = tmp_path / "codex-home", tmp_path / "data"
    rollout = Rollout(cwd="/work/scoped")
    rollout.turn()
    rollout.user("first question").assistant("first answer")
    rollout.write(home)
    world = World(data)
    for group, scopes in holders().items():
        world.devices[group] = world.pair(scopes, group)
    server = ServerProcess(data, home, extra=("--require-auth",))
    with server:
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as http:
            for group, (_, secret) in world.devices.items():
                issued = http.post("/auth/token", json={},
                                   headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
                assert issued.status_code == 200, issued.text
                world.tokens[group] = issued.json()["token"]
            reader = {"Authorization": f"Bearer {world.tokens['read']}"}
            writer = {"Authorization": f"Bearer {world.tokens['write']}"}
            threads = http.post("/v1/query/threads:recent", json={}, headers=reader).json()
            world.thread = threads[0]["id"]
            made = http.post("/v1/mutation/projects:save", json={"name": "p"}, headers=writer)
            world.project = made.json()

        problems = asyncio.run(check_functions(server.url, world))
        problems += asyncio.run(check_routes(server.url, world, routes))
        assert not problems, "\n".join(problems)
