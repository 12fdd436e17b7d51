"""Waking a replica when any process commits: ``LISTEN`` on the commit channel.

A notification is only a wake-up. The replica then reads the commit log from the last version
it applied (``Store.commits_since``), so a notification that never came (the listening
connection dropped, the server restarted, a burst was coalesced) loses nothing: after every
reconnection the listener wakes the replica once more to catch up, and counts the event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from sessionbase.store._pg_connection import connect, one_line, redacted
from sessionbase.store.postgres import COMMIT_CHANNEL

log = logging.getLogger("sessionbase.store")
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)  # between attempts to reconnect, then the last again
LISTENER_NAME = "sessionbase-listen"  # application_name of the listening connection
IDLE_CHECK_SECONDS = 1.0  # how often an idle listener checks its connection (and stopping)


class CommitListener:
    """A thread with its own connection that calls ``wake`` on every commit notification,
    and once after each (re)connection. Close it to stop."""

    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self.url = url
        self.wake = wake
        self.connected = threading.Event()
        self.reconnections = 0  # connections lost and made again
        self.notifications = 0
        self._stopping = threading.Event()
        self._conn: psycopg.Connection[object] | None = None
        self._thread = threading.Thread(target=self._run, name="sessionbase-listen", daemon=True)
        self._thread.start()

    def state(self) -> dict[str, object]:
        """What ``/readyz`` shows: whether it listens now, and how often it reconnected."""
        return {"connected": self.connected.is_set(), "reconnections": self.reconnections}

    def close(self) -> None:
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.cancel_safe(timeout=1.0)
            except (psycopg.Error, AttributeError):
                pass
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        attempt = 0
        first = True
        while not self._stopping.is_set():
            try:
                conn = connect(self.url, LISTENER_NAME)
            except Exception as exc:  # StoreUnavailable: the server is not there (yet)
                if attempt == 0:
                    log.warning("cannot listen for commits on %s: %s", redacted(self.url), exc)
                self._stopping.wait(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
                continue
            self._conn = conn
            try:
                conn.execute(f"LISTEN {COMMIT_CHANNEL}")
                if not first:
                    self.reconnections += 1
                    log.info("listening for commits again; catching up from the commit log")
                first, attempt = False, 0
                self.connected.set()
                self.wake()  # whatever was committed while nobody listened
                self._listen(conn)
            except psycopg.Error as exc:
                if not self._stopping.is_set():
                    log.warning("lost the commit listener connection: %s", one_line(exc))
            finally:
                self.connected.clear()
                self._conn = None
                conn.close()

    def _listen(self, conn: psycopg.Connection[object]) -> None:
        while not self._stopping.is_set():
            got = False
            for _ in conn.notifies(timeout=IDLE_CHECK_SECONDS, stop_after=1):
                got = True
                self.notifications += 1
                self.wake()
            if not got and not self._stopping.is_set():
                conn.execute("SELECT 1")  # a dead connection raises here, not silently
            elif got:
                time.sleep(0)  # let the woken engine run before the next burst
