-- sessionbase schema 4: embedding units (one per user message, one per assistant run).
-- Derived from messages; their vectors live in the vector store, keyed by content_hash.

CREATE TABLE units (
    thread_id    TEXT NOT NULL,
    start_idx    INTEGER NOT NULL,
    end_idx      INTEGER NOT NULL,
    role         TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text         TEXT NOT NULL,
    PRIMARY KEY (thread_id, start_idx)
);
CREATE INDEX units_by_hash ON units (content_hash);
