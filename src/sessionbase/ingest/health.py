"""How live import is going: one object the follower updates and everyone else reads.

``serve`` shows it at ``/readyz`` and in ``status:get``, publishes it in the ingest lock for
``sessionbase status``, and logs each change once: a path that cannot be read is logged when
it is first seen and when it becomes readable again, never at every rescan.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from sessionbase.codex.paths import PathProblem
from sessionbase.ingest.timestamps import iso

log = logging.getLogger("sessionbase.ingest")
LISTED = 20  # problems listed in a summary (all are counted)


class IngestState(enum.StrEnum):
    STARTING = "starting"  # opening the store and catching up with the files
    FOLLOWING = "following"  # caught up; new lines arrive as Codex writes them
    STOPPED = "stopped"  # failed; ``reason`` says why, a retry is scheduled
    STANDBY = "standby"  # another process ingests these homes into the shared database


class IngestHealth:
    """The state of ingest and the paths it had to skip; thread-unsafe, used on the loop."""

    def __init__(self) -> None:
        self.state = IngestState.STARTING
        self.reason: str | None = None
        self.since_ms = _now_ms()
        self.retry_at_ms: int | None = None
        self.unreadable: dict[str, str] = {}
        self.unrecognized: dict[str, str] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def following(self) -> None:
        if self.reason is not None:  # stopped before, and retrying since
            log.info("ingest resumed")
        self._set(IngestState.FOLLOWING, None, None)

    def stopped(self, reason: str, retry_in: float) -> None:
        log.error("ingest stopped: %s; retrying in %s", reason, _seconds(retry_in))
        self._set(IngestState.STOPPED, reason, _now_ms() + int(retry_in * 1000))

    def standby(self, reason: str) -> None:
        """Another process ingests (a shared database): serve, and take over when it stops."""
        if self.state is not IngestState.STANDBY:
            log.info("%s; serving, and taking over if it stops", reason)
        self._set(IngestState.STANDBY, reason, None)

    def retrying(self) -> None:
        """Starting over after a stop; ``reason`` still says what stopped it last."""
        self._set(IngestState.STARTING, self.reason, None)

    def _set(self, state: IngestState, reason: str | None, retry_at_ms: int | None) -> None:
        if state is not self.state:
            self.since_ms = _now_ms()
        self.state, self.reason, self.retry_at_ms = state, reason, retry_at_ms
        self._changed()

    def skipped(
        self, unreadable: Iterable[PathProblem], unrecognized: Iterable[PathProblem]
    ) -> None:
        """The paths the last full pass could not read or did not recognize: log what is new
        since the pass before and what has cleared, once each."""
        now_unreadable = {p.path: p.reason for p in unreadable}
        now_unrecognized = {p.path: p.reason for p in unrecognized}
        for path, reason in now_unreadable.items():
            if self.unreadable.get(path) != reason:
                log.warning("cannot read %s (%s): skipped; live import goes on", path, reason)
        for path in self.unreadable.keys() - now_unreadable.keys():
            log.info("%s is no longer unreadable", path)
        new = sorted(now_unrecognized.keys() - self.unrecognized.keys())
        if new:
            shown = ", ".join(new[:3]) + (f" and {len(new) - 3} more" if len(new) > 3 else "")
            log.info("not recognized, not mirrored: %s (`sessionbase status` says why)", shown)
        if now_unreadable != self.unreadable or now_unrecognized != self.unrecognized:
            self.unreadable, self.unrecognized = now_unreadable, now_unrecognized
            self._changed()

    def summary(self) -> dict[str, Any]:
        """For ``/readyz``, ``status:get`` and the ingest lock: the state, and the first
        ``LISTED`` skipped paths of each kind with their counts."""
        return {
            "state": self.state.value,
            "reason": self.reason,
            "since": iso(self.since_ms),
            "retry_at": iso(self.retry_at_ms),
            "unreadable": _listed(self.unreadable),
            "unreadable_count": len(self.unreadable),
            "unrecognized": _listed(self.unrecognized),
            "unrecognized_count": len(self.unrecognized),
        }


def _listed(problems: dict[str, str]) -> list[dict[str, str]]:
    return [{"path": path, "reason": problems[path]} for path in sorted(problems)[:LISTED]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _seconds(seconds: float) -> str:
    return f"{seconds:g} s"
