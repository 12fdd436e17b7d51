"""One entry point for every search mode, and the fusion behind ``hybrid``.

Hybrid fuses the full-text hits with the semantic hits that clear the similarity floor of the
model in use (``SIMILARITY_FLOORS``) by reciprocal-rank fusion: each scores
``sum(1 / (RRF_K + rank))`` over the two lists (Cormack et al.), so neither score scale
dominates. The semantic hits under the floor come after all of them, most similar first. So:

- full-text hits, which match every query term, are never pushed down by a weak semantic hit:
  under the floor lie 99.98 % of the (query, unrelated unit) pairs of the evaluation set's
  tuning queries (``bench/bench_search_quality.py`` measures it), and from there they only
  fill the list;
- a semantic hit is a unit (a user message or a run of assistant output, ``search.units``): when
  full-text found messages inside it, it adds to the best-ranked of them instead of being listed
  again, and the others stay listed on their own;
- when full-text finds nothing (a question in other words), hybrid ranks as semantic does.

A model without a measured floor has every semantic hit treated as weak: full-text hits first,
then semantic ones. When nothing is embedded yet, hybrid is simply full-text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionbase.errors import FunctionError
from sessionbase.search import fulltext, semantic
from sessionbase.search.fulltext import Hit
from sessionbase.store import Store
from sessionbase.store.base import SearchFilter

RRF_K = 60
CANDIDATES = 50

# Similarity (after the ANN index's projection, see ``search.ann``) a semantic hit needs to be
# fused, per embedding model. Measured with ``bench/bench_search_quality.py`` on the tuning
# queries of ``tests/data/search_eval_corpus.json``: the lowest floor at which hybrid's
# recall@5 and MRR peak. For the static model, 1 in 6,000 unrelated (query, unit) pairs and
# 11 % of related ones clear it; for the transformer, 1 in 12,000 and 6 %.
SIMILARITY_FLOORS = {"minilm-m2v-256-c800": 0.45, "minilm-l6-int8-t128": 0.55}

Floor = float | Mapping[str, float] | None
"""One floor for every semantic hit, a floor per embedding model (``Hit.model``), or none."""


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
    return fuse(text_hits, meaning_hits, SIMILARITY_FLOORS, limit)


def _floor_of(floor: Floor, hit: Hit) -> float | None:
    if floor is None or isinstance(floor, float | int):
        return floor
    return floor.get(hit.model or "")


def fuse(text_hits: list[Hit], meaning_hits: list[Hit], floor: Floor, limit: int) -> list[Hit]:
    """Full-text hits and semantic hits at or above their ``floor`` (None: no hit is) by
    reciprocal-rank fusion, then the semantic hits under it that full-text did not find.
    Every hit's score is its fused score; the weak ones score as if ranked after both lists,
    so scores fall along the list."""
    scores: dict[tuple[str, int], float] = {}
    shown: dict[tuple[str, int], Hit] = {}
    for rank, hit in enumerate(text_hits, 1):
        key = (hit.thread_id, hit.idx)
        if key not in scores:
            scores[key] = 1.0 / (RRF_K + rank)
            shown[key] = hit
    weak: list[Hit] = []
    for rank, hit in enumerate(meaning_hits, 1):
        within = _first_within(text_hits, hit)
        hit_floor = _floor_of(floor, hit)
        if hit_floor is not None and hit.score >= hit_floor:
            key = (within.thread_id, within.idx) if within else (hit.thread_id, hit.idx)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
            shown.setdefault(key, hit)
        elif within is None:
            weak.append(hit)
    # On a tie (full-text and semantic hits of the same rank), the full-text hit goes first.
    lexical = {(h.thread_id, h.idx) for h in text_hits}
    order = sorted(scores, key=lambda k: (-scores[k], k not in lexical, k))
    fused = [_with_score(shown[k], scores[k]) for k in order]
    after = RRF_K + max(len(text_hits), len(meaning_hits))
    fused += [_with_score(hit, 1.0 / (after + n)) for n, hit in enumerate(weak, 1)]
    return fused[:limit]


def _first_within(text_hits: list[Hit], unit: Hit) -> Hit | None:
    """The best-ranked full-text hit on a message of a semantic hit's unit."""
    end = unit.idx if unit.end_idx is None else unit.end_idx
    return next(
        (h for h in text_hits if h.thread_id == unit.thread_id and unit.idx <= h.idx <= end),
        None,
    )


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
