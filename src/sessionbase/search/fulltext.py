"""Full-text search: BM25 from FTS5, nudged toward recent threads and matching titles.

BM25 decides; the boosts only reorder near-ties: a hit in a thread whose title also matches
gains ``TITLE_BOOST``, and recent hits gain up to ``RECENCY_BOOST`` (half-life
``RECENCY_HALF_LIFE_DAYS``). Candidates are over-fetched so the boosts can reorder them.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

from sessionbase.store.base import SearchFilter
from sessionbase.store.fts import fts_query, highlight_terms
from sessionbase.store.sqlite import SQLiteStore

TITLE_BOOST = 0.3
RECENCY_BOOST = 0.2
RECENCY_HALF_LIFE_DAYS = 30.0
OVERFETCH = 4
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class Hit:
    thread_id: str
    idx: int
    score: float
    snippet: str
    role: str
    kind: str
    ts: int | None
    thread_title: str | None
    project_id: str | None
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "idx": self.idx,
            "score": round(self.score, 6),
            "snippet": self.snippet,
            "role": self.role,
            "kind": self.kind,
            "ts": self.ts,
            "thread_title": self.thread_title,
            "project_id": self.project_id,
            "source": self.source,
            "resume_command": f"codex resume {self.thread_id}",
        }


def search_text(
    store: SQLiteStore, query: str, flt: SearchFilter, limit: int, now_ms: int | None = None
) -> list[Hit]:
    """The best ``limit`` messages for ``query``; empty when nothing in it is searchable."""
    match = fts_query(query)
    if match is None:
        return []
    rows = store.search_messages(match, flt, limit * OVERFETCH)
    titled = store.search_thread_titles(match, flt, 200) if rows else {}
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    marker = _marker(query)
    hits = [_hit(row, titled, now, marker) for row in rows]
    hits.sort(key=lambda h: (-h.score, h.thread_id, h.idx))
    return hits[:limit]


def _marker(query: str) -> re.Pattern[str] | None:
    terms = highlight_terms(query)
    if not terms:
        return None
    return re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)


def _marked_snippet(text: str, marker: re.Pattern[str] | None) -> str:
    """A snippet around the first match with every match marked: for hits that FTS5 found
    through the ``parts`` column, which its own snippet() does not highlight."""
    flat = " ".join(text.split())
    found = marker.search(flat) if marker else None
    if found is None:
        return flat[:SNIPPET_CHARS]
    start = max(0, found.start() - SNIPPET_CHARS // 3)
    window = flat[start : start + SNIPPET_CHARS]
    assert marker is not None
    body = marker.sub(lambda m: f"<mark>{m.group()}</mark>", window)
    return ("…" if start else "") + body + ("…" if start + SNIPPET_CHARS < len(flat) else "")


def _hit(
    row: dict[str, Any], titled: dict[str, float], now: int, marker: re.Pattern[str] | None
) -> Hit:
    score = -float(row["rank"])  # FTS5's bm25() is negative: more negative is better
    boost = 1.0
    if row["thread_id"] in titled:
        boost += TITLE_BOOST
    ts = row["ts"] or row["thread_updated_at"]
    if ts:
        age_days = max(0.0, (now - ts) / 86_400_000)
        boost += RECENCY_BOOST * math.pow(0.5, age_days / RECENCY_HALF_LIFE_DAYS)
    return Hit(
        thread_id=row["thread_id"],
        idx=row["idx"],
        score=score * boost,
        snippet=(
            row["snippet"]
            if row["snippet"] and "<mark>" in row["snippet"]
            else _marked_snippet(row["text"], marker)
        ),
        role=row["role"],
        kind=row["kind"],
        ts=row["ts"],
        thread_title=row["thread_title"],
        project_id=row["project_id"],
        source=row["source"],
    )
