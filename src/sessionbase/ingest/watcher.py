"""Following Codex while it writes: file events plus a periodic safety-net rescan, restarted
with backoff whenever something stops it.

All ingest work runs on one dedicated thread (the writer); the event loop only waits for
file events and timers. Events can be dropped by the kernel, so a cheap stat-only rescan runs
every ``settings.rescan_interval`` seconds as well. A path that cannot be read is skipped and
reported (``IngestHealth``); an error that stops ingest as a whole (the database refusing
writes, the watch failing) is reported too, and ``run`` starts over after 1, 2, 4 … 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from watchfiles import Change

from sessionbase.codex.paths import SESSION_INDEX, is_rollout_name
from sessionbase.config import Settings
from sessionbase.errors import IngestBusy, SessionbaseError
from sessionbase.ingest.dirwatch import Batch, DirWatch, WatchFailed
from sessionbase.ingest.health import IngestHealth
from sessionbase.ingest.imports import REGISTRY
from sessionbase.ingest.mirror import Mirror, SyncReport, check_homes
from sessionbase.ingest.tailer import FileReport, FileStatus
from sessionbase.wording import counted

log = logging.getLogger("sessionbase.ingest")
T = TypeVar("T")

RETRY_FIRST = 1.0  # seconds before the first retry after ingest stopped; doubled each time
RETRY_MAX = 60.0
CLAIM_RETRY = 1.0  # seconds between a standby's attempts to take the ingest claim over
NEW_DIR_ROUNDS = 8  # walks of a new directory tree until its watch covers all of it


class Follower:
    """Runs the mirror on its writer thread and keeps it current until stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_reports: Callable[[list[FileReport]], None] | None = None,
        on_commit: Callable[[int], None] | None = None,
        health: IngestHealth | None = None,
    ) -> None:
        self.settings = settings
        self.on_reports = on_reports or _log_reports
        self.on_commit = on_commit
        self.health = health or IngestHealth()
        self.health.on_change(self._publish)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-ingest")
        self._mirror: Mirror | None = None
        self._broken = False  # the last attempt failed: reconnect the store before the next
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
        self._publish()

    async def start(self) -> SyncReport:
        """Catch up with everything on disk (opening first if needed); then ``ready`` is set."""
        if self._mirror is None:
            await self.open()
        assert self._mirror is not None
        report = await self._on_writer(self._mirror.sync)
        self.health.skipped(self._mirror.unreadable(), self._mirror.unrecognized())
        self.ready.set()
        return report

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[SyncReport], None] | None = None
    ) -> None:
        """``follow`` until ``stop``; whenever it fails, report why and start over after a
        growing delay (logged once per retry). ``on_ready`` is called after the first
        catch-up pass only."""
        delay = RETRY_FIRST
        first = True

        def caught_up(report: SyncReport) -> None:
            nonlocal delay, first
            delay = RETRY_FIRST
            if first and on_ready is not None:
                on_ready(report)
            first = False

        while not stop.is_set():
            try:
                await self.follow(stop, caught_up)
                return
            except asyncio.CancelledError:
                raise
            except IngestBusy as exc:  # a shared database: another process ingests (or took
                await self.release()  # over); wait, and take over when it stops
                self.health.standby(str(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLAIM_RETRY):
                        await stop.wait()
                continue
            except Exception as exc:
                reason = _reason(exc)
                if not isinstance(exc, SessionbaseError | OSError | sqlite3.Error | WatchFailed):
                    log.error("ingest failed unexpectedly", exc_info=exc)
            self._broken = True
            self.health.stopped(reason, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            if not stop.is_set():
                self.health.retrying()
            delay = min(delay * 2, RETRY_MAX)

    async def follow(
        self, stop: asyncio.Event, on_ready: Callable[[SyncReport], None] | None = None
    ) -> None:
        """Catch up, call ``on_ready``, then ingest changes as they happen until ``stop``.
        Raises whatever stops it.

        The watch begins before the catch-up pass: a line appended to a file the pass has
        already read is then an event waiting in the queue, not a wait for the next rescan.
        """
        changes: asyncio.Queue[Batch | WatchFailed | None] = asyncio.Queue()
        watch = DirWatch(changes, self._interesting)
        wake_on_stop = asyncio.create_task(_put_none_when(stop, changes))
        try:
            if self._mirror is None:
                await self.open()
            mirror = self._mirror
            assert mirror is not None
            if self._broken:
                await self._on_writer(mirror.reconnect)
                self._broken = False
            await watch.watch(await self._on_writer(mirror.walk_for_watch))
            report = await self.start()
            await watch.watch(mirror.watch_dirs())
            self.health.following()
            if on_ready is not None:
                on_ready(report)
            await self._follow_changes(mirror, watch, changes, stop)
        finally:
            wake_on_stop.cancel()
            await watch.close()

    async def _follow_changes(
        self,
        mirror: Mirror,
        watch: DirWatch,
        changes: asyncio.Queue[Batch | WatchFailed | None],
        stop: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.rescan_interval
        next_rescan = loop.time() + interval if interval > 0 else math.inf
        while not stop.is_set():
            try:
                async with asyncio.timeout_at(None if math.isinf(next_rescan) else next_rescan):
                    item = await changes.get()
            except TimeoutError:
                report = await self._on_writer(mirror.sync)
                self.health.skipped(mirror.unreadable(), mirror.unrecognized())
                await watch.watch(mirror.watch_dirs())
                changed = report.files_seen - report.statuses[FileStatus.UNCHANGED]
                if changed:
                    log.info("rescan caught %s", counted(changed, "changed file"))
                next_rescan = loop.time() + interval
                continue
            paths: set[Path] = set()
            while item is not None:
                if isinstance(item, WatchFailed):
                    raise item
                paths.update(Path(p) for _, p in item)
                item = changes.get_nowait() if not changes.empty() else None  # piled up
            if not paths:
                continue  # the stop wake-up
            paths |= await self._take_in_new_dirs(mirror, watch, paths)
            reports = await self._on_writer(mirror.ingest_paths, paths)
            self.health.skipped(mirror.unreadable(), mirror.unrecognized())
            self.on_reports(reports)

    async def _take_in_new_dirs(
        self, mirror: Mirror, watch: DirWatch, paths: set[Path]
    ) -> set[Path]:
        """Watch the new directories among ``paths`` (a new day under sessions/) and return
        the rollouts in them. Walks again after each new watch: whatever was created before
        the watch covered it is found by a walk, whatever after by the watch."""
        found: set[Path] = set()
        fresh = [p for p in paths if _is_real_dir(p)]
        for _ in range(NEW_DIR_ROUNDS):
            if not fresh:
                break
            rollouts, dirs = await self._on_writer(mirror.walk_new_dirs, fresh)
            found.update(rollouts)
            before = watch.dirs
            await watch.watch(mirror.watch_dirs())
            fresh = [Path(d) for d in dirs if d not in before]
        return found

    def _interesting(self, change: Change, path: str) -> bool:
        name = os.path.basename(path)
        if is_rollout_name(name) or name in (SESSION_INDEX, "SKILL.md", REGISTRY):
            return True
        mirror = self._mirror
        if mirror is not None and path in mirror.imported:
            return True
        # A new directory (a new day under sessions/): its first files can precede its watch.
        return change == Change.added and _is_real_dir(Path(path))

    def _publish(self) -> None:
        if self._mirror is not None and self._mirror.lock is not None:
            try:
                self._mirror.lock.publish(self.health.summary())
            except OSError as exc:
                log.debug("cannot publish the ingest state: %s", exc)

    @property
    def ingesting(self) -> bool:
        """Whether this process holds the mirror (and, on a shared database, the claim)."""
        return self._mirror is not None

    async def release(self) -> None:
        """Close the mirror (and its claim), keeping the writer thread to open it again."""
        if self._mirror is not None:
            await self._on_writer(self._mirror.close)
            self._mirror = None
        self.ready.clear()

    async def close(self) -> None:
        if self._mirror is not None:
            await self._on_writer(self._mirror.close)
            self._mirror = None
        self._executor.shutdown(wait=True)


async def _put_none_when(stop: asyncio.Event, changes: asyncio.Queue[Any]) -> None:
    await stop.wait()
    changes.put_nowait(None)


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _reason(exc: BaseException) -> str:
    """What stopped ingest, in one line."""
    if isinstance(exc, SessionbaseError | WatchFailed):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc}"


def _log_reports(reports: list[FileReport]) -> None:
    for r in reports:
        if r.status == FileStatus.UNCHANGED:
            continue
        log.info(
            "%s %s: %s, %s%s",
            r.status,
            r.thread_id or r.path,
            counted(r.lines, "line"),
            counted(r.rows, "new row"),
            f" ({r.error})" if r.error else "",
        )
