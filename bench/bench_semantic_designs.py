"""Semantic search designs beside all-MiniLM-L6-v2, quality and costs in one run.

    uv run python bench/bench_semantic_designs.py                # 15–40 min on a busy machine
    uv run python bench/bench_semantic_designs.py --skip-1m      # quality and embedding only

1. Quality: the judged queries of ``tests/data/search_eval_corpus.json`` (real Codex sessions:
   the shared corpus and the sessions the real Codex CLI wrote; ``tests/support/search_eval.py``
   counts hits) mirrored once, then ranked by each design through the product's code
   (``semantic.search``, ``hybrid.fuse``), recall@5, recall@10 and MRR on the held-out (test)
   queries: all of them, and the paraphrase and concept ones. The reference is
   all-MiniLM-L6-v2 run by sentence-transformers and torch in a separate venv (``--st-python``,
   as ``bench_search.py``), whose vectors for every unit and query are made once and served to
   the same code. Each design's hybrid floor is calibrated on the dev queries, as
   ``bench_search_quality.py`` calibrates the product's.
2. Embedding throughput on real units of the 1M-message store (or of the eval set with
   ``--skip-1m``): the static model, the bundled transformer, MiniLM through torch, same texts.
3. Query latency at 1M messages: ``semantic.search`` and ``hybrid.search`` p50/p99 for the
   eval queries, the chosen design against the static model alone (the baseline), interleaved.
   The transformer's vectors at 1M are what ``--refine-minutes`` of background refining made
   (newest threads first), as a serve that has run that long would have them.
4. Install size and memory (RSS of a process that loaded the models and answered a query).

Nothing here asserts; the test suite asserts floors (tests/unit/test_search_eval.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (before usearch: see search.ann._usearch)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests
from _common import child_env, git_version, log, percentile
from bench_search import _ST_CHILD
from tests.support import search_eval
from tests.support.search_eval import Judged, Metrics

from sessionbase.search import hybrid, semantic
from sessionbase.search.embedder import LocalEmbedder, Vectors, _normalized
from sessionbase.search.fulltext import Hit
from sessionbase.search.transformer import TransformerEmbedder
from sessionbase.store import Store, open_store
from sessionbase.store.base import SearchFilter

FLOORS = (0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
RESCORE = 30  # static candidates a query-time re-scoring embeds
EVERYTHING = SearchFilter(include_subagents=True)
Ranker = Callable[[Store, str, int], list[Hit]]


class Precomputed:
    """MiniLM's vectors made by the torch child, served by text."""

    name = "all-minilm-l6-v2-torch"

    def __init__(self, vectors: dict[str, Vectors]) -> None:
        self.vectors = vectors

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.vstack([self.vectors[t] for t in texts])


class Mapped:
    """The static model followed by a linear map fitted (ridge) to the transformer's vectors
    of the user's own units: a static model trained for retrieval on those units, at the
    static model's cost per text."""

    def __init__(self, static: LocalEmbedder, weights: Vectors) -> None:
        self.static, self.weights = static, weights
        self.name = f"{static.name}-mapped"

    def embed(self, texts: list[str]) -> Vectors:
        return _normalized(self.static.embed(texts) @ self.weights)


def fit_map(static: LocalEmbedder, target: Vectors, texts: list[str], ridge: float) -> Vectors:
    x = static.embed(texts)
    a = x.T @ x + ridge * np.eye(x.shape[1], dtype=np.float32)
    weights: Vectors = np.linalg.solve(a, x.T @ target).astype(np.float32)
    return weights


def minilm_child(python: Path, texts: list[str], work: Path) -> tuple[dict[str, Any], Vectors]:
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        src, out = Path(tmp) / "texts.json", Path(tmp) / "vectors.npy"
        src.write_text(json.dumps(texts))
        env = {**child_env(work), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        done = subprocess.run(
            [str(python), "-c", _ST_CHILD, str(src), str(out)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"the MiniLM child failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]), np.load(out)


# ----------------------------------------------------------------------------- quality


def semantic_ranker() -> Ranker:
    return lambda store, q, k: semantic.search(store, q, SearchFilter(), k)


def rescored(static: LocalEmbedder, model: TransformerEmbedder) -> Ranker:
    """The static model's top ``RESCORE`` units, re-ranked by the transformer's similarity;
    a candidate is embedded the first time it is one (then kept, as a product would)."""
    seen: dict[str, Vectors] = {}

    def rank(store: Store, q: str, k: int) -> list[Hit]:
        semantic.configure(store.vector_location, static)
        hits = semantic.search(store, q, SearchFilter(), RESCORE)
        if not hits:
            return []
        texts = []
        for h in hits:
            unit = store.unit_at(h.thread_id, h.idx)
            texts.append(str(unit["text"]) if unit else h.snippet)
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        seen.update(zip(new, model.embed(new), strict=True))
        sims = np.vstack([seen[t] for t in texts]) @ model.embed([q])[0]
        order = np.argsort(-sims)
        return [
            Hit(**{**hits[i].__dict__, "score": float(sims[i]), "model": model.name})
            for i in order[:k]
        ]

    return rank


def calibrated_hybrid(store: Store, dev: list[Judged], rank: Ranker) -> tuple[float, Ranker]:
    """Hybrid with the floor (for every semantic hit) at which dev recall@5 + MRR peak."""
    legs = {
        q.q: (hybrid.search(store, q.q, "text", SearchFilter(), 50), rank(store, q.q, 50))
        for q in dev
    }
    best = (0.0, -1.0)
    for floor in FLOORS:
        m = search_eval.evaluate(
            store, dev, lambda s, q, k, floor=floor: hybrid.fuse(*legs[q], floor, k)
        )
        if m.recall5 + m.mrr > best[1] + 1e-9:
            best = (floor, m.recall5 + m.mrr)
    floor = best[0]
    return floor, lambda s, q, k: hybrid.fuse(
        hybrid.search(s, q, "text", SearchFilter(), 50), rank(s, q, 50), floor, k
    )


def quality(args: argparse.Namespace, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    eval_set = search_eval.load()
    settings = search_eval.mirror(eval_set, root, refine=False)
    store = open_store(settings.database_url)
    location = store.vector_location
    units = [u for t in store.thread_ids() for u in store.units_of(t)]
    texts = sorted({u["text"] for u in units} | {q.q for q in eval_set.queries})
    log(f"quality: MiniLM (torch) embeds {len(texts)} unit and query texts")
    report, matrix = minilm_child(args.st_python, texts, args.work)
    reference = Precomputed(dict(zip(texts, matrix, strict=True)))
    static = LocalEmbedder()
    t128, t256 = TransformerEmbedder(), TransformerEmbedder(max_tokens=256)
    unit_texts = sorted({u["text"] for u in units})
    mapped = Mapped(static, fit_map(static, t128.embed(unit_texts), unit_texts, ridge=1.0))
    half = len({u["content_hash"] for u in units}) // 2

    designs: list[tuple[str, Callable[[], Ranker]]] = []

    def product(embedder: Any, refiner: Any = None, limit: int | None = None) -> Ranker:
        index = semantic.configure(location, embedder, refiner)
        index.catch_up(store)
        index.refine(store, limit=limit)
        return semantic_ranker()

    designs = [
        ("static model, first 800 chars (before)", lambda: product(static)),
        ("static model, whole unit (2,000 chars)", lambda: product(LocalEmbedder(max_chars=2000))),
        ("static model, first 400 chars", lambda: product(LocalEmbedder(max_chars=400))),
        ("static + linear map fitted to int8 MiniLM on the units", lambda: product(mapped)),
        (
            f"static top {RESCORE} re-scored by int8 MiniLM at query time",
            lambda: rescored(static, t128),
        ),
        (
            "int8 MiniLM (128 tokens) on the newest half, static elsewhere",
            lambda: product(static, TransformerEmbedder(max_tokens=128), half),
        ),
        ("int8 MiniLM, 128 tokens, every unit (chosen)", lambda: product(static, t128)),
        ("int8 MiniLM, 256 tokens, every unit", lambda: product(static, t256)),
        ("all-MiniLM-L6-v2, torch, 256 tokens (reference)", lambda: product(reference)),
    ]
    test = eval_set.split("test")
    dev = eval_set.split("dev")
    para = [q for q in test if q.kind in search_eval.IN_OTHER_WORDS]
    rows = []
    for name, make in designs:
        began = time.perf_counter()
        rank = make()
        floor, fused = calibrated_hybrid(store, dev, rank)
        timings: list[float] = []

        def timed(
            s: Store, q: str, k: int, rank: Ranker = rank, timings: list[float] = timings
        ) -> list[Hit]:
            t = time.perf_counter()
            try:
                return rank(s, q, k)
            finally:
                timings.append(time.perf_counter() - t)

        row = {
            "design": name,
            "test": search_eval.evaluate(store, test, timed),
            "para": search_eval.evaluate(store, para, rank),
            "hybrid": search_eval.evaluate(store, test, fused),
            "floor": floor,
            "query_ms": 1000 * percentile(timings, 50),
        }
        rows.append(row)
        log(f"quality: {name} in {time.perf_counter() - began:.0f} s")
    store.close()
    facts = {
        "units": len(units),
        "queries": (len(test), len(para)),
        "minilm": report,
        "unit_chars": float(np.mean([len(t) for t in unit_texts])),
    }
    return rows, facts


# ------------------------------------------------------------------------ embedding rate


def embedding_rates(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    """Units per second (and per CPU-second) on the same texts, each after a warm-up."""
    static, t128 = LocalEmbedder(), TransformerEmbedder(max_tokens=128)
    static.embed(texts[:16])
    t128.embed(texts[:16])
    few = texts[: args.rate_sample]
    out: dict[str, Any] = {"sample": len(few), "static_sample": len(texts)}
    for name, model, batch, sample in (
        ("static", static, 512, texts),
        ("int8", t128, 64, few),
    ):
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(sample), batch):
            model.embed(sample[start : start + batch])
        wall, used = time.perf_counter() - began, time.process_time() - cpu
        out[name] = (len(sample) / wall, len(sample) / used)
    report, _ = minilm_child(args.st_python, few, args.work)
    out["torch"] = (len(few) / report["seconds"], None)
    out["torch_report"] = report
    return out


# ------------------------------------------------------------------------ latency at 1M


def latency_1m(args: argparse.Namespace, queries: list[str]) -> dict[str, Any]:
    data = args.store_dir
    store = open_store(str(data / "sessionbase.db"))
    static, refiner = LocalEmbedder(), TransformerEmbedder(max_tokens=args.refine_tokens)
    designed = semantic.configure(data, static, refiner)
    designed.catch_up(store)
    began = time.monotonic()
    if args.refine_minutes:
        log(f"1M: refining for {args.refine_minutes} min (newest threads first)")
        designed.refine(store, seconds=60 * args.refine_minutes)
    refined = designed.refined.vectors.count() if designed.refined else 0
    units = len(store.unit_hashes())
    log(f"1M: {refined:,} of {units:,} units refined ({time.monotonic() - began:.0f} s)")
    designed.save()
    before = semantic.SemanticIndex(str(data), static)
    for index in (designed, before):  # open (or rebuild) the ANN indexes before timing
        index.ann()
        if index.refined:
            index.refined.ann()
    flt = SearchFilter()
    times: dict[str, list[float]] = {k: [] for k in ("sem", "sem0", "hyb", "hyb0")}
    for n, q in enumerate(queries * args.latency_rounds):
        for label, index in (("", designed), ("0", before)):
            with semantic._indexes_lock:
                semantic._indexes[store.vector_location] = index
            t = time.perf_counter()
            semantic.search(store, q, flt, 20)
            times["sem" + label].append(time.perf_counter() - t)
            if n < args.hybrid_queries:
                t = time.perf_counter()
                hybrid.search(store, q, "hybrid", flt, 20)
                times["hyb" + label].append(time.perf_counter() - t)
    store.close()
    return {
        "units": units,
        "refined": refined,
        "tokens": args.refine_tokens,
        **{k: (percentile(v, 50) * 1e3, percentile(v, 99) * 1e3, len(v)) for k, v in times.items()},
    }


# ------------------------------------------------------------------------ size and memory

_MEMORY_CHILD = r"""
import sys
import onnxruntime
from sessionbase.search.embedder import LocalEmbedder
from sessionbase.search.transformer import TransformerEmbedder
LocalEmbedder().embed(["how did we fix the flaky websocket test"])
if sys.argv[1] == "both":
    TransformerEmbedder().embed(["how did we fix the flaky websocket test"] * 32)
status = open("/proc/self/status").read().split("\n")
print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def memory() -> dict[str, float]:
    out = {}
    for what in ("static", "both"):
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, what], capture_output=True, text=True, check=True
        )
        out[what] = int(done.stdout.strip()) / 1024
    return out


def sizes() -> dict[str, float]:
    site = Path(np.__file__).resolve().parent.parent
    models = Path(semantic.__file__).parent / "models"

    def mb(path: Path) -> float:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6

    added = {
        name: mb(site / name)
        for name in ("onnxruntime", "flatbuffers", "google/protobuf")
        if (site / name).exists()
    }
    return {
        **added,
        "transformer files": mb(models / "minilm-l6-int8"),
        "static model files": mb(models / "minilm-m2v-256"),
    }


# ----------------------------------------------------------------------------- report


def fig(m: Metrics) -> str:
    return f"{m.recall5:.3f} | {m.recall10:.3f} | {m.mrr:.3f}"


def print_quality(rows: list[dict[str, Any]], facts: dict[str, Any], load: float) -> None:
    ref = rows[-1]
    print(f"sessionbase semantic designs, {time.strftime('%Y-%m-%d')}, {git_version()}, "
          f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} now")  # fmt: skip
    tests, paras = facts["queries"]
    print(f"{facts['units']} units; {tests} held-out queries, {paras} of them paraphrase or "
          f"concept; MiniLM reference: {facts['minilm']['torch']}, max_seq_length "
          f"{facts['minilm']['max_seq_length']}\n")  # fmt: skip
    print("| design | semantic, held-out: recall@5 | recall@10 | MRR | paraphrase+concept: "
          "recall@5 | recall@10 | MRR | recall@10 ÷ MiniLM's (all / paraphrase) | hybrid "
          "recall@10 (floor) | query p50 here |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = (f"{r['test'].recall10 / ref['test'].recall10:.2f}× / "
                 f"{r['para'].recall10 / ref['para'].recall10:.2f}×")  # fmt: skip
        print(f"| {r['design']} | {fig(r['test'])} | {fig(r['para'])} | {ratio} | "
              f"{r['hybrid'].recall10:.3f} ({r['floor']}) | {r['query_ms']:.1f} ms |")  # fmt: skip
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench"))
    parser.add_argument("--st-python", type=Path, default=Path("/tmp/sb-bench-st-venv/bin/python"))
    parser.add_argument(
        "--store-dir",
        type=Path,
        default=None,
        help="data dir of the 1M-message store (default: WORK/search-1000000/data)",
    )
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument("--refine-minutes", type=float, default=10.0)
    parser.add_argument("--refine-tokens", type=int, default=128)
    parser.add_argument("--rate-sample", type=int, default=300)
    parser.add_argument("--latency-rounds", type=int, default=2)
    parser.add_argument("--hybrid-queries", type=int, default=60)
    args = parser.parse_args()  # fmt: skip
    args.store_dir = args.store_dir or args.work / "search-1000000" / "data"
    if not args.st_python.exists():
        raise SystemExit(f"no MiniLM venv at {args.st_python} (see bench/README.md)")
    began = time.perf_counter()
    load = os.getloadavg()[0]
    root = args.work / "semantic-designs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rows, facts = quality(args, root)
    print_quality(rows, facts, load)
    if args.skip_1m:
        store = open_store(str(root / "data" / "sessionbase.db"), readonly=True)
        sample = [u["text"] for t in store.thread_ids() for u in store.units_of(t)]
    else:
        store = open_store(str(args.store_dir / "sessionbase.db"), readonly=True)
        sample = [r[0] for r in store._db.execute(  # type: ignore[attr-defined]
            "SELECT text FROM units ORDER BY rowid * 2654435761 % 1000003 LIMIT 3000")]  # fmt: skip
    store.close()
    log(f"embedding rates on {len(sample)} unit texts")
    rates = embedding_rates(args, sample)
    lat = None if args.skip_1m else latency_1m(args, [q.q for q in search_eval.load().queries])
    mem, size = memory(), sizes()

    s, i, t = rates["static"], rates["int8"], rates["torch"]
    print("| cost | chosen design | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| embedding, the path that embeds everything (static model, {rates['static_sample']:,} "
          f"units, batches of 512) | {s[0]:,.0f} units/s ({s[1]:,.0f} per CPU-s) | MiniLM torch, "
          f"{rates['sample']} units: {t[0]:.1f} units/s | {s[0] / t[0]:,.0f}× | ≥ 1,000 units/s "
          f"{'ok' if s[0] >= 1000 else 'MISS'} |")  # fmt: skip
    print(f"| refining (int8 MiniLM, 128 tokens, {rates['sample']} units) | {i[0]:.1f} units/s "
          f"({i[1]:.1f} per CPU-s) | MiniLM torch, same units | {i[0] / t[0]:.1f}× "
          "| (info) |")  # fmt: skip
    if lat is not None:
        for key, label in (("sem", "semantic.search"), ("hyb", "hybrid.search")):
            d, b = lat[key], lat[key + "0"]
            print(f"| {label} p50 / p99 at 1M messages ({d[2]} queries) | {d[0]:.1f} / "
                  f"{d[1]:.1f} ms | static model alone: {b[0]:.1f} / {b[1]:.1f} ms | "
                  f"{d[0] / b[0]:.2f}× / {d[1] / b[1]:.2f}× | ≤ 100 / ≤ 300 ms "
                  f"{'ok' if d[0] <= 100 and d[1] <= 300 else 'MISS'} |")  # fmt: skip
    parts = {k: v for k, v in size.items() if k != "static model files"}
    listed = ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
    print(f"| install size added | {sum(parts.values()):.1f} MB ({listed}) | static model "
          f"files {size['static model files']:.1f} MB | | (info) |")  # fmt: skip
    both, alone = mem["both"], mem["static"]
    print(f"| memory (peak RSS, VmHWM: models loaded, one query) | {both:.0f} MB | static "
          f"model alone: {alone:.0f} MB | {both / alone:.2f}× | (info) |")  # fmt: skip
    print()
    if lat is not None:
        print(f"- 1M store: {lat['units']:,} units; the transformer ({lat['tokens']} tokens) had "
              f"refined {lat['refined']:,} of them when timed (newest threads first)")  # fmt: skip
    print(f"- MiniLM torch: {rates['torch_report']}")
    print(f"- units average {facts['unit_chars']:.0f} characters in the eval set")
    print(f"- total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
