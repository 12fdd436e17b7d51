"""Vectors in PostgreSQL: the ``vectors`` table, one row per (model, content hash).

Every replica reads the same table: each builds its in-memory ANN index from it at start and
adds the rows with labels past the newest it holds as units are committed (``search.ann``).
Labels come from an identity column, so they grow as rows are added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from sessionbase.store._pg_connection import Borrowed, redacted
from sessionbase.store.vectors import Vectors

_CHUNK = 1000


class PgVectors:
    """Thread-safe: each call borrows a pooled connection for its duration."""

    def __init__(self, url: str, model: str) -> None:
        self.url = url
        self.model = model
        self.location = redacted(url)

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        db = Borrowed(self.url)
        try:
            with db.errors(f"vectors in {self.location}"):
                return db.get().execute(sql, params).fetchall()
        finally:
            db.release()

    def integrity_problems(self) -> list[str]:
        """Nothing: PostgreSQL checks its own pages."""
        return []

    def close(self) -> None:
        """Nothing held between calls."""

    def count(self) -> int:
        rows = self._rows("SELECT count(*) FROM vectors WHERE model = %s", (self.model,))
        return int(rows[0][0])

    def missing(self, hashes: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(hashes))
        have: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            have.update(
                r[0]
                for r in self._rows(
                    "SELECT hash FROM vectors WHERE model = %s AND hash = ANY(%s)",
                    (self.model, wanted[start : start + _CHUNK]),
                )
            )
        return [h for h in wanted if h not in have]

    def add(self, hashes: list[str], vectors: Vectors) -> list[int]:
        rows = [
            (self.model, h, np.asarray(v, dtype=np.float32).tobytes())
            for h, v in zip(hashes, vectors, strict=True)
        ]
        db = Borrowed(self.url)
        try:
            with db.errors(f"cannot store vectors in {self.location}"):
                conn = db.get()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO vectors (model, hash, vector) VALUES (%s, %s, %s)"
                        " ON CONFLICT (model, hash) DO NOTHING",
                        rows,
                    )
                found = dict(
                    conn.execute(
                        "SELECT hash, label FROM vectors WHERE model = %s AND hash = ANY(%s)",
                        (self.model, hashes),
                    ).fetchall()
                )
        finally:
            db.release()
        return [int(found[h]) for h in hashes]

    def hashes_for(self, labels: Iterable[int]) -> dict[int, str]:
        wanted = [int(label) for label in labels]
        rows = self._rows(
            "SELECT label, hash FROM vectors WHERE model = %s AND label = ANY(%s)",
            (self.model, wanted),
        )
        return {int(r[0]): str(r[1]) for r in rows}

    def vector(self, content_hash: str) -> Vectors | None:
        rows = self._rows(
            "SELECT vector FROM vectors WHERE model = %s AND hash = %s", (self.model, content_hash)
        )
        if not rows:
            return None
        found: Vectors = np.frombuffer(rows[0][0], dtype=np.float32).reshape(1, -1)
        return found

    def batches(self, size: int = 10_000, after: int = -1) -> Iterator[tuple[list[int], Vectors]]:
        while True:
            rows = self._rows(
                "SELECT label, vector FROM vectors WHERE model = %s AND label > %s"
                " ORDER BY label LIMIT %s",
                (self.model, after, size),
            )
            if not rows:
                return
            labels = [int(r[0]) for r in rows]
            matrix = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield labels, matrix
            after = labels[-1]
