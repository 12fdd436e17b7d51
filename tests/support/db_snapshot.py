"""Whole-table snapshots of a sessionbase SQLite database, for "same rows as a clean ingest" tests.

A snapshot maps each table to its rows as sorted tuples of ``(column, value)`` pairs, with JSON
columns decoded (so formatting differences between ``orjson`` and SQLite's ``json_patch`` do not
count) and bookkeeping columns that legitimately differ between two runs left out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

# Tables that hold mirrored content (commit_log and settings_kv are bookkeeping).
CONTENT_TABLES = ("threads", "messages", "projects", "extras", "sources", "quarantine")
JSON_COLUMNS = {
    ("messages", "data"),
    ("threads", "git"),
    ("threads", "source_detail"),
    ("sources", "skipped"),
    ("sources", "state"),
}
# Wall-clock bookkeeping: when a row was written, not what it says.
ALWAYS_IGNORED = {("sources", "updated_at")}

Row = tuple[tuple[str, Any], ...]
Snapshot = dict[str, list[Row]]


def _canonical(value: Any) -> Any:
    """A hashable, order-independent form of a decoded JSON value."""
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_canonical(v) for v in value)
    return value


# Columns only the PostgreSQL schema has: its own search index, and the machine of a file
# (SQLite serves one machine).
POSTGRES_ONLY = {("messages", "search"), ("threads", "title_search"), ("sources", "machine"),
                 ("quarantine", "machine")}  # fmt: skip


def snapshot(
    database: Path | str,
    tables: Iterable[str] = CONTENT_TABLES,
    *,
    ignore: Iterable[tuple[str, str]] = (),
) -> Snapshot:
    """Every row of ``tables`` in ``database`` (a SQLite file or a PostgreSQL URL), minus
    the ``(table, column)`` pairs ignored; the same rows give the same snapshot on both."""
    skip = ALWAYS_IGNORED | set(ignore)
    if str(database).startswith("postgresql://"):
        return _postgres_snapshot(str(database), tables, skip | POSTGRES_ONLY)
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        out: Snapshot = {}
        for table in tables:
            cursor = db.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            rows: list[Row] = []
            for raw in cursor:
                row = []
                for column, value in zip(columns, raw, strict=True):
                    if (table, column) in skip:
                        continue
                    if (table, column) in JSON_COLUMNS and value is not None:
                        value = _canonical(orjson.loads(value))
                    row.append((column, value))
                rows.append(tuple(row))
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        db.close()


def _postgres_snapshot(url: str, tables: Iterable[str], skip: set[tuple[str, str]]) -> Snapshot:
    import psycopg

    out: Snapshot = {}
    with psycopg.connect(url) as conn:
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table}")
            columns = [d.name for d in cursor.description or ()]
            rows: list[Row] = []
            for raw in cursor:
                row = []
                for column, value in zip(columns, raw, strict=True):
                    if (table, column) in skip:
                        continue
                    if (table, column) in JSON_COLUMNS and value is not None:
                        value = _canonical(orjson.loads(value))
                    elif isinstance(value, memoryview):
                        value = bytes(value)
                    row.append((column, value))
                rows.append(tuple(row))
            out[table] = sorted(rows, key=repr)
    return out


def table_counts(database: Path | str) -> dict[str, int]:
    if str(database).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(database)) as conn:
            return {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                for t in CONTENT_TABLES
            }
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in CONTENT_TABLES}
    finally:
        db.close()


def diff(left: Snapshot, right: Snapshot, limit: int = 5) -> str:
    """A short human description of how two snapshots differ (for assertion messages)."""
    lines = []
    for table in sorted(set(left) | set(right)):
        a, b = set(left.get(table, [])), set(right.get(table, []))
        if a == b:
            continue
        lines.append(f"{table}: {len(a - b)} rows only left, {len(b - a)} rows only right")
        for row in sorted(a - b, key=repr)[:limit]:
            lines.append(f"  - {dict(row)!r:.600}")
        for row in sorted(b - a, key=repr)[:limit]:
            lines.append(f"  + {dict(row)!r:.600}")
    return "\n".join(lines) or "no difference"
