"""Search: full-text (FTS5), semantic (embeddings + HNSW) and hybrid ranking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

from sessionbase.config import Settings
from sessionbase.errors import ConfigError
from sessionbase.search.embedder import Embedder, LocalEmbedder, OpenAIEmbedder
from sessionbase.search.semantic import SemanticIndex, configure
from sessionbase.search.transformer import TransformerEmbedder
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


def refiner_for(settings: Settings) -> Embedder | None:
    """The model that refines the local one in the background (``SemanticIndex.refine``);
    None for an endpoint's model, which is used alone."""
    return TransformerEmbedder() if settings.embedding_provider == "local" else None


def semantic_index(settings: Settings) -> SemanticIndex:
    """The semantic index of the settings' database, with the configured embedders."""
    return configure(
        vector_location(settings.database_url), embedder_for(settings), refiner_for(settings)
    )


BACKFILL_REFINE_SECONDS = 60.0


class Indexed(NamedTuple):
    embedded: int  # units the static model embedded
    refined: int  # units the refining model embedded
    unrefined: int  # units it has still to embed (serve does it in the background)


async def index(
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    refine_seconds: float | None = BACKFILL_REFINE_SECONDS,
) -> Indexed:
    """Embed every unit not embedded yet (after a backfill), then refine the newest units
    for at most ``refine_seconds`` (None: all of them)."""

    def run() -> Indexed:
        store = open_store(settings.database_url)
        semantic = semantic_index(settings)
        try:
            embedded = semantic.catch_up(store, progress)
            return Indexed(embedded, *semantic.refine(store, seconds=refine_seconds))
        finally:
            semantic.save()
            store.close()

    return await asyncio.to_thread(run)
