-- sessionbase schema 2: what users decide through the API, and mutation idempotency.

-- Effective user choices copied onto the thread row (recomputed from user_metadata on every
-- upsert, so a rebuild of the thread never loses them).
ALTER TABLE threads ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN archived_by_user INTEGER;

ALTER TABLE projects ADD COLUMN origin TEXT NOT NULL DEFAULT 'derived';  -- derived | user
ALTER TABLE projects ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;

-- One row per applied mutation, written in the mutation's own transaction: a client that
-- re-sends after a reconnect gets the stored result instead of a second application.
CREATE TABLE mutation_log (
    session_id TEXT NOT NULL,
    request_id INTEGER NOT NULL,
    result     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    PRIMARY KEY (session_id, request_id)
);
