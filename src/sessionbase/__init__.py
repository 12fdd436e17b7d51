"""sessionbase: a live, queryable mirror of Codex sessions."""
