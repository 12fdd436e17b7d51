"""A change the current watch has seen is handed over even when a new set of directories
replaces that watch right after it (``ingest.dirwatch``), on real inotify in ``tmp_path``.

watchfiles drops what a watch has not handed over yet when it stops, and hands a change over
only after it has stayed unchanged for a step: a watch replaced within that step lost it. That
is how serve missed a new ``sessions/`` folder created while Codex was also writing its
``skills/`` tree (whose folders made the watch change), and then ingested nothing until the
next safety-net rescan.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from watchfiles import Change

from sessionbase.ingest.dirwatch import Batch, DirWatch, WatchFailed

ROUNDS = 10
PATIENCE = 60.0  # seconds; only a lost change waits this long, a loaded machine may need some


async def _handed_over(
    changes: asyncio.Queue[Batch | WatchFailed | None], path: Path, deadline: float
) -> bool:
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                batch = await changes.get()
        except TimeoutError:
            return False
        assert isinstance(batch, set), batch
        if (Change.added, str(path)) in batch:
            return True
    return False


async def _replace_the_watch_after_each_change(tmp_path: Path) -> list[str]:
    watched = tmp_path / "watched"
    watched.mkdir()
    changes: asyncio.Queue[Batch | WatchFailed | None] = asyncio.Queue()
    watch = DirWatch(changes, lambda change, path: True)
    await watch.watch([str(watched)])
    lost = []
    try:
        for n in range(ROUNDS):
            extra = tmp_path / f"extra-{n}"
            extra.mkdir()
            made = watched / f"made-{n}"
            made.mkdir()
            # Only the watch being replaced can have seen it: the new one starts after.
            await watch.watch([str(watched), str(extra)])
            if not await _handed_over(changes, made, time.monotonic() + PATIENCE):
                lost.append(made.name)
                break
    finally:
        await watch.close()
    return lost


def test_a_change_is_not_lost_when_the_watch_is_replaced_right_after_it(
    tmp_path: Path,
) -> None:
    assert asyncio.run(_replace_the_watch_after_each_change(tmp_path)) == []


async def _close_while_replacing(tmp_path: Path) -> None:
    changes: asyncio.Queue[Batch | WatchFailed | None] = asyncio.Queue()
    watch = DirWatch(changes, lambda change, path: True)
    for n in range(3):
        (tmp_path / str(n)).mkdir()
        await watch.watch([str(tmp_path / str(k)) for k in range(n + 1)])
    await watch.close()
    assert watch.dirs == frozenset()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


def test_close_stops_the_watches_still_handing_over(tmp_path: Path) -> None:
    asyncio.run(_close_while_replacing(tmp_path))
