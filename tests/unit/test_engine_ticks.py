"""Where a tick runs: known-cheap queries on the event loop, anything else on the reader
thread, so that a slow query never stalls the connections."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from sessionbase.live.engine import INLINE_TICK_SECONDS, Engine, QueryResult, Subscription
from sessionbase.store import open_store
from sessionbase.store.base import UserChange


def test_cheap_ticks_run_on_the_loop_and_others_on_the_reader_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "sessionbase.db"
    open_store(database).close()
    engine = Engine(database)
    ran_on: list[str] = []
    evaluate = Engine._evaluate

    def traced(
        self: Engine, subs: list[Subscription]
    ) -> tuple[int, dict[Subscription, QueryResult]]:
        ran_on.append(threading.current_thread().name)
        return evaluate(self, subs)

    monkeypatch.setattr(Engine, "_evaluate", traced)

    async def body() -> None:
        engine._loop = asyncio.get_running_loop()  # ticks by hand: no background task
        loop_thread = threading.current_thread().name
        try:
            sub = engine.subscribe("projects:list", {})
            await engine.tick()  # never run: its cost is unknown
            assert ran_on[-1].startswith("sessionbase-live")
            assert sub.ready
            assert sub.value_json == "[]"
            assert sub.seconds is not None  # measured; set below, so no test depends on speed
            sub.seconds = INLINE_TICK_SECONDS / 10

            writer = open_store(database)
            writer.apply_user_changes(
                [UserChange("project", "p1", {"record": {"name": "inline", "working_dir": "/w"}})],
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
