"""`status:get` and `projects:list` re-run on every commit that touches a file or a thread, so
on SQLite their queries must read narrow indexes, never the wide rows (a source row carries
~6 KB of normalizer state: scanning 10,000 of them took ~300 ms per commit). The test records
every statement they run and checks SQLite's plan for each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sessionbase.store.sqlite import SQLiteStore


def _plans(db: sqlite3.Connection, statements: list[str]) -> list[str]:
    steps = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            steps += [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return steps


def test_summary_and_projects_read_covering_indexes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sessionbase.db")
    db: sqlite3.Connection = store._db
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        store.summary()
        store.projects()
    finally:
        db.set_trace_callback(None)
        store.close()
    checker = sqlite3.connect(tmp_path / "sessionbase.db")
    steps = _plans(checker, statements)
    checker.close()
    scans = [s for s in steps if s.startswith("SCAN") and ("sources" in s or "threads" in s)]
    assert scans, steps
    for step in scans:
        assert "COVERING INDEX" in step, f"{step} reads whole rows: {steps}"
