"""Semantic search (embeddings + HNSW). Placeholder until the embedding store lands."""

from __future__ import annotations

from sessionbase.search.fulltext import Hit
from sessionbase.store.base import SearchFilter
from sessionbase.store.sqlite import SQLiteStore


def available(store: SQLiteStore) -> bool:
    return False


def search(store: SQLiteStore, query: str, flt: SearchFilter, limit: int) -> list[Hit]:
    return []
