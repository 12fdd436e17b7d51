"""A connection that asks for a great deal of work, against a real ``sessionbase serve``.

As it was found: one connection with 1,000 distinct ``search:messages`` subscriptions made
every commit re-run all of them before anyone else's update went out (another client's update
took seconds instead of milliseconds). Now a connection runs at most ``MAX_DISTINCT_QUERIES``
different queries, and the engine re-runs what is due fairly across connections, so a
client's cheap update goes out while a neighbour's searches still wait their turn: the
server's ``backlog`` is not empty when it arrives. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from sessionbase.server.sync import MAX_DISTINCT_QUERIES, TOO_MANY_QUERIES
from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.raw_ws import SYNC_PATH, SilentSocket
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray"
).split()


class Served:
    def __init__(self, server: ServerProcess, codex_home: Path) -> None:
        self.server = server
        self.codex_home = codex_home
        self.http = httpx.Client(base_url=server.url, timeout=30, trust_env=False)
        self.ws_url = server.url.replace("http://", "ws://") + SYNC_PATH

    def readyz(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/readyz").json()
        return body

    def messages(self, thread_id: str) -> int:
        got = self.http.post("/v1/query/threads:get", json={"id": thread_id}).json()
        return 0 if got is None else int(got["messageCount"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("neighbour")
    codex_home = root / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    with ServerProcess(root / "data", codex_home) as server:
        live = Served(server, codex_home)
        try:
            yield live
        finally:
            live.http.close()


def write_thread(codex_home: Path, hour: int, messages: int) -> Rollout:
    rollout = Rollout(start=DEFAULT_START + timedelta(hours=hour), cwd="/work/neighbour")
    turn = rollout.turn()
    pairs = itertools.cycle(itertools.permutations(WORDS, 2))
    for i in range(messages):
        a, b = next(pairs)
        rollout.user(f"{a} {b}: message {i} of thread {hour}")
    rollout.end_turn(turn)
    rollout.write(codex_home)
    return rollout


def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


async def connect(url: str) -> Any:
    ws = await websockets.connect(url, max_size=None, compression=None, proxy=None)
    await ws.send(orjson.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()),
                                "connectionCount": 0, "lastCloseReason": None,
                                "clientTs": 0}).decode())  # fmt: skip
    return ws


def add(queries: list[tuple[str, dict[str, Any]]], base: int = 0) -> str:
    mods = [{"type": "Add", "queryId": base + i, "udfPath": path, "args": [args]}
            for i, (path, args) in enumerate(queries)]  # fmt: skip
    return orjson.dumps({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1,
                         "modifications": mods}).decode()  # fmt: skip


def test_a_connection_runs_a_bounded_number_of_different_queries(served: Served) -> None:
    thread = write_thread(served.codex_home, 1, 3)
    wait_for(lambda: served.messages(thread.thread_id) == 3, 30, "thread not imported")
    before = served.readyz()["subscriptions"]
    over = 5
    queries = [("messages:tail", {"threadId": thread.thread_id, "n": n})
               for n in range(1, MAX_DISTINCT_QUERIES + over + 1)]  # fmt: skip
    queries.append(queries[0])  # the same query again: shared, so not one more

    async def body() -> dict[int, Any]:
        ws = await connect(served.ws_url)
        try:
            await ws.send(add(queries))
            while True:
                message = orjson.loads(await ws.recv())
                if message["type"] == "Transition":
                    return {m["queryId"]: m for m in message["modifications"]}
        finally:
            await ws.close()

    results = asyncio.run(body())
    failed = sorted(q for q, m in results.items() if m["type"] == "QueryFailed")
    assert failed == list(range(MAX_DISTINCT_QUERIES, MAX_DISTINCT_QUERIES + over))
    assert {results[q]["errorMessage"] for q in failed} == {TOO_MANY_QUERIES}
    assert results[len(queries) - 1]["type"] == "QueryUpdated"  # the repeat runs
    assert results[len(queries) - 1]["value"] == results[0]["value"]
    wait_for(lambda: served.readyz()["subscriptions"] == before, 20, "subscriptions held")


def test_a_neighbours_searches_do_not_hold_up_a_cheap_update(served: Served) -> None:
    """1,000 searches that never read, on as many connections as the cap requires."""
    threads = [write_thread(served.codex_home, 10 + h, 60) for h in range(4)]
    watched = threads[0]
    wait_for(lambda: all(served.messages(t.thread_id) == 60 for t in threads), 30, "import")
    searches = [{"q": f"{a} {b}"} for a, b in itertools.permutations(WORDS, 2)][:1000]
    silent = []
    try:
        for start in range(0, len(searches), MAX_DISTINCT_QUERIES):
            neighbour = SilentSocket(served.server.port)
            neighbour.send({"type": "Connect", "sessionId": str(uuid.uuid4())})
            batch = searches[start : start + MAX_DISTINCT_QUERIES]
            neighbour.send(orjson.loads(add([("search:messages", q) for q in batch])))
            silent.append(neighbour)
        wait_for(lambda: served.readyz()["subscriptions"] >= len(searches), 60, "not subscribed")

        async def body() -> list[int]:
            ws = await connect(served.ws_url)
            backlogs = []
            try:
                await ws.send(add([("messages:tail", {"threadId": watched.thread_id, "n": 1})]))
                for i in range(3):
                    text = f"alpha bravo: the update {i}"
                    watched.append_to(watched.path_in(served.codex_home), text)
                    while True:  # its update, whatever the neighbour's searches are doing
                        message = orjson.loads(await ws.recv())
                        if (
                            message["type"] == "Transition"
                            and text in orjson.dumps(message).decode()
                        ):
                            break
                    backlogs.append(await asyncio.to_thread(lambda: served.readyz()["backlog"]))
            finally:
                await ws.close()
            return backlogs

        backlogs = asyncio.run(body())
    finally:
        for s in silent:
            s.close()
    # Each update went out while the neighbour's searches (all invalidated by the same
    # commit) were still waiting their turn.
    assert all(b > 0 for b in backlogs), backlogs
