"""Where a tick runs: known-cheap queries on the event loop, anything else on the reader
thread, so that a slow query never stalls the connections; a query never run before, or
slow, in the background lane (``live.scheduler``)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from sessionbase.live.engine import INLINE_TICK_SECONDS, Engine, Slice
from sessionbase.store import open_store
from sessionbase.store.base import Entity, UserChange


def test_cheap_ticks_run_on_the_loop_and_others_on_the_reader_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "sessionbase.db"
    open_store(database).close()
    engine = Engine(database)
    ran_on: list[str] = []
    evaluate = Engine._evaluate

    def traced(self: Engine, *args: Any) -> Slice:
        ran_on.append(threading.current_thread().name)
        return evaluate(self, *args)

    monkeypatch.setattr(Engine, "_evaluate", traced)

    async def body() -> None:
        engine._loop = asyncio.get_running_loop()  # ticks by hand: no background task
        loop_thread = threading.current_thread().name
        try:
            sub = engine.subscribe("projects:list", {})
            await engine.tick()  # never run: its cost is unknown, so not in this tick...
            assert ran_on[-1].startswith("sessionbase-live")
            assert not sub.ready
            assert await engine.run_heavy()  # ...but in the background lane, as if slow
            assert sub.ready
            assert sub.value_json == "[]"
            assert sub.seconds is not None  # measured; set below, so no test depends on speed
            sub.seconds = INLINE_TICK_SECONDS / 10

            writer = open_store(database)
            writer.apply_user_changes(
                [
                    UserChange(
                        Entity.PROJECT, "p1", {"record": {"name": "inline", "working_dir": "/w"}}
                    )
                ],
                None,
                None,
            )
            writer.close()
            await engine.tick()  # cheap now: on the loop, and it sees the new commit
            assert ran_on[-1] == loop_thread
            assert '"inline"' in sub.value_json

            sub.seconds = INLINE_TICK_SECONDS * 10  # as if the last run had been slow
            await engine.tick()
            assert ran_on[-1].startswith("sessionbase-live")
        finally:
            await engine.close()

    asyncio.run(body())


async def settle(engine: Engine) -> None:
    """Tick by hand (no background tasks here) until nothing is due in either lane."""
    while await engine.tick():
        await engine.run_heavy()


def test_queries_reading_server_facts_rerun_when_they_change(tmp_path: Path) -> None:
    database = tmp_path / "sessionbase.db"
    open_store(database).close()
    engine = Engine(database)

    async def body() -> None:
        engine._loop = asyncio.get_running_loop()
        try:
            engine.set_facts(mirror="catching_up", codex_homes=["/h"])
            status = engine.subscribe("status:get", {})
            projects = engine.subscribe("projects:list", {})
            await settle(engine)
            assert '"mirror":"catching_up"' in status.value_json
            assert '"codexHomes":["/h"]' in status.value_json
            seen = (status.changed_at, projects.changed_at, engine.executions)

            engine.set_facts(mirror="catching_up")  # no change: nothing to re-run
            await engine.tick()
            assert engine.executions == seen[2]

            engine.set_facts(mirror="live")
            assert status.stale  # only the query that read the facts
            assert not projects.stale
            await settle(engine)
            assert '"mirror":"live"' in status.value_json
            assert engine.executions == seen[2] + 1
            # No commit moved the version, yet connections must see the new result: it is
            # marked changed (what a connection compares with what it last sent).
            assert status.changed_at != seen[0]
            assert projects.changed_at == seen[1]
        finally:
            await engine.close()

    asyncio.run(body())


@pytest.mark.integration
def test_a_shared_database_never_ticks_on_the_loop(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL query can wait on the network (or on a frozen server): however cheap its
    last run was, a tick on a shared database runs on the reader thread."""
    open_store(pg_url).close()
    engine = Engine(pg_url)
    ran_on: list[str] = []
    evaluate = Engine._evaluate

    def traced(self: Engine, *args: Any) -> Slice:
        ran_on.append(threading.current_thread().name)
        return evaluate(self, *args)

    monkeypatch.setattr(Engine, "_evaluate", traced)

    async def body() -> None:
        await engine.start()
        try:
            sub = engine.subscribe("projects:list", {})
            await engine.tick()
            sub.seconds = INLINE_TICK_SECONDS / 10  # as cheap as can be
            await engine.tick()
            assert ran_on
            assert all(name.startswith("sessionbase-live") for name in ran_on), ran_on
        finally:
            await engine.close()

    asyncio.run(body())
