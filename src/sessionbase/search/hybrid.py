"""One entry point for every search mode, and reciprocal-rank fusion for ``hybrid``.

Hybrid ranks each hit by ``sum(1 / (RRF_K + rank))`` over the full-text and semantic result
lists (Cormack et al.'s reciprocal-rank fusion), so neither score scale dominates. When no
embeddings exist yet, hybrid is simply full-text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sessionbase.errors import FunctionError
from sessionbase.search import fulltext, semantic
from sessionbase.search.fulltext import Hit
from sessionbase.store import Store
from sessionbase.store.base import SearchFilter

RRF_K = 60
CANDIDATES = 50


def search(store: Store, query: str, mode: str, flt: SearchFilter, limit: int) -> list[Hit]:
    """The best ``limit`` hits for ``query`` in ``mode`` (text | semantic | hybrid)."""
    if mode == "text":
        return fulltext.search_text(store, query, flt, limit)
    if mode == "semantic":
        if not semantic.available(store):
            raise FunctionError("semantic search has no embeddings yet; try mode text")
        return semantic.search(store, query, flt, limit)
    if mode != "hybrid":
        raise FunctionError(f"unknown search mode {mode!r}")
    text_hits = fulltext.search_text(store, query, flt, max(limit, CANDIDATES))
    if not semantic.available(store):
        return text_hits[:limit]
    meaning_hits = semantic.search(store, query, flt, max(limit, CANDIDATES))
    # A semantic hit is a whole unit (a user message, or an assistant run): a text hit on a
    # message inside that run is the same result, found twice.
    starts = store.unit_starts([(h.thread_id, h.idx) for h in text_hits])
    return fuse(
        [text_hits, meaning_hits],
        limit,
        key=lambda h: (h.thread_id, starts.get((h.thread_id, h.idx), h.idx)),
    )


def fuse(
    rankings: list[list[Hit]],
    limit: int,
    key: Callable[[Hit], tuple[str, int]] = lambda h: (h.thread_id, h.idx),
) -> list[Hit]:
    """Reciprocal-rank fusion; the first list's hit supplies the snippet of a shared key."""
    scores: dict[tuple[str, int], float] = defaultdict(float)
    best: dict[tuple[str, int], Hit] = {}
    for hits in rankings:
        seen: set[tuple[str, int]] = set()
        for rank, hit in enumerate(hits):
            k = key(hit)
            if k in seen:
                continue  # one list may not count a result twice
            seen.add(k)
            scores[k] += 1.0 / (RRF_K + rank + 1)
            best.setdefault(k, hit)
    order = sorted(scores, key=lambda k: (-scores[k], k))
    return [_with_score(best[k], scores[k]) for k in order[:limit]]


def _with_score(hit: Hit, score: float) -> Hit:
    return Hit(**{**hit.__dict__, "score": score})


def group_by_thread(hits: list[Hit], limit: int) -> list[dict[str, Any]]:
    """Thread-level view: threads ordered by their best hit, each with up to 3 hits."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.thread_id, []).append(hit)
    ranked = sorted(groups.values(), key=lambda g: -max(h.score for h in g))
    out = []
    for group in ranked[:limit]:
        first = group[0]
        out.append(
            {
                "thread_id": first.thread_id,
                "title": first.thread_title,
                "project_id": first.project_id,
                "source": first.source,
                "score": round(max(h.score for h in group), 6),
                "hit_count": len(group),
                "hits": [h.to_json() for h in group[:3]],
                "resume_command": f"codex resume {first.thread_id}",
            }
        )
    return out
