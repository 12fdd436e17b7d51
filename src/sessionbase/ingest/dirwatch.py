"""Watching a changing set of directories, each on its own, never recursively.

A recursive watch (watchfiles, like inotify tools in general) follows symlinks into whatever
they point at — ``/`` included — and fails as a whole when one directory in the tree cannot
be read. So the follower names every directory it wants watched: the ones its own walk found,
which never follows a symlink and skips what it cannot read. watchfiles cannot add a path to
a running watch, so a new set of directories starts a new watch, and the old one stops only
once the new one is in place: a change in between is seen by one or both, never by neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable

from watchfiles import Change, awatch

log = logging.getLogger("sessionbase.ingest")

Batch = set[tuple[Change, str]]
# How long watchfiles waits for more events before handing a group over (milliseconds).
WATCH_STEP_MS = 5
WATCH_DEBOUNCE_MS = 50


class WatchFailed(Exception):
    """The file watch stopped on an error (a directory it could not watch, no inotify
    watches left...)."""


class DirWatch:
    """Puts each batch of interesting changes in ``changes``, or a ``WatchFailed``."""

    def __init__(
        self,
        changes: asyncio.Queue[Batch | WatchFailed | None],
        interesting: Callable[[Change, str], bool],
    ) -> None:
        self.dirs: frozenset[str] = frozenset()
        self._changes = changes
        self._interesting = interesting
        self._current: tuple[threading.Event, asyncio.Task[None]] | None = None

    async def watch(self, dirs: Iterable[str]) -> None:
        """Watch exactly ``dirs`` from now on (nothing changes if they are already watched)."""
        wanted = frozenset(dirs)
        if wanted == self.dirs and self._current is not None:
            return
        stop = threading.Event()  # watchfiles polls it from its own thread
        task = asyncio.create_task(self._run(wanted, stop), name="sessionbase-watch")
        await asyncio.sleep(0)  # awatch adds its watches on the task's first step
        old, self._current, self.dirs = self._current, (stop, task), wanted
        if old is not None:
            await _stop(*old)

    async def close(self) -> None:
        if self._current is not None:
            await _stop(*self._current)
            self._current = None
            self.dirs = frozenset()

    async def _run(self, dirs: frozenset[str], stop: threading.Event) -> None:
        try:
            async for batch in awatch(
                *sorted(dirs),
                watch_filter=self._interesting,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                stop_event=stop,
                recursive=False,
                # A directory that became unreadable since the walk is left out, not fatal;
                # the next walk reports it.
                ignore_permission_denied=True,
            ):
                self._changes.put_nowait(batch)
        except Exception as exc:
            if not stop.is_set():
                self._changes.put_nowait(WatchFailed(_describe(exc)))


async def _stop(stop: threading.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"file watch failed: {exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
    return f"file watch failed: {exc}"
