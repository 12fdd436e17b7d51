"""Queries a live page re-runs on every commit must read only what they need. `status:get` and
`projects:list` re-run on every commit that touches a file or a thread, so on SQLite they must
read narrow indexes, never the wide rows (a source row carries ~6 KB of normalizer state:
scanning 10,000 of them took ~300 ms per commit); a history page that keeps its end, and the
pinned list, must read an index range, not every thread. Each test records the statements a
store call runs and checks SQLite's plan for each. On PostgreSQL, a common word's search ranks
a bounded number of matches, the planner has statistics after a first backfill, and a thread
list is read in an index's order."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sessionbase.store import _pg_search, postgres
from sessionbase.store._pg_reads import PgReads
from sessionbase.store._sqlite_reads import thread_query
from sessionbase.store.base import IngestBatch, SearchFilter, SourceRow, ThreadFilter
from sessionbase.store.postgres import PostgresStore
from sessionbase.store.rows import MessageRow
from sessionbase.store.sqlite import SQLiteStore
from sessionbase.store.textquery import parse_query
from tests.support.postgres import TestDatabases


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


# ------------------------------------------------------------------ PostgreSQL's full-text search


def _messages(thread: str, texts: list[str]) -> IngestBatch:
    """One thread's messages, the later ones newer."""
    rows = [
        MessageRow(thread, idx, "user", "message", text, ts=1_700_000_000_000 + idx).values()
        for idx, text in enumerate(texts)
    ]
    return IngestBatch(
        SourceRow(f"/{thread}.jsonl", "/home", thread_id=thread),
        thread={"id": thread, "message_count": len(rows), "archived": 0},
        messages=rows,
    )


@pytest.mark.integration
def test_postgres_ranks_the_most_recent_matches_of_a_common_word(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best match is oldest: found while every match is ranked, and left out once the
    word is in more messages than are ranked (the newest of them are)."""
    texts = ["quokka"] + [f"quokka {' '.join(['filler'] * n)} {n}" for n in range(1, 7)]
    store = PostgresStore(pg_url, machine="test-machine")
    try:
        store.commit(_messages("t1", texts))
        query = parse_query("quokka", prefix_last=False)
        assert query is not None

        def ranked() -> list[int]:
            return [r["idx"] for r in store.search_messages(query, SearchFilter(), 3)]

        assert ranked()[0] == 0  # the shortest message, alone with the word
        monkeypatch.setattr(_pg_search, "RANKED_CANDIDATES", 4)
        assert sorted(ranked()) == [3, 4, 5]  # the best (shortest) 3 of the newest 4
        since = SearchFilter(until=1_700_000_000_000 + 4)  # the filters apply first
        assert [r["idx"] for r in store.search_messages(query, since, 3)][0] == 0
    finally:
        store.close()


@pytest.mark.integration
def test_postgres_analyzes_the_tables_after_a_big_pass(
    pg_databases: TestDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first backfill leaves planner statistics (``reltuples`` is -1 until a table is
    analyzed, so the database is a new one, not an emptied one); a small pass leaves them to
    autovacuum."""
    monkeypatch.setattr(postgres, "ANALYZE_AFTER_MESSAGES", 5)
    pg_url = pg_databases.create()

    def analyzed() -> bool:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'messages'")
            return float(row.fetchone()[0]) >= 0  # type: ignore[index]

    store = PostgresStore(pg_url, machine="test-machine")
    try:
        with store.grouped_commits():
            store.commit(_messages("t1", ["one", "two"]))
        assert not analyzed()
        with store.grouped_commits():
            store.commit(_messages("t2", ["one", "two", "three"]))
            store.commit(_messages("t3", ["four", "five"]))
        assert analyzed()
    finally:
        store.close()
        pg_databases.drop(pg_url)


@pytest.mark.integration
@pytest.mark.parametrize(
    "flt",
    [ThreadFilter(), ThreadFilter(project_id="p1", until=(1_700_000_000_000, "t"))],
    ids=["recent", "a project's page"],
)
def test_postgres_thread_lists_are_in_an_index_order(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, flt: ThreadFilter
) -> None:
    """The thread list's order is an index's (updated_at DESC NULLS LAST, id in byte order):
    with sorting priced out, its plan still has no sort. (At 8,200 threads the sort of the
    whole table took 20 ms a list.)"""
    ran: list[tuple[str, Any]] = []
    dicts = PgReads._dicts

    def recording(self: PgReads, sql: str, params: Any = None, **kw: Any) -> Any:
        ran.append((sql, params))
        return dicts(self, sql, params, **kw)

    monkeypatch.setattr(PgReads, "_dicts", recording)
    store = PostgresStore(pg_url, machine="test-machine")
    try:
        store.threads(flt)
    finally:
        store.close()
    ((sql, params),) = [(s, p) for s, p in ran if "FROM threads" in s]
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET enable_sort = off")
        plan = [r[0] for r in conn.execute(f"EXPLAIN {sql}", params)]
    assert not any("Sort" in step for step in plan), plan
    assert any("threads_newest" in step for step in plan), plan
