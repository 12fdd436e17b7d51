"""Each backend assigned to a ``Store``-typed name: mypy reports any method a backend lacks
or types differently from the protocol. Nothing imports this module at run time."""

from __future__ import annotations

from pathlib import Path

from sessionbase.store._pg_vectors import PgVectors
from sessionbase.store._sqlite_vectors import SQLiteVectors
from sessionbase.store.interface import Store
from sessionbase.store.postgres import PostgresStore
from sessionbase.store.sqlite import SQLiteStore
from sessionbase.store.vectors import VectorTable


def _sqlite(path: Path) -> Store:
    store: Store = SQLiteStore(path)
    return store


def _postgres(url: str) -> Store:
    store: Store = PostgresStore(url)
    return store


def _vectors(path: Path, url: str) -> tuple[VectorTable, VectorTable]:
    return SQLiteVectors(path, "m"), PgVectors(url, "m")
