"""The data dir's ingest lock, and the state its holder publishes in it.

Only one process may ingest into a data dir at a time (an exclusive ``flock`` on
``ingest.lock``, released on close or process death). The holder writes who it is on the
first line and, while it follows Codex (``serve``), how ingest is going as JSON on the second,
so ``sessionbase status`` in another process can say whether live import is running,
stopped and why. The state is written through the descriptor the lock already holds, so it
can still be told when the data dir has stopped accepting new files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

from sessionbase.errors import IngestLocked, StoreError
from sessionbase.files import read_limited
from sessionbase.ingest.timestamps import iso

LOCK_FILE = "ingest.lock"
MAX_STATE_BYTES = 256 * 1024


class IngestLock:
    """An exclusive lock on the data dir's ingest; released on close or process death."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+")
        except OSError as exc:
            raise StoreError(
                f"cannot write to the data dir {data_dir} ({exc.strerror}): backfill and serve"
                " need to write; read commands work as it is. Make it writable, or choose"
                " another data dir with --data-dir"
            ) from exc
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.seek(0)
            holder = self._fh.readline().strip() or "another process"
            self._fh.close()
            raise IngestLocked(
                f"{holder} is already ingesting into {data_dir}; "
                "stop it first (only one `sessionbase serve` or `backfill` per data dir)"
            ) from None
        self.publish(None)

    def publish(self, state: dict[str, Any] | None) -> None:
        """Rewrite the lock file: who holds it and, if given, the state of its ingest."""
        text = f"sessionbase pid {os.getpid()}\n"
        if state is not None:
            text += orjson.dumps({"pid": os.getpid(), **state}).decode() + "\n"
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(text)
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.seek(0)
            self._fh.truncate()  # nobody ingests any more: no state to show
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()


def published_state(data_dir: Path) -> dict[str, Any] | None:
    """The state the data dir's ingesting process published, or None when no live process
    holds the lock. A holder that published nothing (``backfill``, ``import``) is
    ``{"state": "importing", "pid": …}``."""
    try:
        text = read_limited(data_dir / LOCK_FILE, MAX_STATE_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    first, _, rest = text.partition("\n")
    try:
        pid = int(first.rsplit(" ", 1)[-1])
    except ValueError:
        return None
    if not _alive(pid):
        return None  # killed without closing: its lock died with it
    try:
        state = orjson.loads(rest.strip() or "null")
    except orjson.JSONDecodeError:
        state = None
    if not isinstance(state, dict):
        return {"state": "importing", "pid": pid}
    return state


def claimed_state(
    machine: str,
    homes: list[str],
    ingesters: list[dict[str, Any]],
    replicas: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """``published_state`` for a shared database, which has no data-dir lock: from its claim
    rows (``Store.ingesters``) and live replicas (``Store.replicas``). A serve of this machine
    holding the claim on these homes is ``{"state": "following", "pid", "since"}``; another
    holder (a backfill or import) ``{"state": "importing", "pid"}``; None when none holds it."""
    held = [r for r in ingesters if r["machine"] == machine and r["codex_home"] in homes]
    serving = {r["pid"] for r in replicas if r["machine"] == machine}
    for row in held:
        if row["pid"] in serving:
            return {"state": "following", "pid": row["pid"], "since": iso(row["since"])}
    return {"state": "importing", "pid": held[0]["pid"]} if held else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
