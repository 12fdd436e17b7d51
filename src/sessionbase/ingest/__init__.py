"""Ingest: Codex files → rows. ``backfill`` once, or ``Follower`` to keep up live."""

from __future__ import annotations

import asyncio

from sessionbase.config import Settings
from sessionbase.ingest.mirror import Mirror, Progress, SyncReport
from sessionbase.ingest.watcher import Follower, check_homes

__all__ = ["Follower", "Mirror", "Progress", "SyncReport", "backfill", "check_homes"]


async def backfill(settings: Settings, progress: Progress | None = None) -> SyncReport:
    """Import every rollout, name and skill under the Codex homes once; return what it did."""
    check_homes(settings)

    def run() -> SyncReport:
        with Mirror(settings) as mirror:
            return mirror.sync(progress)

    return await asyncio.to_thread(run)
