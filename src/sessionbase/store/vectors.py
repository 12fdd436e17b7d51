"""Embeddings by content hash: what every backend's vector table offers the semantic index.

Keyed by the hash of the unit's text, so rebuilding the mirror never re-embeds text that was
embedded before; one table (SQLite: one file) per embedding model, so vectors of different
models never meet. Each vector also has an integer label, its id in the ANN index. Open one
with ``store.open_vectors``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]
"""Rows of float32 vectors, one per text."""


def model_file_stem(model: str) -> str:
    """A model name as a safe file name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model)


class VectorTable(Protocol):
    """Vectors of one model. Thread-safe; raises StoreError when the database fails."""

    def count(self) -> int: ...

    def missing(self, hashes: Iterable[str]) -> list[str]:
        """The hashes that have no vector yet, in the order given, without repeats."""
        ...

    def add(self, hashes: list[str], vectors: Vectors) -> list[int]:
        """Store vectors; returns their labels (existing hashes keep theirs)."""
        ...

    def hashes_for(self, labels: Iterable[int]) -> dict[int, str]: ...

    def vector(self, content_hash: str) -> Vectors | None: ...

    def batches(self, size: int = 10_000, after: int = -1) -> Iterator[tuple[list[int], Vectors]]:
        """Every (labels, vectors) with a label above ``after``, in label order, a batch at a
        time."""
        ...

    def integrity_problems(self) -> list[str]:
        """What the backend's own check of the stored vectors finds wrong (a SQLite file's
        pages), or nothing; slow."""
        ...

    def close(self) -> None: ...
