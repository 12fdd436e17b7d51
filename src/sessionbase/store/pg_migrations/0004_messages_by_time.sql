-- sessionbase on PostgreSQL, schema 4: messages newest first. Full-text search ranks the most
-- recent matches (store._pg_search): a word in many messages is found by walking this index
-- until enough match, instead of ranking every match.

CREATE INDEX messages_by_time ON messages (ts DESC NULLS LAST);
