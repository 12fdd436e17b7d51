"""Numbered SQL migrations, applied in order; the schema version lives in PRAGMA user_version."""

from __future__ import annotations

import functools
import sqlite3
from importlib import resources

from sessionbase.errors import StoreError
from sessionbase.store._sqlite_health import table_names


@functools.cache
def _scripts() -> list[tuple[int, str]]:
    folder = resources.files("sessionbase.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    return max(number for number, _ in _scripts())


@functools.cache
def tables() -> set[str]:
    """The tables the newest schema has."""
    return table_names([script for _, script in _scripts()])


def migrate(db: sqlite3.Connection, *, readonly: bool = False) -> int:
    """Bring the database up to the newest schema; refuse one written by a newer sessionbase."""
    current = int(db.execute("PRAGMA user_version").fetchone()[0])
    latest = latest_version()
    if current > latest:
        raise StoreError(
            f"the database has schema version {current}, newer than this sessionbase "
            f"understands ({latest}); upgrade sessionbase or point --data-dir elsewhere"
        )
    if current == latest or readonly:
        return current
    for number, script in _scripts():
        if number <= current:
            continue
        db.execute("BEGIN IMMEDIATE")
        if int(db.execute("PRAGMA user_version").fetchone()[0]) >= number:
            db.execute("COMMIT")  # another process migrated while we waited for the lock
            continue
        try:
            for statement in _statements(script):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except sqlite3.Error:
            db.execute("ROLLBACK")
            raise
    return latest


def _statements(script: str) -> list[str]:
    """Split a migration into complete statements (trigger bodies hold semicolons too)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
