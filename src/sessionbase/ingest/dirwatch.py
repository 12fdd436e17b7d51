"""Watching a changing set of directories, each on its own, never recursively.

A recursive watch (watchfiles, like inotify tools in general) follows symlinks into whatever
they point at — ``/`` included — and fails as a whole when one directory in the tree cannot
be read. So the follower names every directory it wants watched: the ones its own walk found,
which never follows a symlink and skips what it cannot read. watchfiles cannot add a path to
a running watch, so a new set of directories starts a new watch, and the old one stops only
once the new one is in place and the old one has handed over everything it saw until then: a
change in between is seen by one or both, never by neither.

Handing over matters because watchfiles drops, when a watch stops, whatever it has not handed
over yet, and it hands a change over only once no other has come for a step: a watch stopped
right after a change (a new ``sessions/`` folder while Codex also writes its ``skills/``
tree, whose folders change the set) would lose it until the next rescan.
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
# A watch with nothing to hand over still returns this often (milliseconds), so that one
# being replaced can tell when it has handed over everything it saw.
WATCH_IDLE_MS = 200


class WatchFailed(Exception):
    """The file watch stopped on an error (a directory it could not watch, no inotify
    watches left...)."""


class _Watch:
    """One watchfiles watch over a fixed set of directories, putting what it sees in
    ``changes``; counts its hand-overs (a batch, or nothing after ``WATCH_IDLE_MS``)."""

    def __init__(
        self,
        dirs: frozenset[str],
        changes: asyncio.Queue[Batch | WatchFailed | None],
        interesting: Callable[[Change, str], bool],
    ) -> None:
        self.stop = threading.Event()  # watchfiles polls it from its own thread
        self._changes = changes
        self._interesting = interesting
        self._handovers = 0
        self._ended = False
        self._handed = asyncio.Condition()
        self.task = asyncio.create_task(self._run(dirs), name="sessionbase-watch")

    async def _run(self, dirs: frozenset[str]) -> None:
        try:
            async for batch in awatch(
                *sorted(dirs),
                watch_filter=self._interesting,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                stop_event=self.stop,
                rust_timeout=WATCH_IDLE_MS,
                yield_on_timeout=True,
                recursive=False,
                # A directory that became unreadable since the walk is left out, not fatal;
                # the next walk reports it.
                ignore_permission_denied=True,
            ):
                if batch:
                    self._changes.put_nowait(batch)
                async with self._handed:
                    self._handovers += 1
                    self._handed.notify_all()
        except Exception as exc:
            if not self.stop.is_set():
                self._changes.put_nowait(WatchFailed(_describe(exc)))
        finally:
            async with self._handed:
                self._ended = True
                self._handed.notify_all()

    async def handed_over(self) -> None:
        """Wait until everything this watch saw before the call is in ``changes`` (or the
        watch ended). The first hand-over after the call may come from a wait that began
        before it; the second comes from a wait that began after, so it took all the rest."""
        target = self._handovers + 2
        async with self._handed:
            await self._handed.wait_for(lambda: self._handovers >= target or self._ended)

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


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
        self._current: _Watch | None = None
        self._retiring: dict[_Watch, asyncio.Task[None]] = {}

    async def watch(self, dirs: Iterable[str]) -> None:
        """Watch exactly ``dirs`` from now on (nothing changes if they are already watched).
        The old watch goes on in the background until it has handed over what it saw."""
        wanted = frozenset(dirs)
        if wanted == self.dirs and self._current is not None:
            return
        new = _Watch(wanted, self._changes, self._interesting)
        await asyncio.sleep(0)  # awatch adds its watches on the task's first step
        old, self._current, self.dirs = self._current, new, wanted
        if old is not None:
            self._retiring[old] = asyncio.create_task(self._retire(old))

    async def _retire(self, old: _Watch) -> None:
        await old.handed_over()
        await old.close()
        del self._retiring[old]

    async def close(self) -> None:
        """Stop every watch now, the ones still handing over included."""
        for old, retiring in list(self._retiring.items()):
            retiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retiring
            await old.close()
        self._retiring.clear()
        if self._current is not None:
            await self._current.close()
            self._current = None
            self.dirs = frozenset()


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"file watch failed: {exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
    return f"file watch failed: {exc}"
