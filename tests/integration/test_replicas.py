"""Several `sessionbase serve` replicas on one PostgreSQL database, with the official npm
`convex` client on each.

Replica A ingests the Codex home; B and C only serve (``--no-ingest``). Every commit is a
commit-log row plus a NOTIFY; each replica LISTENs, then reads the commit log from the version
it last applied, so what A ingests reaches clients on B and C, and a rename made through C
reaches clients on A. The raw protocol connections check that every Transition starts where
the last one ended and never goes back in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.builders.codex import Rollout
from tests.integration.test_convex_clients import NodeClient, npm_node
from tests.integration.test_sync_semantics import Conn
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
WAIT = 20.0


class Replicas:
    """Three replicas on one database: ``a`` ingests ``home``, ``b`` and ``c`` serve."""

    def __init__(self, root: Path, database: str) -> None:
        self.database = database
        self.home = root / "codex-home"
        Rollout().path_in(self.home).parent.mkdir(parents=True)
        (self.home / "archived_sessions").mkdir()
        db = ("--database", database)
        self.a = ServerProcess(root / "a", self.home, extra=db)
        self.b = ServerProcess(root / "b", self.home, extra=(*db, "--no-ingest"))
        self.c = ServerProcess(root / "c", self.home, extra=(*db, "--no-ingest"))
        self.all = (self.a, self.b, self.c)

    def start(self) -> None:
        for server in self.all:
            server.launch()
        for server in self.all:
            server.wait_ready()

    def stop(self) -> None:
        for server in self.all:
            server.stop()

    def query(self, server: ServerProcess, path: str, args: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{server.url}/v1/query/{path}", data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def readyz(self, server: ServerProcess) -> dict[str, Any]:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as response:
            body: dict[str, Any] = json.load(response)
            return body

    def last_version(self) -> int:
        with psycopg.connect(self.database) as conn:
            row = conn.execute("SELECT coalesce(max(version), 0) FROM commit_log").fetchone()
            assert row is not None
            return int(row[0])

    def wait_all_at_last_version(self) -> int:
        """Every replica's live queries at the newest commit (none left to apply)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            last = self.last_version()
            if all(self.readyz(s)["version"] >= last for s in self.all):
                return last
            time.sleep(0.05)
        raise AssertionError("replicas did not catch up with the commit log")

    def wait_thread(self, thread_id: str, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            thread = self.query(self.a, "threads:get", {"id": thread_id})
            if thread is not None and thread["messageCount"] == count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{thread_id} never had {count} messages:\n{self.a.log()}")


@pytest.fixture(scope="module")
def node() -> str:
    return npm_node()


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Replicas]:
    cluster = Replicas(tmp_path, pg_url)
    cluster.start()
    yield cluster
    cluster.stop()


def test_what_one_replica_ingests_or_renames_reaches_clients_of_every_replica(
    replicas: Replicas, node: str, tmp_path: Path
) -> None:
    rollout = Rollout(cwd="/work/replicas")
    rollout.user("first question").assistant("first answer")
    path = rollout.write(replicas.home)
    replicas.wait_thread(rollout.thread_id, 2)
    clients = {
        name: NodeClient(node, server.url, tmp_path / f"client-{name}.log")
        for name, server in zip("abc", replicas.all, strict=True)
    }
    try:
        for client in clients.values():
            client.subscribe("tail", "messages:tail", {"threadId": rollout.thread_id, "n": 5})
            client.subscribe("thread", "threads:get", {"id": rollout.thread_id})
            client.update("tail", lambda v: bool(v) and v[-1]["text"] == "first answer")
        marks = {name: client.mark() for name, client in clients.items()}
        rollout.append_to(path, "appended while B and C watch")
        for name, client in clients.items():
            client.update(
                "tail", lambda v: v[-1]["text"] == "appended while B and C watch",
                since=marks[name],
            )  # fmt: skip
        marks = {name: client.mark() for name, client in clients.items()}
        result = clients["c"].mutate(
            "threads:rename", {"id": rollout.thread_id, "title": "Renamed on C"}
        )
        assert "error" not in result, result
        for name, client in clients.items():
            client.update("thread", lambda v: v["title"] == "Renamed on C", since=marks[name])
        assert all(client.errors() == [] for client in clients.values())
    finally:
        for client in clients.values():
            client.close()


def test_transitions_on_every_replica_are_gapless_and_monotonic(replicas: Replicas) -> None:
    rollout = Rollout(cwd="/work/replicas")
    rollout.user("start")
    path = rollout.write(replicas.home)
    replicas.wait_thread(rollout.thread_id, 1)

    async def body() -> None:
        conns = []
        for server in replicas.all:
            conn = await Conn.open(server.url.replace("http", "ws") + "/api/1.0/sync")
            await conn.add({1: ("messages:tail", {"threadId": rollout.thread_id, "n": 3})})
            conns.append(conn)
        for n in range(12):
            rollout.append_to(path, f"message {n}")
            await asyncio.sleep(random.uniform(0, 0.05))

        def done(conn: Conn) -> bool:
            rows = conn.results.get(1) or []
            return bool(rows) and rows[-1]["text"] == "message 11"

        for conn in conns:  # Conn checks each Transition as it applies it
            await conn.until(done)
            assert conn.transitions
            await conn.close()

    asyncio.run(body())


def test_subscriptions_equal_a_fresh_query_after_random_changes(replicas: Replicas) -> None:
    """The oracle: after appends, renames (through any replica) and archive moves, every live
    subscription on every replica equals a fresh query at the same version."""
    rng = random.Random(16)
    threads: list[tuple[Rollout, Path]] = []
    for n in range(3):
        rollout = Rollout(cwd=f"/work/oracle-{n}")
        rollout.user(f"thread {n} begins")
        threads.append((rollout, rollout.write(replicas.home)))
    for rollout, _ in threads:
        replicas.wait_thread(rollout.thread_id, 1)
    subscriptions: dict[int, tuple[str, dict[str, Any]]] = {1: ("threads:recent", {"limit": 10})}
    for n, (rollout, _) in enumerate(threads):
        subscriptions[10 + n] = ("messages:tail", {"threadId": rollout.thread_id, "n": 4})
        subscriptions[20 + n] = ("threads:get", {"id": rollout.thread_id})

    async def body() -> None:
        conns = []
        for server in replicas.all:
            conn = await Conn.open(server.url.replace("http", "ws") + "/api/1.0/sync")
            await conn.add(subscriptions)
            conns.append(conn)
        for step in range(30):
            rollout, path = rng.choice(threads)
            action = rng.random()
            if action < 0.6:
                rollout.append_to(path, f"step {step}")
            elif action < 0.85:
                target = rng.choice(conns)
                await target.mutation("threads:rename", {"id": rollout.thread_id,
                                                         "title": f"title {step}"})  # fmt: skip
            elif "archived_sessions" not in str(path):
                moved = replicas.home / "archived_sessions" / path.name
                shutil.move(path, moved)
                threads[threads.index((rollout, path))] = (rollout, moved)
            await asyncio.sleep(rng.uniform(0, 0.1))
        await asyncio.to_thread(time.sleep, 1.5)  # let the last appends be ingested
        await asyncio.to_thread(replicas.wait_all_at_last_version)
        for conn, server in zip(conns, replicas.all, strict=True):
            with contextlib.suppress(TimeoutError):  # take every Transition already sent
                await conn.until(lambda c: False, within=1.0)
            for qid, (fn, args) in subscriptions.items():
                fresh = await asyncio.to_thread(replicas.query, server, fn, args)
                assert conn.results.get(qid) == fresh, (server.url, fn, args)
            await conn.close()

    asyncio.run(body())


def test_a_dropped_listen_connection_is_noticed_and_nothing_is_missed(
    replicas: Replicas,
) -> None:
    rollout = Rollout(cwd="/work/replicas")
    rollout.user("before the drop")
    path = rollout.write(replicas.home)
    replicas.wait_thread(rollout.thread_id, 1)
    with psycopg.connect(replicas.database, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'sessionbase-listen'"
        ).fetchone()
    assert killed is not None
    assert killed[0] == 3
    rollout.append_to(path, "after the drop")
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        states = [replicas.readyz(s)["commit_listener"] for s in replicas.all]
        if all(s["connected"] and s["reconnections"] == 1 for s in states):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"listeners did not reconnect: {states}")
    for server in replicas.all:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            tail = replicas.query(server, "messages:tail", {"threadId": rollout.thread_id, "n": 1})
            if tail and tail[-1]["text"] == "after the drop":
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{server.url} never saw the message appended after the drop")


def test_status_lists_the_replicas_and_who_ingests(replicas: Replicas, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sessionbase.cli import cli

    def status() -> dict[str, Any]:
        result = CliRunner().invoke(
            cli, ["--database", replicas.database, "--data-dir", str(tmp_path / "cli"),
                  "--codex-home", str(replicas.home), "status", "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        body: dict[str, Any] = json.loads(result.output)
        return body

    deadline = time.monotonic() + WAIT
    while len((report := status())["replicas"]) < 3:
        assert time.monotonic() < deadline, report["replicas"]
        time.sleep(0.2)
    assert report["backend"] == "postgresql"
    assert {r["pid"] for r in report["replicas"]} == {s.proc.pid for s in replicas.all if s.proc}
    assert all(isinstance(r["lag"], int) and r["lag"] >= 0 for r in report["replicas"])
    assert [i["pid"] for i in report["ingesters"]] == [replicas.a.proc.pid]  # type: ignore[union-attr]
