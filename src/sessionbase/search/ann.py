"""The approximate nearest-neighbour index: HNSW from usearch, saved beside the vectors.

The index can always be rebuilt from the vector store, so it is saved lazily and a missing,
stale or unreadable file only costs a rebuild. Searches and additions share one lock.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from usearch.index import Index

from sessionbase.search.embedder import Vectors
from sessionbase.search.vectors import VectorStore, model_file_stem

log = logging.getLogger("sessionbase.search")

# Measured on 20k random 256-d unit vectors (the hardest case): recall@10 0.99 at ~5 ms.
CONNECTIVITY = 32
EXPANSION_ADD = 200
EXPANSION_SEARCH = 512


class AnnIndex:
    """HNSW over the vector store's labels (cosine distance)."""

    def __init__(self, data_dir: Path, model: str, dim: int) -> None:
        self.path = data_dir / f"ann-{model_file_stem(model)}.usearch"
        self.dim = dim
        self._lock = threading.RLock()
        self._index = self._new()
        self.dirty = False

    def _new(self) -> Index:
        return Index(
            ndim=self.dim,
            metric="cos",
            dtype="f16",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def open(self, vectors: VectorStore) -> None:
        """Load the saved index, or rebuild it from the vectors if it is missing or stale."""
        with self._lock:
            params = self.path.with_suffix(".params")
            wanted = f"{self.dim} {CONNECTIVITY} {EXPANSION_ADD} f16 cos\n"
            stale = not params.exists() or params.read_text() != wanted
            if self.path.exists() and not stale:
                try:
                    self._index.load(str(self.path))
                except (RuntimeError, ValueError) as exc:
                    log.warning(
                        "rebuilding the ANN index: %s could not be read (%s)", self.path, exc
                    )
                    self._index = self._new()
            if stale or len(self._index) != vectors.count():
                self.rebuild(vectors)  # missing, built with other parameters, or behind
                self.save()
                params.write_text(wanted)

    def rebuild(self, vectors: VectorStore) -> None:
        with self._lock:
            self._index = self._new()
            for labels, matrix in vectors.batches():
                self._index.add(np.asarray(labels, dtype=np.uint64), matrix)
            self.dirty = True

    def add(self, labels: list[int], matrix: Vectors) -> None:
        with self._lock:
            keys = np.asarray(labels, dtype=np.uint64)
            fresh = np.array([not self._index.contains(int(k)) for k in keys], dtype=bool)
            if fresh.any():
                self._index.add(keys[fresh], matrix[fresh])
                self.dirty = True

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The k nearest labels to one query row, with cosine similarity, best first."""
        with self._lock:
            if len(self._index) == 0:
                return []
            matches = self._index.search(query[0], min(k, len(self._index)))
        return [
            (int(key), 1.0 - float(dist))
            for key, dist in zip(matches.keys, matches.distances, strict=True)
        ]

    def save(self) -> None:
        with self._lock:
            if self.dirty:
                tmp = self.path.with_suffix(".tmp")
                self._index.save(str(tmp))
                tmp.replace(self.path)
                self.dirty = False
