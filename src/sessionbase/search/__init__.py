"""Search: full-text (FTS5), semantic (embeddings + HNSW) and hybrid ranking."""
