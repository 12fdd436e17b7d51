"""Full-text and unit lookups on PostgreSQL: the search queries of ``PostgresStore``.

Messages carry a ``search`` tsvector of our own tokens (``_pg_fts``), matched through a GIN
index and ranked with ``ts_rank`` (length-normalized, whole tokens weighted as FTS5 weighs
its ``text`` column, parts as ``parts``). The rank is negated, as FTS5's bm25 is: lower is
better.

``ts_rank`` reads each candidate's whole tsvector, so ranking every match of a common word
costs as much as the word is common (FTS5 ranks inside its index). Only the
``RANKED_CANDIDATES`` most recent matches (after the filters) are ranked: a rare word's
matches are all of them (found through the GIN index), and a common word's are found by
walking ``messages_by_time`` newest first until enough match, whatever the size of the
history. Where a word is in more messages than that, its older ones are not searched for the
best rank; the search also favours recent hits (``search.fulltext``). Which of the two ways is
cheaper depends on the words, so a search is planned for its own words each time, never from
a prepared statement (whose generic plan would walk every message for a word in none). A
phrase (an identifier's parts, CJK bigrams) always takes the GIN index: the planner cannot
tell how many messages hold a phrase, and walking newest first for one that none holds reads
every message (a second at a million).
"""

from __future__ import annotations

from typing import Any

from sessionbase.store._pg_fts import RANK_WEIGHTS, tsquery
from sessionbase.store._pg_reads import PgReads
from sessionbase.store.base import SearchFilter
from sessionbase.store.textquery import TextQuery

RANKED_CANDIDATES = 1000


def _search_where(
    flt: SearchFilter, *, thread_alias: str = "t", message_alias: str | None = "m"
) -> tuple[list[str], list[Any]]:
    """SQL conditions and their arguments for a search filter (as ``_sqlite_search``)."""
    t, m = thread_alias, message_alias
    where: list[str] = []
    args: list[Any] = []

    def where_given(condition: str, value: Any) -> None:
        if value is not None:
            where.append(condition)
            args.append(value)

    where_given(f"{t}.project_id = %s", flt.project_id)
    where_given(f"{t}.source = %s", flt.source)
    where_given(f"{t}.machine = %s", flt.machine)
    where_given(f"{t}.id = %s", flt.thread_id)
    if not flt.include_subagents:
        where.append(f"{t}.parent_thread_id IS NULL AND coalesce({t}.source, '') != 'subagent'")
    if m is not None:
        where_given(f"{m}.role = %s", flt.role)
        where_given(f"{m}.kind = %s", flt.kind)
        where_given(f"{m}.ts >= %s", flt.since)
        where_given(f"{m}.ts < %s", flt.until)
    return where, args


class PgSearch(PgReads):
    """The search queries of ``PostgresStore`` (over its reads)."""

    def search_messages(
        self, query: TextQuery, flt: SearchFilter, limit: int
    ) -> list[dict[str, Any]]:
        """Full-text hits, best first: message fields, thread title and facts, rank."""
        match = tsquery(query)
        if match is None:
            return []
        where, args = _search_where(flt)
        newest = "m.ts + 0" if "<->" in match else "m.ts"  # + 0: not by messages_by_time
        return self._dicts(
            "SELECT c.thread_id, c.idx, c.role, c.kind, c.ts, c.text, c.thread_title,"
            " c.project_id, c.source, c.thread_updated_at,"
            " -ts_rank(%s::real[], c.search, %s::tsquery, 1) AS rank FROM ("
            " SELECT m.thread_id, m.idx, m.role, m.kind, m.ts, m.text, m.search,"
            " t.title AS thread_title, t.project_id, t.source,"
            " t.updated_at AS thread_updated_at"
            " FROM messages m JOIN threads t ON t.id = m.thread_id"
            " WHERE m.search @@ %s::tsquery"
            + "".join(f" AND {w}" for w in where)
            + f" ORDER BY {newest} DESC NULLS LAST LIMIT %s) c"
            ' ORDER BY rank, c.thread_id COLLATE "C", c.idx LIMIT %s',
            [RANK_WEIGHTS, match, match, *args, RANKED_CANDIDATES, limit],
            doing="search refused",
            prepare=False,
        )

    def search_thread_titles(
        self, query: TextQuery, flt: SearchFilter, limit: int
    ) -> dict[str, float]:
        match = tsquery(query)
        if match is None:
            return {}
        where, args = _search_where(flt, message_alias=None)
        rows = self._all(
            "SELECT t.id, -ts_rank(%s::real[], t.title_search, q.q, 1) AS rank"
            " FROM (SELECT %s::tsquery AS q) q, threads t WHERE t.title_search @@ q.q"
            + "".join(f" AND {w}" for w in where)
            + ' ORDER BY rank, t.id COLLATE "C" LIMIT %s',
            [RANK_WEIGHTS, match, *args, limit],
            doing="search refused",
            prepare=False,
        )
        return {r[0]: float(r[1]) for r in rows}

    def units_for_hashes(self, hashes: list[str], flt: SearchFilter) -> list[dict[str, Any]]:
        if not hashes:
            return []
        where, args = _search_where(flt, message_alias="m")
        return self._dicts(
            "SELECT u.thread_id, u.start_idx, u.end_idx, u.role, u.content_hash, u.text,"
            " m.ts, m.kind, t.title AS thread_title, t.project_id, t.source"
            " FROM units u JOIN threads t ON t.id = u.thread_id"
            " LEFT JOIN messages m ON m.thread_id = u.thread_id AND m.idx = u.start_idx"
            " WHERE u.content_hash = ANY(%s)" + "".join(f" AND {w}" for w in where),
            [hashes, *args],
        )

    def units_of(self, thread_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT * FROM units WHERE thread_id = %s ORDER BY start_idx", (thread_id,)
        )

    def unit_at(self, thread_id: str, idx: int) -> dict[str, Any] | None:
        rows = self._dicts(
            "SELECT * FROM units WHERE thread_id = %s AND start_idx <= %s AND end_idx >= %s"
            " ORDER BY start_idx DESC LIMIT 1",
            (thread_id, idx, idx),
        )
        return rows[0] if rows else None

    def unit_hashes(self, newest_first: bool = False) -> list[str]:
        if not newest_first:
            return [r[0] for r in self._all("SELECT DISTINCT content_hash FROM units")]
        return [
            r[0]
            for r in self._all(
                "SELECT u.content_hash FROM units u JOIN threads t ON t.id = u.thread_id"
                " GROUP BY u.content_hash"
                " ORDER BY max(coalesce(t.last_message_at, t.updated_at, 0)) DESC, u.content_hash"
            )
        ]
