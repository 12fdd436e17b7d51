"""``sessionbase push``: bring a shared database up to date with a machine's local mirror.

A machine that could not reach its PostgreSQL database kept working on the SQLite file in its
data dir. Its rollouts are still on its disk, so push ingests them into the shared database
(from where that database's files of this machine stand: nothing is read twice and nothing is
duplicated), then carries over the user decisions made meanwhile (renames, pins, archive
flags, projects), the newer one winning where both databases have one. A decision cleared
meanwhile (an unpin, a rename undone) is cleared in the shared database too, unless that one
was made there later.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson

from sessionbase.config import Settings
from sessionbase.errors import ConfigError
from sessionbase.ingest.mirror import Mirror, SyncReport, check_homes
from sessionbase.store import is_postgres, open_store
from sessionbase.store.base import Entity, UserChange


@dataclass
class PushReport:
    sync: SyncReport
    decisions: int  # user decisions carried over

    def to_json(self) -> dict[str, Any]:
        return {**self.sync.to_json(), "decisions_pushed": self.decisions}

    def summary(self) -> str:
        return f"{self.sync.summary()}\ncarried over {self.decisions} user decisions"


async def push(settings: Settings) -> PushReport:
    """Ingest this machine's Codex homes into ``settings.database_url`` and carry the local
    mirror's newer user decisions over; ConfigError without a local mirror or a shared
    database to push to."""
    local = settings.database_path
    if not is_postgres(settings.database_url):
        raise ConfigError("push needs --database postgresql://… (the shared database)")
    if not local.exists():
        raise ConfigError(f"there is no local mirror at {local} to push")
    check_homes(settings)

    def run() -> PushReport:
        with Mirror(settings) as mirror:
            report = mirror.sync()
        return PushReport(report, _carry_decisions(settings))

    return await asyncio.to_thread(run)


def _carry_decisions(settings: Settings) -> int:
    with open_store(settings.database_path, readonly=True) as local:
        mine = local.decisions()
        cleared = local.cleared_decisions()
    with open_store(settings.database_url, machine=settings.machine) as shared:
        theirs = {(d["entity"], d["id"], d["key"]): d["updated_at"] for d in shared.decisions()}
        newer: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
        count = 0
        for d in mine:
            if d["updated_at"] > theirs.get((d["entity"], d["id"], d["key"]), -1):
                newer[(d["entity"], d["id"])][d["key"]] = orjson.loads(d["value"])
                count += 1
        for d in cleared:  # only what the shared database still holds from before
            if d["cleared_at"] > theirs.get((d["entity"], d["id"], d["key"]), d["cleared_at"]):
                newer[(d["entity"], d["id"])][d["key"]] = None
                count += 1
        if newer:
            changes = [
                UserChange(Entity(entity), id_, values) for (entity, id_), values in newer.items()
            ]
            shared.apply_user_changes(changes, None, None)
    return count
