"""Search: full-text (FTS5), semantic (embeddings + HNSW) and hybrid ranking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sessionbase.config import Settings
from sessionbase.errors import ConfigError
from sessionbase.search.embedder import Embedder, LocalEmbedder, OpenAIEmbedder
from sessionbase.search.semantic import SemanticIndex, configure
from sessionbase.store import open_store, vector_location


def embedder_for(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.embedding_provider == "local":
        return LocalEmbedder()
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(
            settings.embedding_url, settings.embedding_model, settings.embedding_api_key or None
        )
    raise ConfigError(
        f"unknown embedding_provider {settings.embedding_provider!r}: use local or openai"
    )


def semantic_index(settings: Settings) -> SemanticIndex:
    """The semantic index of the settings' database, with the configured embedder."""
    return configure(vector_location(settings.database_url), embedder_for(settings))


async def index(settings: Settings, progress: Callable[[int, int], None] | None = None) -> int:
    """Embed every unit not embedded yet (after a backfill); returns how many were embedded."""

    def run() -> int:
        store = open_store(settings.database_url)
        semantic = semantic_index(settings)
        try:
            return semantic.catch_up(store, progress)
        finally:
            semantic.save()
            store.close()

    return await asyncio.to_thread(run)
