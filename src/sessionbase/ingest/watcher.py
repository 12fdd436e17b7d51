"""Following Codex while it writes: inotify events plus a periodic safety-net rescan.

All ingest work runs on one dedicated thread (the writer); the event loop only waits for
file events and timers. Events can be dropped by the kernel, so a cheap stat-only rescan runs
every ``settings.rescan_interval`` seconds as well.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from watchfiles import Change, awatch

from sessionbase.codex.paths import SESSION_INDEX, is_rollout_name
from sessionbase.config import Settings
from sessionbase.ingest.mirror import Mirror, SyncReport, check_homes
from sessionbase.ingest.tailer import FileReport
from sessionbase.wording import counted

log = logging.getLogger("sessionbase.ingest")
T = TypeVar("T")

# How long watchfiles waits for more events before handing a group over (milliseconds).
WATCH_STEP_MS = 5
WATCH_DEBOUNCE_MS = 50


def _interesting(change: Change, path: str) -> bool:
    name = Path(path).name
    if is_rollout_name(name) or name in (SESSION_INDEX, "SKILL.md"):
        return True
    # New directories under sessions/ (a new day): their first files can precede the watch.
    return change == Change.added and "sessions" in Path(path).parts and os.path.isdir(path)


class Follower:
    """Runs the mirror on its writer thread and keeps it current until stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_reports: Callable[[list[FileReport]], None] | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_reports = on_reports or _log_reports
        self.on_commit = on_commit
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-ingest")
        self._mirror: Mirror | None = None
        self.ready = asyncio.Event()

    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        """Check the homes, take the ingest lock and open the store (fast; raises on problems)."""
        check_homes(self.settings)
        self._mirror = await self._on_writer(Mirror, self.settings)
        self._mirror.store.on_commit = self.on_commit
        # Following live, the next line must not wait for a checkpoint of the last one.
        self._mirror.store.checkpoint_in_background()

    async def start(self) -> SyncReport:
        """Catch up with everything on disk (opening first if needed); then ``ready`` is set."""
        if self._mirror is None:
            await self.open()
        assert self._mirror is not None
        report = await self._on_writer(self._mirror.sync)
        self.ready.set()
        return report

    async def follow(
        self, stop: asyncio.Event, on_ready: Callable[[SyncReport], None] | None = None
    ) -> None:
        """Catch up, call ``on_ready``, then ingest changes as they happen until ``stop``.

        The watch begins before the catch-up pass: a line appended to a file the pass has
        already read is then an event waiting in the queue, not a wait for the next rescan.
        """
        changes: asyncio.Queue[set[tuple[Change, str]] | None] = asyncio.Queue()
        watch = asyncio.create_task(self._watch(stop, changes))
        # awatch sets up its inotify watches synchronously on the task's first step.
        await asyncio.sleep(0)
        rescans: asyncio.Task[None] | None = None
        try:
            report = await self.start()
            if on_ready is not None:
                on_ready(report)
            mirror = self._mirror
            assert mirror is not None
            rescans = asyncio.create_task(self._rescan_loop(stop))
            while (batch := await changes.get()) is not None:
                paths = {Path(p) for _, p in batch}
                while not changes.empty() and (more := changes.get_nowait()) is not None:
                    paths.update(Path(p) for _, p in more)  # events that piled up meanwhile
                reports = await self._on_writer(mirror.ingest_paths, paths)
                self.on_reports(reports)
            await watch  # re-raises if the watch failed
        finally:
            watch.cancel()
            if rescans is not None:
                rescans.cancel()

    async def _watch(
        self, stop: asyncio.Event, changes: asyncio.Queue[set[tuple[Change, str]] | None]
    ) -> None:
        try:
            async for batch in awatch(
                *self.settings.codex_homes,
                watch_filter=_interesting,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                stop_event=stop,
                recursive=True,
            ):
                changes.put_nowait(batch)
        finally:
            changes.put_nowait(None)

    async def _rescan_loop(self, stop: asyncio.Event) -> None:
        interval = self.settings.rescan_interval
        if interval <= 0 or self._mirror is None:
            return
        while not stop.is_set():
            try:
                async with asyncio.timeout(interval):
                    await stop.wait()
            except TimeoutError:
                report = await self._on_writer(self._mirror.sync)
                changed = report.files_seen - report.statuses.get("unchanged", 0)
                if changed:
                    log.info("rescan caught %s", counted(changed, "changed file"))

    async def close(self) -> None:
        if self._mirror is not None:
            await self._on_writer(self._mirror.close)
            self._mirror = None
        self._executor.shutdown(wait=True)


def _log_reports(reports: list[FileReport]) -> None:
    for r in reports:
        if r.status == "unchanged":
            continue
        log.info(
            "%s %s: %s, %s%s",
            r.status,
            r.thread_id or r.path,
            counted(r.lines, "line"),
            counted(r.rows, "new row"),
            f" ({r.error})" if r.error else "",
        )
