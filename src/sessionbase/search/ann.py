"""The approximate nearest-neighbour index: HNSW from usearch, saved beside the vectors.

The index can always be rebuilt from the vector store, so it is saved lazily and a missing,
stale or unreadable file only costs a rebuild. Searches and additions share one lock.

**Saving.** A save writes the whole index (18 MB for 20k units) and holds the GIL while it
does (28 ms for 20k units, growing with the index), which stalls every client of the server.
So new units, which arrive with every answer Codex writes, are only added in memory. The
index is saved after a rebuild, once the additions since the last save reach a tenth of it,
every ``SAVE_SECONDS``, and when the process stops. After a crash, ``open`` adds what the
saved index lacks from the vector store instead of rebuilding it.

**The common direction.** The index holds every vector with its component along the mean
of the stored vectors removed (``x - (x·m)m`` for the unit mean ``m``), normalized again, and
queries go through the same projection; similarity is the cosine after it. Embeddings of one
model share a large common direction (real units have a mean pairwise cosine of ~0.9), so raw
vectors sit in a narrow cone where HNSW's greedy descent loses its way (recall@10 0.61 over
107k units). Projected, they spread out (their mean is exactly zero) and recall@10 is ~0.99
with the same graph parameters. Ranking after the projection also ignores how much a text
looks like every other text, a known weakness of mean-pooled static embeddings: on the
evaluation set it keeps semantic recall@10 (0.974) and raises top-1 from 0.835 to 0.852,
where plainly subtracting the mean lowered them (0.965, 0.800).

The mean is fixed when the index is built and saved with it; later additions are projected
with it. That is sound because any fixed direction defines one similarity shared by the index
and its queries: a stale mean never mixes two spaces, it only removes a slightly different
direction. The mean of a few hundred units already points almost where that of many thousands
does, and ``due_for_rebuild`` rebuilds (and retakes the mean) once the vector count has doubled
since, which costs each vector a bounded number of re-insertions. Below ``MIN_PROJECTED``
vectors the mean says little and exact-enough search needs no projection, so the index keeps
raw vectors until then.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sessionbase.search.embedder import Vectors
from sessionbase.store.vectors import VectorTable, model_file_stem

if TYPE_CHECKING:
    from usearch.index import Index

log = logging.getLogger("sessionbase.search")

# Measured on 107k real unit vectors (projected, see above) and on 20k random 256-d unit
# vectors (the tests' worst case). With connectivity 32 the real vectors needed breadth 512
# for recall@10 0.997 against exact search, at ~11 ms p50: no faster than numpy brute force;
# at 256 random vectors fell to 0.915. Connectivity 48 (a denser graph, half again the build
# time) reaches 0.997 at breadth 256 in ~5 ms on the real vectors and 0.968 on random ones.
CONNECTIVITY = 48
EXPANSION_ADD = 200
EXPANSION_SEARCH = 256
MIN_PROJECTED = 64  # vectors needed before the index removes their mean direction
SAVE_SECONDS = 600.0
SAVE_SHARE = 0.1  # of the index added since the last save
FORMAT = "projected-1"  # bump to rebuild every saved index


def _unit_rows(matrix: Vectors) -> Vectors:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms < 1e-12] = 1.0
    out: Vectors = (matrix / norms).astype(np.float32, copy=False)
    return out


def projected(matrix: Vectors, mean: Vectors, mean_count: int) -> Vectors:
    """Rows without their component along ``mean``, unit length again (raw rows while
    ``mean_count`` is 0): what the index stores and searches with."""
    rows = np.asarray(matrix, dtype=np.float32)
    norm = float(np.linalg.norm(mean))
    if mean_count == 0 or norm < 1e-12:
        return rows
    axis = mean / norm
    return _unit_rows(rows - np.outer(rows @ axis, axis))


class AnnIndex:
    """HNSW over the vector store's labels (cosine distance once the common direction is
    removed)."""

    def __init__(self, data_dir: Path | None, model: str, dim: int) -> None:
        """An index saved in ``data_dir``, or (None) kept in memory only: where every process
        of a shared database builds its own at start."""
        self.path = (data_dir or Path(".")) / f"ann-{model_file_stem(model)}.usearch"
        self.params_path = self.path.with_suffix(".params")
        self.in_memory = data_dir is None
        self.dim = dim
        self._lock = threading.RLock()
        self._index = self._new()
        self.mean: Vectors = np.zeros(dim, dtype=np.float32)
        self.mean_count = 0  # how many vectors the mean was taken over (0: raw vectors)
        self._saved_params: str | None = None
        self._unsaved = 0  # vectors added since the last save
        self._rebuilt = False  # since the last save
        self._saved_at = time.monotonic()
        # A data dir this process cannot write to (a read command there): never save.
        self._readonly = (
            data_dir is not None and data_dir.is_dir() and not os.access(data_dir, os.W_OK)
        )

    def _new(self) -> Index:
        return _usearch()(
            ndim=self.dim,
            metric="cos",
            dtype="f16",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )

    def _wanted(self) -> str:
        return f"{FORMAT} {self.dim} {CONNECTIVITY} {EXPANSION_ADD} f16 cos"

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def project(self, matrix: Vectors) -> Vectors:
        """Rows as the index sees them: without their component along the mean, unit length
        again."""
        return projected(matrix, self.mean, self.mean_count)

    def due_for_rebuild(self, count: int) -> bool:
        """True once ``count`` vectors make the saved mean worth retaking (see the module
        docstring): the first time there are ``MIN_PROJECTED``, then each time they double."""
        return count >= max(MIN_PROJECTED, 2 * self.mean_count)

    def open(self, vectors: VectorTable) -> None:
        """Load the saved index, or rebuild it from the vectors if it is missing or stale
        (written by older code, built with other parameters, or behind the vector store)."""
        with self._lock:
            saved = None if self.in_memory else self._read_params()
            if saved is not None and self.path.exists():
                try:
                    self._index.load(str(self.path))
                    self.mean, self.mean_count, self._saved_params = saved
                except (RuntimeError, ValueError) as exc:
                    log.warning(
                        "rebuilding the ANN index: %s could not be read (%s)", self.path, exc
                    )
                    saved = None
            count = vectors.count()
            if saved is not None and 0 < len(self._index) < count:
                # Saved before the process stopped without saving: add what came since.
                newest = int(np.asarray(self._index.keys).max())
                for labels, matrix in vectors.batches(after=newest):
                    self.add(labels, matrix)
            if saved is None or len(self._index) != count:
                self.rebuild(vectors)
            self.save_if_due()

    def saved_problem(self, count: int) -> str | None:
        """What is wrong with the saved index for a vector store of ``count`` vectors, or
        None (``sessionbase doctor``). Whatever it is, the next open rebuilds it."""
        if self.in_memory or (count == 0 and not self.path.exists()):
            return None
        if not self.path.exists():
            return "not saved yet"
        if self._read_params() is None:
            return f"{self.params_path.name} is missing or from other code"
        saved = self._new()
        try:
            saved.load(str(self.path))
        except (RuntimeError, ValueError) as exc:
            return f"{self.path.name} cannot be read ({exc})"
        if len(saved) != count:
            return f"it holds {len(saved)} of the {count} vectors"
        return None

    def _read_params(self) -> tuple[Vectors, int, str] | None:
        """The saved mean, its count and the sidecar's text; None if the sidecar is missing,
        unreadable, or from other code or parameters (then the index is rebuilt)."""
        try:
            text = self.params_path.read_text()
            params = json.loads(text)
            if params["params"] != self._wanted():
                return None
            mean = np.asarray(params["mean"], dtype=np.float32).reshape(self.dim)
            return mean, int(params["mean_count"]), text
        except (OSError, ValueError, KeyError, TypeError):
            return None  # e.g. the plain-text sidecar of an index of raw vectors

    def rebuild(self, vectors: VectorTable) -> None:
        """A new index from every stored vector, projected with their mean. Searches keep
        using the old index until the new one is complete."""
        total = np.zeros(self.dim, dtype=np.float64)
        count = 0
        for _, matrix in vectors.batches():
            total += matrix.sum(axis=0, dtype=np.float64)
            count += len(matrix)
        mean_count = count if count >= MIN_PROJECTED else 0
        mean = (total / count if mean_count else total).astype(np.float32)
        index = self._new()
        last = -1
        for labels, matrix in vectors.batches():
            index.add(np.asarray(labels, dtype=np.uint64), projected(matrix, mean, mean_count))
            last = labels[-1]
        with self._lock:
            self._index, self.mean, self.mean_count = index, mean, mean_count
            for labels, matrix in vectors.batches(after=last):  # added meanwhile
                self.add(labels, matrix)
            self._rebuilt = True

    def catch_up(self, vectors: VectorTable) -> None:
        """Add the vectors stored since the newest one the index holds (another process of a
        shared database embedded them)."""
        with self._lock:
            newest = int(np.asarray(self._index.keys).max()) if len(self._index) else -1
            for labels, matrix in vectors.batches(after=newest):
                self.add(labels, matrix)

    def add(self, labels: list[int], matrix: Vectors) -> None:
        with self._lock:
            keys = np.asarray(labels, dtype=np.uint64)
            fresh = np.array([not self._index.contains(int(k)) for k in keys], dtype=bool)
            if fresh.any():
                self._index.add(keys[fresh], self.project(matrix[fresh]))
                self._unsaved += int(fresh.sum())

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The k nearest labels to one query row, with their cosine similarity once the
        common direction is removed, best first."""
        with self._lock:
            if len(self._index) == 0:
                return []
            matches = self._index.search(self.project(query[:1])[0], min(k, len(self._index)))
        return [
            (int(key), 1.0 - float(dist))
            for key, dist in zip(matches.keys, matches.distances, strict=True)
        ]

    @property
    def dirty(self) -> bool:
        """Whether the file lacks something the index in memory holds."""
        return self._rebuilt or self._unsaved > 0

    def save_if_due(self) -> None:
        """Save after a rebuild, once a tenth of the index is unsaved, or every
        ``SAVE_SECONDS`` (see the module docstring); otherwise leave it for ``save``."""
        with self._lock:
            due = self._rebuilt or (
                self._unsaved >= SAVE_SHARE * len(self._index)
                or time.monotonic() - self._saved_at >= SAVE_SECONDS
            )
            if due:
                self.save()

    def save(self) -> None:
        """Write the index and its sidecar (parameters and mean). When the mean changed, the
        old sidecar goes first: a crash in between leaves no sidecar, so the next open
        rebuilds instead of pairing the new index with the old mean."""
        with self._lock:
            if not self.dirty or self.in_memory or self._readonly:
                return
            params = json.dumps(
                {
                    "params": self._wanted(),
                    "mean_count": self.mean_count,
                    "mean": [float(x) for x in self.mean],
                }
            )
            if params != self._saved_params:
                self.params_path.unlink(missing_ok=True)
            tmp = self.path.with_suffix(".tmp")
            self._index.save(str(tmp))
            tmp.replace(self.path)
            if params != self._saved_params:
                tmp_params = self.params_path.with_suffix(".params-tmp")
                tmp_params.write_text(params)
                tmp_params.replace(self.params_path)
                self._saved_params = params
            self._rebuilt = False
            self._unsaved = 0
            self._saved_at = time.monotonic()


def _usearch() -> type[Index]:
    """usearch's ``Index``, with ONNX Runtime loaded first: loaded after usearch's extension,
    ONNX Runtime crashes the process as it starts (both bind the same C++ runtime symbols;
    seen with onnxruntime 1.24 to 1.32 and usearch 2.26), and the bundled transformer needs
    it (``search.transformer``)."""
    import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index
