"""Search quality over real Codex sessions: judged queries, a mirror to run them on, metrics.

``tests/data/search_eval_corpus.json`` names threads of the shared corpus (``corpus/codex``) and
queries with the messages that answer them, each query marked ``dev`` (may be used to tune
ranking) or ``test`` (held out: only evaluated). ``mirror`` copies those rollouts into one Codex
home beside the synthetic threads of ``search_eval.json`` (distractors that bring the index to
the size at which it ranks as it does for a real history), backfills and embeds them.

Metrics are counted on messages. A hit stands for its message, or for a semantic unit's run of
messages (``Hit.end_idx``), and finds at most one relevant message: its own if that is
relevant, else the first relevant one in its run not yet found. For the top ``k`` hits:

- ``recall@k``: relevant messages found / min(relevant messages, k);
- ``MRR``: the mean over queries of 1 / the rank of the first hit that finds one (0 if none in
  the top ``DEPTH``).

To extend the set, add threads (a rollout path relative to a corpus root, its id and message
count) and queries; ``check`` says what does not hold together.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Any

from sessionbase import config, search
from sessionbase.config import Settings
from sessionbase.ingest.mirror import backfill
from sessionbase.search import hybrid, semantic
from sessionbase.search.embedder import LocalEmbedder
from sessionbase.search.fulltext import Hit
from sessionbase.store import Store, open_store
from sessionbase.store.base import SearchFilter

DATA = Path(__file__).resolve().parent.parent / "data"
EVAL_SET = DATA / "search_eval_corpus.json"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "codex"
SESSIONS = DATA / "search_eval_sessions"  # written by the real Codex CLI (eval_sessions.py)
DEPTH = 10  # hits looked at per query
MODES = ("text", "semantic", "hybrid")
SPLITS = ("dev", "test")
DISTRACTORS_FROM = datetime(2026, 1, 1, tzinfo=UTC)  # the distractor threads end the day before
KINDS = ("identifier", "path", "error", "paraphrase", "topic", "concept")
IN_OTHER_WORDS = ("paraphrase", "concept")  # must not be lifted from an answer

Ranker = Callable[[Store, str, int], list[Hit]]


@dataclass(frozen=True)
class Judged:
    q: str
    kind: str
    split: str
    relevant: frozenset[tuple[str, int]]  # (thread id, message idx)


@dataclass(frozen=True)
class EvalSet:
    threads: dict[str, dict[str, Any]]  # name -> id, file, messages, about
    queries: list[Judged]

    def split(self, name: str) -> list[Judged]:
        return [q for q in self.queries if q.split == name]


def distractor_ids() -> dict[str, str]:
    """``synthetic/<name>`` -> the thread id ``mirror`` gives each distractor thread."""
    from tests.unit.test_search_quality import load_eval_set, stable_id

    return {
        f"synthetic/{thread['id']}": stable_id(
            (DISTRACTORS_FROM - timedelta(days=n + 1)).replace(microsecond=0), thread["id"]
        )
        for n, thread in enumerate(load_eval_set()["threads"])
    }


def load(path: Path = EVAL_SET) -> EvalSet:
    document = json.loads(path.read_text(encoding="utf-8"))
    threads: dict[str, dict[str, Any]] = document["threads"]
    ids = {name: thread["id"] for name, thread in threads.items()} | distractor_ids()
    queries = [
        Judged(
            q["q"],
            q["kind"],
            q["split"],
            frozenset((ids[name], idx) for name, idxs in q["relevant"].items() for idx in idxs),
        )
        for q in document["queries"]
    ]
    return EvalSet(threads, queries)


def check(eval_set: EvalSet, store: Store) -> list[str]:
    """What does not hold together: unknown kinds or splits, duplicate queries, judged
    messages that do not exist, threads mirrored with another message count than judged, a
    paraphrase lifted from a message it answers, or a lookup whose words no answer says."""
    problems = []
    seen: set[str] = set()
    for query in eval_set.queries:
        if query.kind not in KINDS or query.split not in SPLITS:
            problems.append(f"{query.q!r}: kind {query.kind!r} or split {query.split!r}")
        if query.q in seen:
            problems.append(f"{query.q!r} is there twice")
        seen.add(query.q)
        if not query.relevant:
            problems.append(f"{query.q!r} has no relevant message")
    for name, thread in eval_set.threads.items():
        got = len(store.messages(thread["id"]))
        if got != thread["messages"]:
            problems.append(f"{name}: {got} messages mirrored, {thread['messages']} judged")
    judged_threads = {t["id"] for t in eval_set.threads.values()}
    judged_threads |= {thread_id for q in eval_set.queries for thread_id, _ in q.relevant}
    texts = {
        (thread_id, m["idx"]): str(m["text"]).lower()
        for thread_id in judged_threads
        for m in store.messages(thread_id)
    }
    for query in eval_set.queries:
        missing = [m for m in query.relevant if m not in texts]
        if missing:
            problems.append(f"{query.q!r}: no messages {sorted(missing)}")
        judged = [texts.get(m, "") for m in query.relevant]
        if query.kind in IN_OTHER_WORDS:
            if any(query.q.lower() in text for text in judged):
                problems.append(f"{query.q!r} is lifted from a message it answers")
        elif not any(all(t in text for t in query.q.lower().split()) for text in judged):
            problems.append(f"{query.q!r}: no message it answers says every word of it")
    return problems


def mirror(
    eval_set: EvalSet,
    root: Path,
    corpus: Path = CORPUS,
    distractors: bool = True,
    refine: bool = True,
) -> Settings:
    """A data dir under ``root`` holding the eval set's threads (and the distractors),
    backfilled and embedded with the bundled static model and, unless ``refine`` is False
    (the design before the transformer), every unit refined by the bundled transformer."""
    from tests.unit.test_search_quality import load_eval_set, write_threads

    home = root / "codex-home"
    day = home / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    for thread in eval_set.threads.values():
        source = (SESSIONS if thread.get("root") == "sessions" else corpus) / thread["file"]
        name = source.name if source.name.startswith("rollout-") else f"rollout-{source.name}"
        shutil.copy(source, day / name)
    if distractors:
        write_threads(load_eval_set(), home, DISTRACTORS_FROM)
    settings = config.load(
        environ={},
        overrides={
            "data_dir": root / "data",
            "codex_homes": (home,),
            "home": root / "user-home",
            "machine": "eval",
        },
    )
    if refine:
        search.semantic_index(settings)
    else:
        semantic.configure(settings.data_dir, LocalEmbedder())
    report = asyncio.run(backfill(settings))
    if report.errors:
        raise RuntimeError(f"backfill of the eval set failed: {report.errors}")
    index = semantic.index_for(settings.data_dir)
    with open_store(settings.database_url) as store:
        index.catch_up(store)
        index.refine(store)
    index.save()
    return settings


def product(mode: str) -> Ranker:
    """Ranks as ``search:messages`` and the CLI do in ``mode``."""
    return lambda store, q, limit: hybrid.search(store, q, mode, SearchFilter(), limit)


@dataclass
class Score:
    recall5: float
    recall10: float
    reciprocal_rank: float


def score(hits: Sequence[Hit], relevant: frozenset[tuple[str, int]]) -> Score:
    found_at: list[int] = []  # rank of each relevant message found, in order
    found: set[tuple[str, int]] = set()
    for rank, hit in enumerate(hits[:DEPTH], 1):
        own = (hit.thread_id, hit.idx)
        run = (
            (hit.thread_id, idx)
            for idx in range(hit.idx, (hit.end_idx if hit.end_idx is not None else hit.idx) + 1)
        )
        pick = own if own in relevant and own not in found else None
        if pick is None:
            pick = next((m for m in run if m in relevant and m not in found), None)
        if pick is not None:
            found.add(pick)
            found_at.append(rank)
    n = len(relevant)
    return Score(
        recall5=sum(r <= 5 for r in found_at) / min(n, 5),
        recall10=sum(r <= 10 for r in found_at) / min(n, 10),
        reciprocal_rank=1 / found_at[0] if found_at else 0.0,
    )


@dataclass
class Metrics:
    queries: int
    recall5: float
    recall10: float
    mrr: float
    by_kind: dict[str, tuple[float, float]] = field(default_factory=dict)  # recall@5, MRR
    scores: dict[str, Score] = field(default_factory=dict, repr=False)  # per query


def evaluate(store: Store, queries: Sequence[Judged], ranker: Ranker) -> Metrics:
    scores = {q.q: score(ranker(store, q.q, DEPTH), q.relevant) for q in queries}
    kinds: dict[str, list[Score]] = {}
    for query in queries:
        kinds.setdefault(query.kind, []).append(scores[query.q])
    return Metrics(
        queries=len(scores),
        recall5=_mean(s.recall5 for s in scores.values()),
        recall10=_mean(s.recall10 for s in scores.values()),
        mrr=_mean(s.reciprocal_rank for s in scores.values()),
        by_kind={
            kind: (_mean(s.recall5 for s in got), _mean(s.reciprocal_rank for s in got))
            for kind, got in kinds.items()
        },
        scores=scores,
    )


def _mean(values: Iterable[float]) -> float:
    got = list(values)
    return fmean(got) if got else 0.0
