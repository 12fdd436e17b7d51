"""Waking a serving process when another process commits to its SQLite file.

``serve`` is not the only writer: ``sessionbase pair``, ``devices revoke``, ``push`` and
``doctor`` write to the same file while it runs. SQLite sends no notifications, so a thread
asks every ``POLL_SECONDS`` whether any other connection committed (``PRAGMA data_version``,
answered from the WAL index in shared memory: microseconds) and wakes the process when one
did. As with PostgreSQL's ``NOTIFY``, a wake is only a wake: the process then reads the commit
log from the version it last applied, so a wake for its own commit costs one empty read.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("sessionbase.store")
POLL_SECONDS = 0.05
RETRY_SECONDS = 1.0  # after the file could not be read (it is being replaced, say)


class CommitPoller:
    """A thread with its own read-only connection that calls ``wake`` whenever another
    connection has committed to the file since it last asked. Close it to stop."""

    def __init__(
        self, path: Path, wake: Callable[[], None], interval: float = POLL_SECONDS
    ) -> None:
        self.path = path
        self.wake = wake
        self.interval = interval
        self.wakes = 0
        self.failures = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sessionbase-poll", daemon=True)
        self._thread.start()

    def state(self) -> dict[str, object]:
        """What ``/readyz`` shows: how often it looks, and how often it found a commit."""
        return {"polling_seconds": self.interval, "wakes": self.wakes, "failures": self.failures}

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._poll()
            except sqlite3.Error as exc:
                self.failures += 1
                log.debug("cannot look for other processes' commits: %s", exc)
                self.wake()  # whatever was committed meanwhile
                self._stopping.wait(RETRY_SECONDS)

    def _poll(self) -> None:
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            seen = db.execute("PRAGMA data_version").fetchone()[0]
            self.wake()  # whatever was committed before it first looked
            while not self._stopping.wait(self.interval):
                now = db.execute("PRAGMA data_version").fetchone()[0]
                if now != seen:
                    seen = now
                    self.wakes += 1
                    self.wake()
        finally:
            db.close()
