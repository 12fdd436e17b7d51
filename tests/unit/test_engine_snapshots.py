"""A result the background lane computed must not be taken as current past a commit that a
foreground tick has already read but not yet recorded.

A real store, real ingest and both lanes, ticked by hand so that the interleaving is forced:
the background lane runs a new subscription at the snapshot before a commit; that commit is
read by a foreground tick, which is still on the reader thread when the background result
comes back. The commit changed the result, so the result must run again; before the fix it
was kept, held for every later version, and a connection showed it beside its other queries'
newer results (a thread listed with 24 messages beside its transcript's 18).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson
import pytest

from sessionbase.config import Settings
from sessionbase.live.engine import Engine
from tests.builders.codex import Rollout
from tests.support.mirror import sync


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test here runs on SQLite, then on PostgreSQL."""
    return backend_settings


def texts(value_json: str) -> list[str]:
    return [m["text"] for m in orjson.loads(value_json)]


def test_a_background_result_is_rerun_after_a_commit_a_tick_in_flight_read(
    codex_home: Path, settings: Settings
) -> None:
    rollout = Rollout(cwd="/work/snapshots")
    rollout.user("first")
    rollout.write(codex_home)
    sync(settings)
    engine = Engine(settings.database_url)

    async def body() -> None:
        engine._loop = asyncio.get_running_loop()  # ticks by hand: no background task
        try:
            await engine.tick()  # the engine's version: the commit that wrote "first"
            tail = engine.subscribe("messages:tail", {"threadId": rollout.thread_id, "n": 10})
            await engine.tick()  # never run: queued for the background lane
            assert not tail.ready

            gate = threading.Event()  # holds the next foreground tick on the reader thread
            engine._reader.submit(gate.wait)
            foreground = asyncio.create_task(engine.tick())
            await asyncio.sleep(0)  # it has chosen what to run, and waits for the reader
            background = asyncio.create_task(engine.run_heavy())
            # The background lane's snapshot is taken before the commit below.
            await asyncio.to_thread(lambda: engine._background.submit(lambda: None).result())
            rollout.append_to(rollout.path_in(codex_home), "second")
            sync(settings)  # a commit the held tick will read
            gate.set()
            await foreground
            await background
            assert tail.ready
            assert texts(tail.value_json) == ["first"]  # computed before "second"

            while await engine.tick():
                await engine.run_heavy()
            assert texts(tail.value_json) == ["first", "second"]
            assert tail.computed_at == tail.valid_at == engine.version
        finally:
            await engine.close()

    asyncio.run(body())
