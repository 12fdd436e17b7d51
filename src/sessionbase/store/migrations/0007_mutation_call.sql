-- sessionbase schema 7: what each logged mutation was, so a reused (session_id, request_id)
-- with another path or other arguments is refused rather than answered with the first result.
-- A digest of the path and the canonical arguments; NULL for mutations logged before.
ALTER TABLE mutation_log ADD COLUMN call TEXT;
