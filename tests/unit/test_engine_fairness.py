"""One connection's many expensive queries must not hold up another's cheap update.

A real store and the real search functions: a "greedy" connection holds hundreds of
distinct searches that every commit invalidates, a "modest" one a ``messages:tail``. After a
commit the tail is current within the first ticks, while searches still wait their turn.
Before the fair scheduler, one tick re-ran everything and the tail waited for all of it.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

from sessionbase.config import Settings
from sessionbase.live.engine import Engine
from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.mirror import sync

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def write_thread(codex_home: Path, hour: int) -> Rollout:
    rollout = Rollout(start=DEFAULT_START + timedelta(hours=hour), cwd="/work/fair")
    turn = rollout.turn()
    for i, (a, b) in enumerate(itertools.islice(itertools.permutations(WORDS, 2), 40)):
        rollout.user(f"{a} {b} message {i} of thread {hour}")
    rollout.end_turn(turn)
    rollout.write(codex_home)
    return rollout


async def settle(engine: Engine) -> None:
    """Tick by hand (no background tasks here) until nothing is due in either lane."""
    while await engine.tick():
        await engine.run_heavy()


def test_a_cheap_update_does_not_wait_for_a_neighbours_searches(
    codex_home: Path, settings: Settings
) -> None:
    threads = [write_thread(codex_home, h) for h in range(5)]
    sync(settings)
    engine = Engine(settings.database_url)

    async def body() -> None:
        engine._loop = asyncio.get_running_loop()  # ticks by hand: no background task
        try:
            tail = engine.subscribe(
                "messages:tail", {"threadId": threads[0].thread_id, "n": 5}, owner="modest"
            )
            searches = [
                engine.subscribe(
                    "search:messages", {"q": f"{a} {b}", "mode": "text"}, owner="greedy"
                )  # fmt: skip
                for a, b in itertools.islice(itertools.permutations(WORDS, 2), 130)
            ]
            await settle(engine)  # everything once
            assert all(s.ready and s.error is None for s in searches)

            threads[0].append_to(threads[0].path_in(codex_home), "alpha bravo, one more")
            sync(settings)  # one commit: it invalidates the tail and every search

            ticks = 0
            while tail.computed_at < engine.version or ticks == 0:
                await engine.tick()
                ticks += 1
                assert ticks <= 2, "the tail waited more than two slices"
            assert "one more" in tail.value_json
            waiting = [s for s in searches if s.stale]
            assert waiting, "every search re-ran before the tail was published"

            await settle(engine)  # and the searches get there in the end
            assert all(s.computed_at == engine.version for s in searches)
        finally:
            await engine.close()

    asyncio.run(body())
