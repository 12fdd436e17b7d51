"""The user-decisions file: renames, pins, archive flags and projects, kept beside the database.

They are the one part of the mirror the rollouts cannot rebuild, so a copy lives in a small
JSON file next to a SQLite database (``Store.user_decisions_file``). Every change rewrites it;
a database opened for writing that has never committed (new, or rebuilt because it was lost,
emptied or set aside) gets them back from it before anything else; ``sessionbase doctor``
compares the two. The database stays the truth while it is sound: the file only ever follows
it, never the other way but for that restore.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sessionbase.errors import StoreError
from sessionbase.store.base import Entity, UserChange
from sessionbase.store.interface import Store

log = logging.getLogger("sessionbase.store")

KIND = "sessionbase user decisions"
FORMAT = 1


@dataclass(frozen=True)
class Saved:
    """What a decisions file holds: the decisions, as of the database's commit ``version``."""

    version: int
    changes: list[UserChange]


def encode(version: int, changes: list[UserChange]) -> bytes:
    document = {
        "kind": KIND,
        "format": FORMAT,
        "version": version,
        "decisions": [
            {"entity": c.entity, "id": c.id, "values": c.values}
            for c in sorted(changes, key=lambda c: (c.entity, c.id))
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def read(path: Path) -> Saved | None:
    """The file's decisions; None when there is no file. Raises StoreError when it cannot be
    read or is not a decisions file (the message names it)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        document = orjson.loads(raw)
        if document.get("kind") != KIND or document.get("format") != FORMAT:
            raise ValueError("not a sessionbase user-decisions file")
        return Saved(int(document["version"]), [_change(d) for d in document["decisions"]])
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"{path} is not a readable user-decisions file ({exc})") from exc


def _change(item: Any) -> UserChange:
    entity, entity_id, values = item["entity"], item["id"], item["values"]
    if entity not in ("thread", "project") or not isinstance(entity_id, str):
        raise ValueError(f"unknown decision {item!r}")
    if not isinstance(values, dict):
        raise ValueError(f"decision values are not an object: {item!r}")
    return UserChange(Entity(entity), entity_id, values)


def grouped(rows: Iterable[tuple[str, str, str, str]]) -> list[UserChange]:
    """``user_metadata`` rows (entity, id, key, JSON value) as one change per entity and id."""
    changes: dict[tuple[str, str], UserChange] = {}
    for entity, entity_id, key, value in rows:
        change = changes.setdefault((entity, entity_id), UserChange(Entity(entity), entity_id, {}))
        change.values[key] = orjson.loads(value)
    return list(changes.values())


def current(store: Store) -> Saved:
    """The database's decisions, read in one snapshot with its version."""
    with store.snapshot() as version:
        return Saved(version, store.user_changes())


def save(store: Store) -> bool:
    """Write the database's decisions to its file, unless the file already holds them or a
    newer copy. True if it wrote. Raises OSError if the file cannot be written."""
    path = store.user_decisions_file
    if path is None:
        return False
    now = current(store)
    try:
        saved = read(path)
    except StoreError as exc:  # keep what cannot be read (it may be mended by hand)
        aside = set_aside(path, "unreadable")
        log.warning("%s; kept as %s, and a fresh copy written", exc, aside.name)
        saved = None
    if saved is not None and (saved.changes == now.changes or saved.version > now.version):
        return False
    if saved is None and not now.changes and not path.exists():
        return False  # nothing decided yet: no file needed
    write(path, now.version, now.changes)
    return True


def write(path: Path, version: int, changes: list[UserChange]) -> None:
    """Replace the file with these decisions (as of the database's commit ``version``)."""
    _write_atomically(path, encode(version, changes))


def set_aside(path: Path, why: str) -> Path:
    """Rename a file out of the way (never delete it): ``NAME.WHY-YYYYMMDDTHHMMSS``."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.{why}-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.{why}-{stamp}-{n}")
    path.rename(aside)
    return aside


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def after_change(store: Store) -> None:
    """Keep the file current after the user changed something (the change itself is
    committed already: a file that cannot be written is logged, not raised)."""
    try:
        save(store)
    except OSError as exc:
        log.warning("cannot save user decisions to %s: %s", store.user_decisions_file, exc)


def restore_or_save(store: Store) -> int:
    """At a writing open: restore the file's decisions into a database that has never
    committed, or else bring the file up to date. Returns how many decisions it restored."""
    path = store.user_decisions_file
    if path is None:
        return 0
    if store.last_version() == 0:
        try:
            saved = read(path)
        except StoreError as exc:
            log.warning("user decisions not restored: %s", exc)
            return 0
        if saved is not None and saved.changes:
            store.apply_user_changes(saved.changes, None, None)
            log.warning(
                "restored %d user decisions (renames, pins, archive flags, projects) from %s",
                len(saved.changes),
                path,
            )
            return len(saved.changes)
    after_change(store)
    return 0
