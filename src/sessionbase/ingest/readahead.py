"""Reading new rollouts ahead in worker processes while the ingesting thread commits.

A first backfill spends most of its time parsing and normalizing, which needs no database.
Worker processes read files new to the store from their first byte (``read_new_file``) a few
files ahead of the tailer, which commits their chunks in order, exactly as if it had read
them itself: offsets, crash safety and duplicate checks do not change. Only a pass with
enough new bytes starts workers, and a file too big to hold whole is read by the tailer.
Should a worker fail on a file, the tailer reads that file itself and reports the problem.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sessionbase.ingest.reader import Chunk, read_new_file

MIN_PASS_BYTES = 32 * 1024 * 1024  # below this, starting processes costs more than it saves
MAX_FILE_BYTES = 16 * 1024 * 1024  # a file held whole in memory, as its rows, at most
AHEAD_BYTES = 96 * 1024 * 1024  # of files read or being read but not yet committed
FILES_AHEAD = 48  # per worker, at most: enough that one big file does not leave the rest idle
WORKER_NICENESS = 10


def _start_worker(parent: int) -> None:
    """In each worker: yield the CPU to the ingesting process, whose commits bound the whole
    pipeline (and which, in ``serve``, also answers clients); and when that process dies
    (kill -9 included), exit too, rather than parse on for nobody while holding its output
    pipes open."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="sessionbase-parent-watch", daemon=True).start()


class ReadAhead:
    """Chunks of the given new files, read by ``workers`` processes in the given order."""

    def __init__(
        self,
        files: list[tuple[str, int]],
        *,
        workers: int,
        batch_bytes: int,
        max_line_bytes: int,
    ) -> None:
        """``files`` is (path, size) of each file new to the store, in the order they will be
        asked for; those that are too big are skipped."""
        self.batch_bytes = batch_bytes
        self.max_line_bytes = max_line_bytes
        self._queue = deque((path, size) for path, size in files if size <= MAX_FILE_BYTES)
        self._pending: dict[str, tuple[int, Future[list[Chunk]]]] = {}  # path → (size, result)
        self._ahead = FILES_AHEAD * max(workers, 1)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0 and sum(size for _, size in files) >= MIN_PASS_BYTES and self._queue:
            # spawn: the ingesting process has threads (serve), which fork would not carry over.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            self._fill()

    def _fill(self) -> None:
        while (
            self._pool is not None
            and self._queue
            and len(self._pending) < self._ahead
            and (not self._pending or self._ahead_bytes() + self._queue[0][1] <= AHEAD_BYTES)
        ):
            path, size = self._queue.popleft()
            try:
                future = self._pool.submit(
                    read_new_file, Path(path), self.batch_bytes, self.max_line_bytes
                )
            except (BrokenProcessPool, RuntimeError):
                # Workers could not start or died: the tailer reads the rest itself.
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            else:
                self._pending[path] = (size, future)

    def _ahead_bytes(self) -> int:
        return sum(size for size, _ in self._pending.values())

    def take(self, path: str) -> list[Chunk] | None:
        """The file's chunks, or None when the caller must read it itself."""
        pending = self._pending.pop(path, None)
        self._fill()
        if pending is None:
            return None
        try:
            return pending[1].result()
        except Exception:  # unreadable, vanished, or a worker died: the tailer will see why
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
