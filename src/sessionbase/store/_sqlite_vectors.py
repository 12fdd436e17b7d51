"""Vectors by content hash, in their own SQLite file beside the database.

Keyed by the hash of the unit's text, so rebuilding the mirror (or deleting its database)
never re-embeds text that was embedded before. One file per embedding model: vectors of
different models never meet. Each vector also has an integer label, its id in the ANN index.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sessionbase.errors import StoreError
from sessionbase.store._errors import translate_errors
from sessionbase.store._sqlite_health import connect_readonly, integrity_check, store_error
from sessionbase.store.vectors import Vectors, model_file_stem

_CREATE = (
    "CREATE TABLE IF NOT EXISTS vectors (label INTEGER PRIMARY KEY,"
    " hash TEXT NOT NULL UNIQUE, vector BLOB NOT NULL)"
)


def vectors_file(data_dir: Path, model: str) -> Path:
    return data_dir / f"vectors-{model_file_stem(model)}.db"


def _vectors_error(vectors: SQLiteVectors, exc: BaseException) -> StoreError:
    return store_error(exc, vectors.path)


@translate_errors(sqlite3.Error, _vectors_error)
class SQLiteVectors:
    """Thread-safe: one connection behind a lock (writes are batched and rare)."""

    def __init__(self, data_dir: Path, model: str) -> None:
        self.path = vectors_file(data_dir, model)
        self._lock = threading.Lock()
        if data_dir.is_dir() and not os.access(data_dir, os.W_OK):
            # A read command in a data dir it cannot write to: read what is there.
            self._db = self._open_readonly()
            return
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._db.execute(_CREATE)

    def _open_readonly(self) -> sqlite3.Connection:
        if self.path.exists():
            return connect_readonly(self.path, check_same_thread=False)
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute(_CREATE)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def integrity_problems(self) -> list[str]:
        with self._lock:
            return integrity_check(self._db)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def missing(self, hashes: Iterable[str]) -> list[str]:
        """The hashes that have no vector yet, in the order given, without repeats."""
        wanted = list(dict.fromkeys(hashes))
        with self._lock:
            have = {content_hash for _, content_hash in self._pairs_where("hash", wanted)}
        return [h for h in wanted if h not in have]

    def _pairs_where(self, column: str, values: list[Any]) -> Iterator[tuple[int, str]]:
        """(label, hash) of the rows whose ``column`` is one of ``values``, in chunks that stay
        under SQLite's limit on bound parameters. Call with the lock held."""
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT label, hash FROM vectors WHERE {column} IN ({marks})", chunk
            )

    def add(self, hashes: list[str], vectors: Vectors) -> list[int]:
        """Store vectors; returns their labels (existing hashes keep theirs)."""
        rows = [
            (h, np.asarray(v, dtype=np.float32).tobytes())
            for h, v in zip(hashes, vectors, strict=True)
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO vectors (hash, vector) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
            return self._labels_locked(hashes)

    def _labels_locked(self, hashes: list[str]) -> list[int]:
        found = {content_hash: label for label, content_hash in self._pairs_where("hash", hashes)}
        return [found[h] for h in hashes]

    def hashes_for(self, labels: Iterable[int]) -> dict[int, str]:
        with self._lock:
            return dict(self._pairs_where("label", [int(label) for label in labels]))

    def vector(self, content_hash: str) -> Vectors | None:
        with self._lock:
            row = self._db.execute(
                "SELECT vector FROM vectors WHERE hash = ?", (content_hash,)
            ).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float32).reshape(1, -1)

    def batches(self, size: int = 10_000, after: int = -1) -> Iterator[tuple[list[int], Vectors]]:
        """Every (labels, vectors) with a label above ``after``, in label order, a batch at a
        time (for index rebuilds)."""
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT label, vector FROM vectors WHERE label > ? ORDER BY label LIMIT ?",
                    (after, size),
                ).fetchall()
            if not rows:
                return
            labels = [int(r[0]) for r in rows]
            matrix = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield labels, matrix
            after = labels[-1]
