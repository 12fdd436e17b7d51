"""Whether an SQLite file is a sound sessionbase database, and what SQLite's errors mean to
the user who has to act on them.

Opening checks only what costs the same at any size (1-2 ms on a 424 MB database, measured
by bench/bench_store_open.py): the file's header, the schema version, that every table exists,
and that each table's first page reads. Damage deeper in the file surfaces when a read reaches
it, as ``DatabaseDamaged``; ``integrity_check``, which reads the whole file (1.4 s for those
424 MB), is for ``sessionbase doctor``.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from sessionbase.errors import DatabaseDamaged, StoreError

REBUILD = (
    "run `sessionbase doctor --repair` to set it aside and rebuild the mirror from your"
    " rollouts (your renames, pins, archive flags and projects are kept)"
)


def database_size(path: Path) -> int | None:
    """The file's size (None when there is no file), from its metadata alone.

    Nothing here may open the database file: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's included. A serving process that opened
    one more store would then hold its WAL without the shared lock that tells a CLI writer
    it is not alone, and that writer, closing last as it believes, deletes the WAL the
    server still writes to: each then sees a different database (lost commits, stale reads,
    "disk I/O error"). SQLite checks the header as it opens the file (``SQLITE_NOTADB``,
    worded by ``store_error``).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read the database {path}: {exc.strerror}") from exc
    if size and not os.access(path, os.R_OK):
        raise StoreError(f"cannot read the database {path}: {os.strerror(errno.EACCES)}")
    return size


def decisions_file(path: Path) -> Path:
    """The user-decisions file kept beside the database ``path``."""
    return path.with_name(f"{path.stem}-decisions.json")


def empty_database(path: Path) -> DatabaseDamaged:
    return DatabaseDamaged(
        f"the database {path} is empty: run `sessionbase backfill` to rebuild it from your"
        " rollouts (the user decisions saved beside it come back with it)"
    )


def connect_readonly(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that never writes, even where the directory is read-only.

    A WAL database is read through its ``-shm`` index file, which a reader creates if it is
    missing; in a read-only directory it cannot. Then no writer has the database open (each
    keeps that file), so it is opened immutable: SQLite reads the file as it stands.
    """
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    db = sqlite3.connect(
        uri, uri=True, isolation_level=None, timeout=30.0, check_same_thread=check_same_thread
    )
    try:
        db.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        db.close()
        name = getattr(exc, "sqlite_errorname", "")
        if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or _has_wal(path):
            raise
    return sqlite3.connect(
        uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=check_same_thread
    )


def _has_wal(path: Path) -> bool:
    try:
        return path.with_name(path.name + "-wal").stat().st_size > 0
    except OSError:
        return False


def table_names(scripts: list[str]) -> set[str]:
    """The tables a set of migration scripts leaves behind."""
    made: set[str] = set()
    for script in scripts:
        made |= set(re.findall(r"CREATE (?:VIRTUAL )?TABLE (?:IF NOT EXISTS )?(\w+)", script))
        made -= set(re.findall(r"DROP TABLE (?:IF EXISTS )?(\w+)", script))
    return made


def check_tables(db: sqlite3.Connection, path: Path, expected: set[str]) -> None:
    """Every table the schema promises exists and its first page reads; DatabaseDamaged
    otherwise. Costs a page read per table, whatever the database's size."""
    present = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    missing = sorted(expected - present)
    if missing:
        raise DatabaseDamaged(
            f"the database {path} has lost its table{'s' if len(missing) > 1 else ''}"
            f" {', '.join(missing)}: {REBUILD}"
        )
    for table in sorted(expected):
        db.execute(f'SELECT * FROM "{table}" LIMIT 1').fetchall()


def integrity_check(db: sqlite3.Connection) -> list[str]:
    """SQLite's full check of the file (``PRAGMA integrity_check``: every page, and every
    index against its table): the problems it lists (at most 20), or none. About half a
    second per 100 MB on a small machine, and it grows with the file: for ``sessionbase
    doctor``, never an open (see bench/bench_store_open.py)."""
    try:
        rows = [str(r[0]) for r in db.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:  # too damaged to walk at all
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def store_error(exc: BaseException, path: Path) -> StoreError:
    """What an SQLite error means for the user, and what to do about it."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_NOTADB"):  # a bad magic string or page size: page 1's header
        return DatabaseDamaged(
            f"{path} is not an SQLite database, or its header is damaged: {REBUILD}"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return DatabaseDamaged(f"the database {path} is damaged ({exc}): {REBUILD}")
    if name.startswith("SQLITE_READONLY") or (
        name.startswith("SQLITE_CANTOPEN") and not os.access(path.parent, os.W_OK)
    ):
        return StoreError(read_only(path))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"the database {path} is busy ({exc}): try again in a moment")
    if name.startswith("SQLITE_FULL"):
        return StoreError(f"the disk holding {path} is full: free some space, then try again")
    if name.startswith("SQLITE_IOERR"):
        return StoreError(
            f"cannot read or write the database {path} ({exc}): check the disk, then run"
            " `sessionbase doctor`"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(f"cannot open the database {path} ({exc}): is its directory there?")
    return StoreError(f"the database {path} failed: {exc} (`sessionbase doctor` checks it)")


def read_only(path: Path) -> str:
    """Why a writing command cannot run on a read-only database, and what to do."""
    return (
        f"cannot write to the database {path}: it or its directory is read-only. backfill and"
        " serve need to write; read commands work as it is. Make it writable, or choose"
        " another data dir with --data-dir"
    )


def set_aside(path: Path, why: str) -> list[Path]:
    """Rename a database and its ``-wal`` and ``-shm`` files to ``NAME.WHY-STAMP`` (the
    same stamp for all three, so they still belong together): never delete them."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    moved = []
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            target = path.with_name(f"{path.name}.{why}-{stamp}{suffix}")
            source.rename(target)
            moved.append(target)
    return moved


def salvage_user_changes(path: Path) -> list[tuple[str, str, str, str]] | None:
    """Whatever rows of ``user_metadata`` a damaged database still yields, read as far as
    they go: (entity, id, key, JSON value). None when none can be read."""
    rows: list[tuple[str, str, str, str]] = []
    try:
        db = connect_readonly(path)
    except sqlite3.Error:
        return None
    try:
        for row in db.execute("SELECT entity, id, key, value FROM user_metadata"):
            rows.append((str(row[0]), str(row[1]), str(row[2]), str(row[3])))
    except sqlite3.Error:
        if not rows:
            return None
    finally:
        db.close()
    return rows
