"""Replicas through PostgreSQL faults, on a private server this test starts and stops (the
shared one on 127.0.0.1:5432 is never touched): a restart under load, and the whole server
frozen with SIGSTOP for 10 s. Replica A ingests, B only serves; raw protocol clients on both
check every Transition (gapless, versions never going back) and record any failed query.
Also: the server process behind one connection held still while its store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from sessionbase.store import open_store
from tests.builders.codex import Rollout
from tests.conftest import integration_required
from tests.integration.test_sync_semantics import Conn
from tests.support.pg_instance import PrivatePostgres, unavailable_reason
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
WAIT = 60.0


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    reason = unavailable_reason()
    if reason is not None:
        if integration_required():
            pytest.fail(f"SESSIONBASE_REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    server = PrivatePostgres()
    server.start()
    yield server
    server.close()


class Pair:
    """Replica A ingests ``home``; replica B serves; one thread being appended to."""

    def __init__(self, root: Path, database: str) -> None:
        self.database = database
        self.home = root / "codex-home"
        self.rollout = Rollout(cwd="/work/faults")
        self.rollout.user("message 0")
        self.path = self.rollout.write(self.home)
        self.written = ["message 0"]
        db = ("--database", database)
        env = {"SESSIONBASE_RESCAN_INTERVAL": "1"}
        self.a = ServerProcess(root / "a", self.home, extra=db, env=env)
        self.b = ServerProcess(root / "b", self.home, extra=(*db, "--no-ingest"), env=env)

    def append(self) -> None:
        text = f"message {len(self.written)}"
        before = len(self.rollout.lines)
        self.rollout.user(text)
        with open(self.path, "ab") as f:
            f.write(b"".join(line + b"\n" for line in self.rollout.lines[before:]))
        self.written.append(text)

    def stored(self) -> list[str]:
        with psycopg.connect(self.database) as conn:
            rows = conn.execute(
                "SELECT text FROM messages WHERE thread_id = %s ORDER BY idx",
                (self.rollout.thread_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def query(self, server: ServerProcess, path: str, args: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{server.url}/v1/query/{path}", data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


@pytest.fixture
def pair(tmp_path: Path, private_pg: PrivatePostgres) -> Iterator[Pair]:
    served = Pair(tmp_path, private_pg.url)
    served.a.start(timeout=WAIT)
    served.b.start(timeout=WAIT)
    yield served
    served.a.stop()
    served.b.stop()


def failures(conn: Conn) -> list[dict[str, Any]]:
    return [m for t in conn.transitions for m in t["modifications"] if m["type"] == "QueryFailed"]


def last_is(text: str) -> Any:
    def done(conn: Conn) -> bool:
        rows = conn.results.get(1) or []
        return bool(rows) and rows[-1]["text"] == text

    return done


async def subscribe(pair: Pair) -> list[Conn]:
    conns = []
    for server in (pair.a, pair.b):
        conn = await Conn.open(server.url.replace("http", "ws") + "/api/1.0/sync")
        await conn.add({1: ("messages:tail", {"threadId": pair.rollout.thread_id, "n": 5})})
        await conn.until(last_is("message 0"), within=WAIT)
        conns.append(conn)
    return conns


def test_a_postgres_restart_under_load_loses_and_duplicates_nothing(
    pair: Pair, private_pg: PrivatePostgres
) -> None:
    async def body() -> None:
        conns = await subscribe(pair)
        for n in range(60):
            pair.append()
            if n == 20:
                await asyncio.to_thread(private_pg.restart)
            await asyncio.sleep(0.02)
        for conn in conns:  # each Transition is checked as it is applied
            await conn.until(last_is(pair.written[-1]), within=WAIT)
            assert failures(conn) == []
            await conn.close()

    asyncio.run(body())
    assert pair.stored() == pair.written
    for server in (pair.a, pair.b):
        tail = pair.query(server, "messages:tail", {"threadId": pair.rollout.thread_id, "n": 5})
        assert [m["text"] for m in tail] == pair.written[-5:]


def test_a_frozen_postgres_leaves_clients_stale_but_subscribed(
    pair: Pair, private_pg: PrivatePostgres
) -> None:
    async def body() -> None:
        conns = await subscribe(pair)
        private_pg.freeze()
        try:
            pair.append()  # written while the database cannot take it
            frozen_until = time.monotonic() + 10
            while time.monotonic() < frozen_until:
                for conn in conns:  # read whatever comes: pings, never a failure
                    with contextlib.suppress(TimeoutError):
                        await conn.until(lambda c: False, within=0.5)
            for conn in conns:
                assert (conn.results.get(1) or [])[-1]["text"] == "message 0"  # stale
                assert failures(conn) == []
        finally:
            private_pg.thaw()
        pair.append()
        for conn in conns:
            await conn.until(last_is(pair.written[-1]), within=WAIT)
            assert failures(conn) == []
            await conn.close()

    asyncio.run(body())
    assert pair.stored() == pair.written


def test_a_closed_store_has_given_up_its_ingest_claim(private_pg: PrivatePostgres) -> None:
    """The next claim may come at once (a standby, or the next command): the server process
    that held the claim ending later, on a busy machine, must not refuse it."""
    home = ["/home/me/.codex"]
    first = open_store(private_pg.url, machine="laptop")
    assert first.claim_ingest(home)
    with psycopg.connect(private_pg.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'sessionbase-ingest'"
        ).fetchone()
    assert row is not None
    holder = psutil.Process(int(row[0]))
    claimed_after_close: list[bool] = []

    def close_then_claim() -> None:
        first.close()
        with open_store(private_pg.url, machine="laptop") as second:
            claimed_after_close.append(second.claim_ingest(home))

    holder.suspend()  # as a busy machine would leave it: not yet run, not yet ended
    closing = threading.Thread(target=close_then_claim)
    try:
        closing.start()
        closing.join(2.0)  # time enough to close and claim, were close() not to wait
    finally:
        holder.resume()
    closing.join()
    assert claimed_after_close == [True]
