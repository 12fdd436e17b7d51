"""Reading new rollouts ahead in worker processes while the ingesting thread commits.

A first backfill spends most of its time parsing and normalizing, which needs no database.
Worker processes read files new to the store from their first byte (``read_new_file``) a few
files ahead of the tailer, which commits their chunks in order, exactly as if it had read
them itself: offsets, crash safety and duplicate checks do not change. Only a pass with
enough new bytes starts workers. Should a worker fail on a file, the tailer reads that file
itself and reports the problem.

A file too big to hold whole is streamed instead (``ChunkStream``): when the tailer comes to
it, a process of its own parses it while the tailer commits, holding at most
``STREAM_CHUNKS_READY`` chunks ready. Should that process be lost midway, the tailer reads
the rest itself from the last chunk it committed.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sessionbase.ingest.reader import Chunk, new_file_chunks, read_new_file

MIN_PASS_BYTES = 32 * 1024 * 1024  # below this, starting processes costs more than it saves
MAX_FILE_BYTES = 16 * 1024 * 1024  # a file held whole in memory, as its rows, at most
AHEAD_BYTES = 96 * 1024 * 1024  # of files read or being read but not yet committed
FILES_AHEAD = 48  # per worker, at most: enough that one big file does not leave the rest idle
WORKER_NICENESS = 10
STREAM_CHUNKS_READY = 2  # a streamed file's chunks parsed but not yet taken, at most
STREAM_POLL_SECONDS = 0.5  # how often a waiting tailer checks that the streaming process lives


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


class StreamLost(Exception):
    """A streaming process stopped before the end of its file."""


def _stream(parent: int, path: str, batch_bytes: int, max_line_bytes: int, out: Any) -> None:
    """In a streaming process: the file's chunks, in order, then None."""
    _start_worker(parent)
    try:
        for chunk in new_file_chunks(Path(path), batch_bytes, max_line_bytes):
            out.put(chunk)
    except Exception as exc:  # unreadable or vanished: the tailer reads on and reports it
        out.put(StreamLost(f"{path}: {exc}"))
        return
    out.put(None)


class ChunkStream:
    """The chunks of one big new file, parsed in a process of its own while they are taken.

    The process starts when iteration does (a stream the tailer has no use for costs
    nothing) and is stopped when iteration ends, early or not. Raises ``StreamLost`` when
    the process fails or dies before the end; what it delivered until then is sound.
    """

    def __init__(self, path: str, *, batch_bytes: int, max_line_bytes: int) -> None:
        self.path = path
        self.batch_bytes = batch_bytes
        self.max_line_bytes = max_line_bytes
        self.pid: int | None = None  # the reading process, once iteration has started it

    def __iter__(self) -> Iterator[Chunk]:
        context = multiprocessing.get_context("spawn")  # see ReadAhead
        ready = context.Queue(STREAM_CHUNKS_READY)
        process = context.Process(
            target=_stream,
            args=(os.getpid(), self.path, self.batch_bytes, self.max_line_bytes, ready),
            name="sessionbase-stream",
            daemon=True,
        )
        try:
            process.start()
        except OSError as exc:  # no process to be had: the tailer reads the file itself
            raise StreamLost(f"{self.path}: cannot start a reading process: {exc}") from exc
        self.pid = process.pid
        try:
            while True:
                try:
                    item = ready.get(timeout=STREAM_POLL_SECONDS)
                except queue.Empty:
                    if not process.is_alive():
                        raise StreamLost(
                            f"{self.path}: reading process exited ({process.exitcode})"
                        ) from None
                    continue
                if item is None:
                    return
                if isinstance(item, StreamLost):
                    raise item
                yield item
        finally:
            if process.is_alive():
                process.terminate()
            process.join()
            ready.close()


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
        asked for; those too big to hold whole are streamed when taken."""
        self.batch_bytes = batch_bytes
        self.max_line_bytes = max_line_bytes
        self._queue = deque((path, size) for path, size in files if size <= MAX_FILE_BYTES)
        self._big = (
            {path for path, size in files if size > MAX_FILE_BYTES} if workers > 0 else set()
        )
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

    def take(self, path: str) -> Iterable[Chunk] | None:
        """The file's chunks (read, or streamed if it is big), or None when the caller must
        read it itself."""
        if path in self._big:
            self._big.discard(path)
            return ChunkStream(
                path, batch_bytes=self.batch_bytes, max_line_bytes=self.max_line_bytes
            )
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
