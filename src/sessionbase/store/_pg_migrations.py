"""Numbered SQL migrations for PostgreSQL, with SQLite's rules: applied in order, each in its
own transaction; a database of a newer schema is refused; a read-only open migrates nothing.

The version lives in ``schema_version``. An advisory lock makes replicas that start together
migrate one at a time: the second finds the work done.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg

from sessionbase.errors import StoreError

MIGRATION_LOCK = 0x5E55_0001  # pg_advisory_xact_lock key: one migrating process at a time


def _scripts() -> list[tuple[int, str]]:
    folder = resources.files("sessionbase.store") / "pg_migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    return max(number for number, _ in _scripts())


def current_version(conn: psycopg.Connection[Any]) -> int:
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any], *, readonly: bool = False) -> int:
    """Bring the database up to the newest schema (``conn`` is in autocommit mode)."""
    current = current_version(conn)
    latest = latest_version()
    if current > latest:
        raise StoreError(
            f"the database has schema version {current}, newer than this sessionbase "
            f"understands ({latest}); upgrade sessionbase or point --database elsewhere"
        )
    if readonly:
        if current == 0:
            raise StoreError(
                "the database holds no sessionbase tables yet: run `sessionbase backfill` "
                "or `sessionbase serve` with this --database first"
            )
        return current
    if current == latest:
        return current
    for number, script in _scripts():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            if current_version(conn) >= number:
                continue  # another process migrated while we waited for the lock
            conn.execute(script.encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    return latest
