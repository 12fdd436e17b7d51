"""Folding the WAL back into the database on a thread of its own.

A checkpoint copies the WAL's pages into the database file and fsyncs it: usually a
millisecond, but tens to hundreds of milliseconds after another connection's burst of writes
(the embedder's units) or while the disk is busy (the semantic index being saved). A writer
that runs it itself holds up whatever it writes next by as much, and for the live ingest
writer that is the next line Codex appends. Such a writer hands its checkpoints to this
thread instead, which has its own connection: a PASSIVE checkpoint never blocks the writer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("sessionbase.store")


class BackgroundCheckpoints:
    """One thread and connection that run a PASSIVE checkpoint whenever asked (coalesced)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0  # checkpoints run so far
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="sessionbase-checkpoint", daemon=True
        )
        self._thread.start()

    def request(self) -> None:
        """Checkpoint soon; requests made before it starts count as one."""
        self._due.set()

    def close(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA wal_autocheckpoint = 0")
            while True:
                self._due.wait()
                if self._stopping:
                    return
                self._due.clear()
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # the next request tries again
                    log.warning("WAL checkpoint failed: %s", exc)
                self.done += 1
        finally:
            db.close()
