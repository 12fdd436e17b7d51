"""Full-text and semantic lookups over a sessionbase database: ranked message and title hits,
and the units that embeddings are keyed by. ``SQLiteStore`` inherits these queries."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from sessionbase.store._sqlite_fts import fts5_match
from sessionbase.store.base import SearchFilter
from sessionbase.store.textquery import TextQuery


def _search_where(
    flt: SearchFilter, *, thread_alias: str = "t", message_alias: str | None = "m"
) -> tuple[list[str], list[Any]]:
    """SQL conditions and their arguments for a search filter, over the thread and (unless
    ``message_alias`` is None) the message tables as aliased in the query."""
    t, m = thread_alias, message_alias
    where: list[str] = []
    args: list[Any] = []

    def where_given(condition: str, value: Any) -> None:
        if value is not None:
            where.append(condition)
            args.append(value)

    where_given(f"{t}.project_id = ?", flt.project_id)
    where_given(f"{t}.source = ?", flt.source)
    where_given(f"{t}.machine = ?", flt.machine)
    where_given(f"{t}.id = ?", flt.thread_id)
    if not flt.include_subagents:
        where.append(f"{t}.parent_thread_id IS NULL AND coalesce({t}.source, '') != 'subagent'")
    if m is not None:
        where_given(f"{m}.role = ?", flt.role)
        where_given(f"{m}.kind = ?", flt.kind)
        where_given(f"{m}.ts >= ?", flt.since)
        where_given(f"{m}.ts < ?", flt.until)
    return where, args


class SQLiteSearch:
    """The search queries of ``SQLiteStore``."""

    _db: sqlite3.Connection

    def search_messages(
        self, query: TextQuery, flt: SearchFilter, limit: int
    ) -> list[dict[str, Any]]:
        """Full-text hits, best BM25 first: message fields, thread title and facts, rank
        (FTS5's bm25, lower is better). No snippet: the caller makes one for what it keeps.

        Ranking happens before any join: SQLite computes every result column of every row
        that enters the top-N sorter, so joining ``messages`` and ``threads`` (and making
        snippets) before ``ORDER BY … LIMIT`` did that work for every hit of a common word.
        Without a filter (subagents aside: few) the top rows come from FTS5 alone and are
        then checked; with one, the filter joins in but only rowid and rank are sorted.
        """
        match = fts5_match(query)
        if match is None:
            return []
        where, args = _search_where(flt)
        ranked: list[tuple[int, float]] = []
        if flt == SearchFilter(include_subagents=flt.include_subagents):
            k = 2 * limit
            ranked = self._db.execute(
                "SELECT rowid, bm25(message_search, 1.0, 0.6) AS score FROM message_search"
                " WHERE message_search MATCH ? ORDER BY score LIMIT ?",
                (match, k),
            ).fetchall()
            rows = self._search_rows(ranked, where, args)
            if len(rows) >= limit or len(ranked) < k:
                return rows[:limit]
        ranked = self._db.execute(
            "SELECT m.rowid, bm25(message_search, 1.0, 0.6) AS score"
            " FROM message_search JOIN messages m ON m.rowid = message_search.rowid"
            " JOIN threads t ON t.id = m.thread_id"
            " WHERE message_search MATCH ?"
            + "".join(f" AND {w}" for w in where)
            + " ORDER BY score LIMIT ?",
            [match, *args, limit],
        ).fetchall()
        return self._search_rows(ranked, [], [])

    def _search_rows(
        self, ranked: list[tuple[int, float]], where: list[str], args: list[Any]
    ) -> list[dict[str, Any]]:
        """The rows of ranked message rowids that pass ``where``, in the given order."""
        if not ranked:
            return []
        rank = {int(rowid): float(score) for rowid, score in ranked}
        rows = self._db.execute(
            "SELECT m.rowid AS message_rowid, m.thread_id, m.idx, m.role, m.kind, m.ts, m.text,"
            " t.title AS thread_title, t.project_id, t.source, t.updated_at AS thread_updated_at"
            " FROM messages m JOIN threads t ON t.id = m.thread_id"
            " WHERE m.rowid IN (SELECT value FROM json_each(?))"
            + "".join(f" AND {w}" for w in where),
            [orjson.dumps(list(rank)).decode(), *args],
        )
        found = [{**dict(r), "rank": rank[r["message_rowid"]]} for r in rows]
        found.sort(key=lambda r: (r["rank"], r["message_rowid"]))
        for row in found:
            del row["message_rowid"]
        return found

    def search_thread_titles(
        self, query: TextQuery, flt: SearchFilter, limit: int
    ) -> dict[str, float]:
        """Threads whose title matches: id → BM25 rank (lower is better)."""
        match = fts5_match(query)
        if match is None:
            return {}
        where, args = _search_where(flt, thread_alias="t", message_alias=None)
        sql = (
            "SELECT t.id, bm25(thread_search, 1.0, 0.6) AS rank"
            " FROM thread_search JOIN threads t ON t.rowid = thread_search.rowid"
            " WHERE thread_search MATCH ?"
            + "".join(f" AND {w}" for w in where)
            + " ORDER BY rank LIMIT ?"
        )
        return {r[0]: float(r[1]) for r in self._db.execute(sql, [match, *args, limit])}

    def units_for_hashes(self, hashes: list[str], flt: SearchFilter) -> list[dict[str, Any]]:
        """Units with these content hashes that pass the filter, with their thread's facts."""
        if not hashes:
            return []
        where, args = _search_where(flt, message_alias="m")
        marks = ",".join("?" * len(hashes))
        rows = self._db.execute(
            "SELECT u.thread_id, u.start_idx, u.end_idx, u.role, u.content_hash, u.text,"
            " m.ts, m.kind, t.title AS thread_title, t.project_id, t.source"
            " FROM units u JOIN threads t ON t.id = u.thread_id"
            " LEFT JOIN messages m ON m.thread_id = u.thread_id AND m.idx = u.start_idx"
            f" WHERE u.content_hash IN ({marks})" + "".join(f" AND {w}" for w in where),
            [*hashes, *args],
        )
        return [dict(r) for r in rows]

    def units_of(self, thread_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM units WHERE thread_id = ? ORDER BY start_idx", (thread_id,)
        )
        return [dict(r) for r in rows]

    def unit_at(self, thread_id: str, idx: int) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT * FROM units WHERE thread_id = ? AND start_idx <= ? AND end_idx >= ?"
            " ORDER BY start_idx DESC LIMIT 1",
            (thread_id, idx, idx),
        ).fetchone()
        return None if row is None else dict(row)

    def unit_hashes(self, newest_first: bool = False) -> list[str]:
        if not newest_first:
            return [r[0] for r in self._db.execute("SELECT DISTINCT content_hash FROM units")]
        return [
            r[0]
            for r in self._db.execute(
                "SELECT u.content_hash FROM units u JOIN threads t ON t.id = u.thread_id"
                " GROUP BY u.content_hash"
                " ORDER BY max(coalesce(t.last_message_at, t.updated_at, 0)) DESC, u.content_hash"
            )
        ]

    def like_scan(self, needle: str, limit: int) -> list[tuple[str, int]]:
        """The naive baseline: a LIKE scan over all message text (benchmarks only)."""
        rows = self._db.execute(
            "SELECT thread_id, idx FROM messages WHERE text LIKE ? LIMIT ?", (f"%{needle}%", limit)
        )
        return [(r[0], r[1]) for r in rows]
