"""The Codex homes a data dir mirrors, remembered in its database.

``backfill`` and ``serve`` record the homes they mirror. A command given no home (no flag,
no ``SESSIONBASE_CODEX_HOME`` or ``CODEX_HOME``, no config key) then works with the recorded
ones instead of ``~/.codex``: ``status`` reports them and measures lag against them, and a
plain ``serve`` keeps following them. A command given other homes than the recorded ones
says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from sessionbase.config import Settings
from sessionbase.errors import SessionbaseError
from sessionbase.store import Store, open_store

log = logging.getLogger("sessionbase")


def _setting(machine: str) -> str:
    # per machine: machines sharing one database each mirror homes of their own
    return f"codex_homes:{machine}"


def recorded(store: Store, machine: str) -> tuple[Path, ...]:
    """The homes backfill or serve on ``machine`` last mirrored into this database (none if
    never)."""
    raw = store.get_setting(_setting(machine))
    try:
        homes = orjson.loads(raw) if raw else []
    except orjson.JSONDecodeError:
        return ()
    return tuple(Path(h) for h in homes if isinstance(h, str))


def record(store: Store, machine: str, homes: tuple[Path, ...]) -> None:
    """Remember ``homes`` as what this database mirrors from ``machine``; log a change."""
    now = tuple(home.absolute() for home in homes)
    before = recorded(store, machine)
    if now == before:
        return
    store.put_setting(_setting(machine), orjson.dumps([str(h) for h in now]).decode())
    if before:
        log.info("this database now mirrors %s (it mirrored %s)", _listed(now), _listed(before))


def settled(settings: Settings) -> tuple[Settings, str | None]:
    """``settings`` with the Codex homes the data dir recorded when none was given, and a
    note for the user when the given ones differ from the recorded ones."""
    try:
        with open_store(settings.database_url, readonly=True) as store:
            known = recorded(store, settings.machine)
    except SessionbaseError:  # no database yet, or one the command itself will report on
        return settings, None
    if not known:
        return settings, None
    if settings.codex_homes_defaulted:
        return settings.with_overrides(codex_homes=known, codex_homes_defaulted=False), None
    given = tuple(home.absolute() for home in settings.codex_homes)
    if set(given) == set(known):
        return settings, None
    return settings, (
        f"note: this data dir mirrors {_listed(known)} (recorded by backfill or serve);"
        f" the Codex homes given are {_listed(given)}"
    )


def _listed(homes: tuple[Path, ...]) -> str:
    return ", ".join(str(h) for h in homes)
