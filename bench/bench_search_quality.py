"""Search quality: recall@5 and MRR per mode on judged queries over real Codex sessions.

    uv run python bench/bench_search_quality.py          # about half a minute

The queries and their judged answers are ``tests/data/search_eval_corpus.json`` (the shared
corpus's rollouts, mirrored with the synthetic threads of ``search_eval.json`` as distractors;
``tests/support/search_eval.py`` says how hits are counted). In one run it prints:

1. per split (dev: used to tune; test: held out) and mode, recall@5 and MRR, with hybrid
   twice: as it ranks now, and "before", the plain reciprocal-rank fusion it replaced (kept
   here only), which counted every full-text hit for the unit (assistant run) holding it and
   fused all semantic hits whatever their similarity;
2. the calibration of the similarity floor on the dev queries: how (query, unit) similarities
   of related and unrelated pairs are distributed, what share of each clears a floor, and
   hybrid's figures at each floor;
3. fusion methods measured at the chosen floor on the dev queries (weighted RRF, a convex
   combination of normalized scores, full-text first), beside the chosen one.

Only the bundled embedding model is measured. Nothing here asserts a figure; the test suite
asserts floors (tests/unit/test_search_eval.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests
from _common import git_version, log
from tests.support import search_eval
from tests.support.search_eval import EvalSet, Judged, Metrics

from sessionbase.search import hybrid, semantic
from sessionbase.search.fulltext import Hit
from sessionbase.store import Store, open_store
from sessionbase.store.base import SearchFilter

Legs = tuple[list[Hit], list[Hit]]  # full-text and semantic hits, CANDIDATES each
Fusion = Callable[[Store, list[Hit], list[Hit], int], list[Hit]]
SWEEP = (None, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
LOWER_FLOOR = 0.3


def rrf_before(store: Store, text: list[Hit], meaning: list[Hit], limit: int) -> list[Hit]:
    """The fusion hybrid used before: RRF (k 60) over both lists, a full-text hit counted for
    the unit holding its message (one result per unit), every semantic hit fused."""
    starts: dict[tuple[str, int], int] = {}
    for hit in text:
        unit = store.unit_at(hit.thread_id, hit.idx)
        if unit is not None:
            starts[(hit.thread_id, hit.idx)] = int(unit["start_idx"])
    scores: dict[tuple[str, int], float] = {}
    shown: dict[tuple[str, int], Hit] = {}
    for hits in (text, meaning):
        seen: set[tuple[str, int]] = set()
        for rank, hit in enumerate(hits, 1):
            key = (hit.thread_id, starts.get((hit.thread_id, hit.idx), hit.idx))
            if key in seen:
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + 1 / (hybrid.RRF_K + rank)
            shown.setdefault(key, hit)
    order = sorted(scores, key=lambda k: (-scores[k], k))
    return [shown[k] for k in order[:limit]]


def floored(floor: float | None) -> Fusion:
    """Hybrid with ``floor`` for the model that ranks the semantic hits (every unit of the
    eval set is refined, so that is the refining model)."""
    return lambda store, text, meaning, limit: hybrid.fuse(text, meaning, floor, limit)


def ranking_index(store: Store) -> semantic.SemanticIndex:
    """The index whose similarities the semantic hits carry: the refining model's."""
    index = semantic.index_for(store.data_dir)
    return index.refined or index


def _within(text: list[Hit], unit: Hit) -> Hit | None:
    end = unit.idx if unit.end_idx is None else unit.end_idx
    return next((h for h in text if h.thread_id == unit.thread_id and unit.idx <= h.idx <= end),
                None)  # fmt: skip


def _scored(
    text: list[Hit], meaning: list[Hit], floor: float, limit: int,
    text_score: Callable[[int, Hit], float], meaning_score: Callable[[int, Hit], float],
) -> list[Hit]:  # fmt: skip
    """Like ``hybrid.fuse`` (units join their best full-text hit, weak hits last), with other
    scores for a full-text and a strong semantic hit."""
    scores: dict[tuple[str, int], float] = {}
    shown: dict[tuple[str, int], Hit] = {}
    for rank, hit in enumerate(text, 1):
        key = (hit.thread_id, hit.idx)
        scores[key], shown[key] = text_score(rank, hit), hit
    weak = []
    for rank, hit in enumerate(meaning, 1):
        within = _within(text, hit)
        if hit.score >= floor:
            key = (within.thread_id, within.idx) if within else (hit.thread_id, hit.idx)
            scores[key] = scores.get(key, 0.0) + meaning_score(rank, hit)
            shown.setdefault(key, hit)
        elif within is None:
            weak.append(hit)
    order = sorted(scores, key=lambda k: (-scores[k], k))
    return ([shown[k] for k in order] + weak)[:limit]


def weighted_rrf(floor: float, semantic_weight: float) -> Fusion:
    k = hybrid.RRF_K
    return lambda store, text, meaning, limit: _scored(
        text, meaning, floor, limit,
        lambda rank, hit: 1 / (k + rank), lambda rank, hit: semantic_weight / (k + rank),
    )  # fmt: skip


def convex(floor: float, alpha: float) -> Fusion:
    """``alpha`` × BM25 over the best BM25 + (1 - alpha) × how far over the floor."""

    def fuse(store: Store, text: list[Hit], meaning: list[Hit], limit: int) -> list[Hit]:
        best_text = max((h.score for h in text), default=1.0) or 1.0
        best_meaning = max((h.score for h in meaning), default=floor)
        span = max(best_meaning - floor, 1e-9)
        return _scored(
            text, meaning, floor, limit,
            lambda rank, hit: alpha * hit.score / best_text,
            lambda rank, hit: (1 - alpha) * (hit.score - floor) / span,
        )  # fmt: skip

    return fuse


def full_text_first(floor: float) -> Fusion:
    """Every full-text hit in BM25 order, then strong semantic hits, then weak ones."""
    return lambda store, text, meaning, limit: _scored(
        text, meaning, floor, limit,
        lambda rank, hit: 2.0 - rank / 1e6, lambda rank, hit: 1.0 - rank / 1e6,
    )  # fmt: skip


def legs(store: Store, queries: list[Judged]) -> dict[str, Legs]:
    flt = SearchFilter()
    return {
        q.q: (
            hybrid.search(store, q.q, "text", flt, hybrid.CANDIDATES),
            hybrid.search(store, q.q, "semantic", flt, hybrid.CANDIDATES),
        )
        for q in queries
    }


def run(store: Store, queries: list[Judged], got: dict[str, Legs], fusion: Fusion) -> Metrics:
    return search_eval.evaluate(
        store, queries, lambda s, q, limit: fusion(s, *got[q], limit)
    )  # fmt: skip


def figures(m: Metrics) -> str:
    return f"{m.recall5:>9.3f} {m.mrr:>7.3f} {m.recall10:>10.3f}"


def section_modes(store: Store, eval_set: EvalSet, got: dict[str, Legs]) -> None:
    print("## Recall@5 and MRR per mode (recall@10 for information)\n")
    print(f"{'split':<6} {'mode':<16} {'recall@5':>9} {'MRR':>7} {'recall@10':>10}")
    for split in search_eval.SPLITS:
        queries = eval_set.split(split)
        rows: dict[str, Metrics] = {
            mode: search_eval.evaluate(store, queries, search_eval.product(mode))
            for mode in search_eval.MODES
        }
        rows["hybrid before"] = run(store, queries, got, rrf_before)
        for name in ("text", "semantic", "hybrid before", "hybrid"):
            label = "hybrid (now)" if name == "hybrid" else name
            print(f"{split:<6} {label:<16} {figures(rows[name])}")
        by_kind = "; ".join(
            f"{kind} {rows['hybrid before'].by_kind[kind][0]:.2f}/"
            f"{rows['hybrid before'].by_kind[kind][1]:.2f} → "
            f"{rows['hybrid'].by_kind[kind][0]:.2f}/{rows['hybrid'].by_kind[kind][1]:.2f}"
            for kind in search_eval.KINDS
        )
        print(f"{'':<6} hybrid by kind, before → now (recall@5/MRR): {by_kind}")
    print()


def pair_similarities(store: Store, queries: list[Judged]) -> tuple[np.ndarray, np.ndarray]:
    """Similarity of each (query, unit) pair as the ANN index ranks them (after its
    projection): the pairs whose unit holds a judged answer, and the others."""
    index = ranking_index(store)
    ann = index.ann()
    assert ann is not None
    units = [u for tid in store.thread_ids() for u in store.units_of(tid)]
    matrix = np.vstack([index.vectors.vector(u["content_hash"]) for u in units])
    projected = ann.project(matrix)
    related, unrelated = [], []
    for query in queries:
        sims = projected @ ann.project(index.embed([query.q]))[0]
        for unit, sim in zip(units, sims, strict=True):
            run_ = range(unit["start_idx"], unit["end_idx"] + 1)
            answers = any((unit["thread_id"], idx) in query.relevant for idx in run_)
            (related if answers else unrelated).append(float(sim))
    return np.array(related), np.array(unrelated)


def section_floor(store: Store, eval_set: EvalSet, got: dict[str, Legs]) -> None:
    queries = eval_set.split("dev")
    related, unrelated = pair_similarities(store, queries)
    model = ranking_index(store).embedder.name
    print(f"## Similarity floor for {model}, calibrated on the {len(queries)} dev queries\n")
    cuts = (50, 90, 99, 99.9)
    for name, sims in (("related", related), ("unrelated", unrelated)):
        spread = ", ".join(f"p{p:g} {np.percentile(sims, p):.3f}" for p in cuts)
        print(f"{name} (query, unit) pairs: {len(sims):,}; {spread}")
    print(f"\n{'floor':>5} {'unrelated over':>15} {'related over':>13} {'recall@5':>9} {'MRR':>7}")
    chosen = hybrid.SIMILARITY_FLOORS.get(model)
    for floor in SWEEP:
        m = run(store, queries, got, floored(floor))
        if floor is None:
            print(f"{'none':>5} {'(all weak)':>15} {'':>13} {m.recall5:>9.3f} {m.mrr:>7.3f}")
            continue
        mark = "  ← SIMILARITY_FLOORS" if floor == chosen else ""
        print(
            f"{floor:>5.2f} {(unrelated >= floor).mean():>15.3%} "
            f"{(related >= floor).mean():>13.1%} {m.recall5:>9.3f} {m.mrr:>7.3f}{mark}"
        )
    print()


def section_methods(store: Store, eval_set: EvalSet, got: dict[str, Legs]) -> None:
    """Each method at the chosen floor and at a lower one, where more semantic hits are
    strong and the methods differ."""
    queries = eval_set.split("dev")
    chosen = hybrid.SIMILARITY_FLOORS.get(ranking_index(store).embedder.name)
    print(f"## Fusion methods on the {len(queries)} dev queries\n")
    print(f"{'method':<44} {'recall@5':>9} {'MRR':>7} {'recall@10':>10}")
    print(f"{'RRF, no floor (before)':<44} {figures(run(store, queries, got, rrf_before))}")
    for floor in sorted({chosen or LOWER_FLOOR, LOWER_FLOOR}, reverse=True):
        methods: dict[str, Fusion] = {f"RRF, floor {floor}": floored(floor)}
        for weight in (0.5, 2.0):
            methods[f"weighted RRF, floor {floor}, semantic ×{weight}"] = weighted_rrf(
                floor, weight
            )
        for alpha in (0.3, 0.5, 0.7):
            methods[f"convex, floor {floor}, α {alpha} on BM25"] = convex(floor, alpha)
        methods[f"full-text first, floor {floor}"] = full_text_first(floor)
        for name, fusion in methods.items():
            now = "  (now)" if fusion is methods[f"RRF, floor {floor}"] and floor == chosen else ""
            print(f"{name:<44} {figures(run(store, queries, got, fusion))}{now}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench"))
    args = parser.parse_args()
    root = args.work / "search-quality"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    began = time.perf_counter()
    eval_set = search_eval.load()
    log(f"mirroring {len(eval_set.threads)} corpus threads and the distractors into {root}")
    settings = search_eval.mirror(eval_set, root)
    store = open_store(settings.database_path, readonly=True)
    try:
        problems = search_eval.check(eval_set, store)
        if problems:
            raise SystemExit("the eval set does not hold together: " + "; ".join(problems))
        got = legs(store, eval_set.queries)
        units = sum(len(store.units_of(t)) for t in store.thread_ids())
        print(f"sessionbase search quality, {time.strftime('%Y-%m-%d')}, {git_version()}")
        print(
            f"{len(eval_set.queries)} judged queries "
            f"({len(eval_set.split('dev'))} dev, {len(eval_set.split('test'))} test) over "
            f"{len(eval_set.threads)} corpus threads; {len(store.thread_ids())} threads and "
            f"{units} units mirrored with the distractors\n"
        )
        section_modes(store, eval_set, got)
        section_floor(store, eval_set, got)
        section_methods(store, eval_set, got)
    finally:
        store.close()
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
