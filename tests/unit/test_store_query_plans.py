"""Queries a live page re-runs on every commit must read only what they need. `status:get` and
`projects:list` re-run on every commit that touches a file or a thread, so on SQLite they must
read narrow indexes, never the wide rows (a source row carries ~6 KB of normalizer state:
scanning 10,000 of them took ~300 ms per commit); a history page that keeps its end, and the
pinned list, must read an index range, not every thread. Each test records the statements a
store call runs and checks SQLite's plan for each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sessionbase.store._sqlite_reads import thread_query
from sessionbase.store.base import ThreadFilter
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


def _plan(tmp_path: Path, flt: ThreadFilter) -> list[str]:
    """SQLite's plan for the thread list query, its parameters bound (as the store runs it:
    the planner cannot see that two parameters are equal, as it can with literals)."""
    SQLiteStore(tmp_path / "sessionbase.db").close()
    sql, args = thread_query(flt)
    db = sqlite3.connect(tmp_path / "sessionbase.db")
    try:
        return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args)]
    finally:
        db.close()


def test_a_page_that_keeps_its_end_reads_an_index_range(tmp_path: Path) -> None:
    flt = ThreadFilter(include_subagents=False, pinned=False, until=(1_700_000_000_000, "t"))
    steps = _plan(tmp_path, flt)
    assert steps[0].startswith("SEARCH threads USING INDEX threads_by_updated (updated_at>"), steps


def test_pinned_threads_are_read_from_their_own_index(tmp_path: Path) -> None:
    steps = _plan(tmp_path, ThreadFilter(pinned=True))
    assert any("threads_pinned" in s for s in steps), steps
