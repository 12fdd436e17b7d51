"""Semantic search: units embedded in the background, found again by HNSW nearest neighbours.

``SemanticIndex`` owns one embedder, its vector store and its ANN index for a data dir.
``catch_up`` brings units and vectors up to date with the mirror: it re-derives the units of
every thread whose messages changed since it last ran, and embeds only texts it has never
seen (vectors are keyed by content hash). It runs after ``backfill`` and in the background of
``serve``, never inside ingest or a query.

**Two models.** The bundled static model embeds every unit, thousands a second, so a first
backfill is searchable at once. A transformer (``search.transformer``) reads better but embeds
a few dozen units a second; when the index has one (``refined``), ``refine`` embeds with it,
in the background, the units it lacks, those of the most recently active threads first. A
query is embedded by both: the transformer ranks the units it has embedded, the static model
the others, and the two lists are merged by reciprocal rank, so once every unit is refined
the transformer alone decides. Each model keeps its own vector store and ANN index, and a
hit says which model scored it (``Hit.model``): similarities of two models are never
compared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sessionbase.search.ann import MIN_PROJECTED, AnnIndex
from sessionbase.search.embedder import Embedder, LocalEmbedder, Vectors
from sessionbase.search.fulltext import Hit
from sessionbase.search.transformer import TransformerEmbedder
from sessionbase.search.units import build_units
from sessionbase.store import Store, is_postgres, open_vectors
from sessionbase.store.base import SearchFilter

EMBED_BATCH = 512
REFINE_BATCH = 64
MERGE_K = 60  # reciprocal-rank constant when two models' lists are merged
OVERSAMPLE = 4
FILTERED_OVERSAMPLE = 20
MAX_CANDIDATES = 2000

_indexes: dict[str, SemanticIndex] = {}
_indexes_lock = threading.Lock()


class SemanticIndex:
    """Embedder + vector store + ANN index for one data dir. Thread-safe."""

    def __init__(self, location: str, embedder: Embedder, refiner: Embedder | None = None) -> None:
        """``refiner``: a better, slower model for ``refine`` (see the module docstring)."""
        self.location = location
        self.embedder = embedder
        self.vectors = open_vectors(location, embedder.name)
        self.refined = None if refiner is None else SemanticIndex(location, refiner)
        # Beside a SQLite file the index is saved for the next start; every process of a
        # shared database keeps its own in memory, built from the vectors table at start.
        self.ann_dir = None if is_postgres(location) else Path(location)
        self._ann: AnnIndex | None = None
        self._lock = threading.Lock()

    @property
    def version_key(self) -> str:
        return f"semantic:{self.embedder.name}:version"

    def ann(self, dim: int | None = None) -> AnnIndex | None:
        """The ANN index, opened (or rebuilt) on first use; None while nothing is embedded."""
        with self._lock:
            if self._ann is None:
                if dim is None:
                    sample = self.vectors.batches(1)
                    first = next(sample, None)
                    if first is None:
                        return None
                    dim = int(first[1].shape[1])
                self._ann = AnnIndex(self.ann_dir, self.embedder.name, dim)
                self._ann.open(self.vectors)
            return self._ann

    def saved_index_problem(self) -> str | None:
        """What is wrong with the ANN index saved beside the vectors, or None (the next
        open rebuilds it whatever it is)."""
        first = next(self.vectors.batches(1), None)
        if first is None:
            return None
        ann = AnnIndex(self.ann_dir, self.embedder.name, int(first[1].shape[1]))
        return ann.saved_problem(self.vectors.count())

    def embed(self, texts: list[str]) -> Vectors:
        return self.embedder.embed(texts)

    def save(self) -> None:
        """Write what the ANN index holds in memory only (before the process stops)."""
        with self._lock:
            ann = self._ann
        if ann is not None:
            ann.save()
        if self.refined is not None:
            self.refined.save()

    def refine(
        self,
        store: Store,
        stop: Callable[[], bool] | None = None,
        seconds: float | None = None,
        limit: int | None = None,
    ) -> tuple[int, int]:
        """Embed with the refining model the units it lacks, newest threads first, for at most
        ``seconds`` and ``limit`` units (None: all); returns (embedded, still missing).
        Nothing to do without a refining model."""
        refined = self.refined
        if refined is None:
            return 0, 0
        stopped = stop or (lambda: False)
        began = time.monotonic()
        missing = refined.vectors.missing(store.unit_hashes(newest_first=True))
        todo = missing if limit is None else missing[:limit]
        done = 0
        everything = SearchFilter(include_subagents=True)
        for start in range(0, len(todo), REFINE_BATCH):
            if stopped() or (seconds is not None and time.monotonic() - began >= seconds):
                break
            chunk = todo[start : start + REFINE_BATCH]
            texts = {
                r["content_hash"]: r["text"] for r in store.units_for_hashes(chunk, everything)
            }
            chunk = [h for h in chunk if h in texts]  # a unit replaced meanwhile is skipped
            if not chunk:
                continue
            matrix = refined.embed([texts[h] for h in chunk])
            labels = refined.vectors.add(chunk, matrix)
            ann = refined.ann(int(matrix.shape[1]))
            assert ann is not None
            ann.add(labels, matrix)
            done += len(chunk)
        ann = refined.ann()
        if ann is not None and done:
            if ann.due_for_rebuild(refined.vectors.count()):
                ann.rebuild(refined.vectors)
            ann.save_if_due()
            store.announce(["units:*"])  # live semantic queries rank with the new vectors
        return done, len(missing) - done

    def catch_up(
        self,
        store: Store,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> int:
        """Units and vectors up to date with the mirror; returns how many texts were embedded.

        ``stop`` is asked between threads and between batches: once it says yes, the run ends
        without committing units (the vectors made so far are kept and never made again).
        """
        stopped = stop or (lambda: False)
        target = store.last_version()
        threads = self.threads_to_index(store)
        texts: dict[str, str] = {}
        replacements = []
        for thread_id in threads:
            if stopped():
                return 0
            unit_texts, replacement = self._derive_units(store, thread_id)
            texts.update(unit_texts)
            if replacement is not None:
                replacements.append(replacement)
        missing = self.vectors.missing(texts)
        # When this run at least doubles the vectors, the index is rebuilt (its mean retaken)
        # at the end anyway: build it once then rather than insert each batch twice.
        bulk = len(missing) >= max(MIN_PROJECTED, self.vectors.count())
        done = 0
        if progress:
            progress(0, len(missing))
        for start in range(0, len(missing), EMBED_BATCH):
            if stopped():
                return done
            chunk = missing[start : start + EMBED_BATCH]
            matrix = self.embed([texts[h] for h in chunk])
            labels = self.vectors.add(chunk, matrix)
            if not bulk:
                ann = self.ann(int(matrix.shape[1]))
                assert ann is not None
                ann.add(labels, matrix)
            done += len(chunk)
            if progress:
                progress(done, len(missing))
        ann = self.ann()
        if ann is not None:
            count = self.vectors.count()
            if len(ann) != count or ann.due_for_rebuild(count):
                ann.rebuild(self.vectors)
            ann.save_if_due()
        # Units are committed only once their vectors are searchable: that commit is what
        # wakes live semantic queries, so they never run between the two.
        for thread_id, rows, start in replacements:
            store.replace_units(thread_id, rows, from_idx=start)
        if done and not replacements:
            store.announce(["units:*"])
        store.put_setting(self.version_key, str(target))
        return done

    def threads_to_index(self, store: Store) -> list[str]:
        """Threads whose messages changed since their units were last derived and embedded:
        what the next ``catch_up`` works on (every thread, before the first one ran)."""
        last = int(store.get_setting(self.version_key) or 0)
        if last == 0 or last < store.oldest_version():
            return store.thread_ids()
        return sorted(
            {
                key.split(":", 1)[1]
                for _, keys in store.commits_since(last)
                for key in keys
                if key.startswith("messages:")
            }
        )

    def _derive_units(
        self, store: Store, thread_id: str
    ) -> tuple[dict[str, str], tuple[str, list[tuple[int, int, str, str, str]], int] | None]:
        """A thread's units from its last stored one on (earlier units cannot change by an
        append; a rebuilt thread has none left): every unit's hash → text, and the
        replacement to commit if anything changed."""
        existing = store.units_of(thread_id)
        start = existing[-1]["start_idx"] if existing else 0
        messages = store.messages_page(thread_id, start - 1, None, 2**31)
        units = build_units(thread_id, messages)
        rows = [(u.start_idx, u.end_idx, u.role, u.content_hash, u.text) for u in units]
        kept = [r for r in existing if r["start_idx"] < start]
        tail = [
            (r["start_idx"], r["end_idx"], r["role"], r["content_hash"], r["text"])
            for r in existing
            if r["start_idx"] >= start
        ]
        texts = {r["content_hash"]: r["text"] for r in kept}
        texts.update((row[3], row[4]) for row in rows)
        return texts, (None if rows == tail else (thread_id, rows, start))

    def nearest(self, vector: Vectors, k: int) -> list[tuple[str, float]]:
        """(content hash, similarity) of the k nearest units, best first: the cosine once the
        index has removed the vectors' common direction (see ``search.ann``)."""
        ann = self.ann()
        if ann is None:
            return []
        if ann.in_memory:
            ann.catch_up(self.vectors)
        pairs = ann.search(vector, k)
        hashes = self.vectors.hashes_for(label for label, _ in pairs)
        return [(hashes[label], score) for label, score in pairs if label in hashes]


def configure(
    location: str | Path, embedder: Embedder, refiner: Embedder | None = None
) -> SemanticIndex:
    """Choose the embedders for a database's vectors (``Store.vector_location``, the data dir
    of a SQLite file); serve and the CLI call this once at start."""
    key = str(location)
    names = (embedder.name, None if refiner is None else refiner.name)
    with _indexes_lock:
        index = _indexes.get(key)
        if index is None or _names(index) != names:
            index = _indexes[key] = SemanticIndex(key, embedder, refiner)
        return index


def _names(index: SemanticIndex) -> tuple[str, str | None]:
    return index.embedder.name, None if index.refined is None else index.refined.embedder.name


def _close(index: SemanticIndex) -> None:
    index.vectors.close()
    if index.refined is not None:
        index.refined.vectors.close()


def forget(location: str | Path) -> None:
    """Drop what this process holds for a database's vectors (it was emptied or replaced)."""
    with _indexes_lock:
        index = _indexes.pop(str(location), None)
    if index is not None:
        _close(index)


def index_for(location: str | Path) -> SemanticIndex:
    with _indexes_lock:
        index = _indexes.get(str(location))
    return (
        index if index is not None else configure(location, LocalEmbedder(), TransformerEmbedder())
    )


def available(store: Store) -> bool:
    """True once anything has been embedded for this database."""
    return index_for(store.vector_location).vectors.count() > 0


Probe = tuple[Vectors | None, Vectors | None]
"""What to look near: a vector in the static model's space and one in the refining model's
(None where there is none)."""


def search(store: Store, query: str, flt: SearchFilter, limit: int) -> list[Hit]:
    """Units nearest in meaning to ``query`` that pass the filter, best first."""
    index = index_for(store.vector_location)
    if not query.strip():
        return []
    refined = index.refined
    best = refined.embed([query]) if refined is not None and refined.vectors.count() else None
    return _hits(store, index, (index.embed([query]), best), flt, limit, exclude=set())


def similar_to(
    store: Store, probe: Probe, flt: SearchFilter, limit: int, exclude: set[str]
) -> list[Hit]:
    """Units nearest to a probe, leaving out units whose hash is in ``exclude``."""
    return _hits(store, index_for(store.vector_location), probe, flt, limit, exclude)


def _nearest(
    index: SemanticIndex, probe: Probe, k: int, exclude: set[str]
) -> list[tuple[str, float, str]]:
    """(content hash, similarity, model) of about ``k`` units, best first: the refining
    model's nearest among the units it has embedded, merged by reciprocal rank with the
    static model's nearest among the others."""
    fast, best = probe
    static = [] if fast is None else [(h, s) for h, s in index.nearest(fast, k) if h not in exclude]
    refined = index.refined
    if refined is None or best is None:
        return [(h, s, index.embedder.name) for h, s in static]
    better = [(h, s) for h, s in refined.nearest(best, k) if h not in exclude]
    unrefined = set(refined.vectors.missing(h for h, _ in static))
    rest = [(h, s) for h, s in static if h in unrefined]
    merged: dict[str, tuple[float, float, str]] = {}
    for pairs, model in ((better, refined.embedder.name), (rest, index.embedder.name)):
        for rank, (content_hash, similarity) in enumerate(pairs, 1):
            merged.setdefault(content_hash, (1.0 / (MERGE_K + rank), similarity, model))
    order = sorted(merged, key=lambda h: -merged[h][0])
    return [(h, merged[h][1], merged[h][2]) for h in order]


def _hits(
    store: Store,
    index: SemanticIndex,
    probe: Probe,
    flt: SearchFilter,
    limit: int,
    exclude: set[str],
) -> list[Hit]:
    filtered = flt != SearchFilter(include_subagents=flt.include_subagents)
    k = min(
        MAX_CANDIDATES, limit * (FILTERED_OVERSAMPLE if filtered else OVERSAMPLE) + len(exclude)
    )
    nearest = _nearest(index, probe, k, exclude)
    rank = {h: n for n, (h, _, _) in enumerate(nearest)}
    scored = {h: (s, model) for h, s, model in nearest}
    rows = store.units_for_hashes(list(rank), flt)
    rows.sort(key=lambda r: (rank[r["content_hash"]], r["thread_id"], r["start_idx"]))
    return [
        Hit(
            thread_id=r["thread_id"],
            idx=r["start_idx"],
            score=scored[r["content_hash"]][0],
            snippet=" ".join(r["text"].split())[:240],
            role=r["role"],
            kind=r["kind"] or "message",
            ts=r["ts"],
            thread_title=r["thread_title"],
            project_id=r["project_id"],
            source=r["source"],
            end_idx=r["end_idx"],
            model=scored[r["content_hash"]][1],
        )
        for r in rows[:limit]
    ]


def mean_vector(matrix: Vectors) -> Vectors:
    """The normalized centroid of some unit vectors (a thread's "meaning")."""
    centroid = np.asarray(matrix, dtype=np.float32).mean(axis=0, keepdims=True)
    norm = float(np.linalg.norm(centroid)) or 1.0
    result: Vectors = centroid / norm
    return result


def similar_messages(store: Store, thread_id: str, idx: int, limit: int) -> list[Hit]:
    """Units nearest in meaning to the unit holding message ``idx`` (itself left out)."""
    unit = store.unit_at(thread_id, idx)
    if unit is None:
        return []
    probe = _probe(index_for(store.vector_location), [unit["content_hash"]])
    if probe[0] is None and probe[1] is None:
        return []
    flt = SearchFilter(include_subagents=True)
    return similar_to(store, probe, flt, limit, exclude={unit["content_hash"]})


def similar_threads(store: Store, thread_id: str, limit: int) -> list[Hit]:
    """Hits in other threads nearest to this thread's centroid ("find threads like this")."""
    hashes = [u["content_hash"] for u in store.units_of(thread_id)]
    probe = _probe(index_for(store.vector_location), hashes)
    if probe[0] is None and probe[1] is None:
        return []
    flt = SearchFilter(include_subagents=True)
    hits = similar_to(store, probe, flt, limit * 10, exclude=set(hashes))
    return [h for h in hits if h.thread_id != thread_id]


def _probe(index: SemanticIndex, hashes: list[str]) -> Probe:
    """The centroid of these units' vectors in each model's space (None where it has none
    of them)."""

    def centroid(space: SemanticIndex | None) -> Vectors | None:
        if space is None:
            return None
        rows = [v for v in (space.vectors.vector(h) for h in hashes) if v is not None]
        return mean_vector(np.vstack(rows)) if rows else None

    return centroid(index), centroid(index.refined)
