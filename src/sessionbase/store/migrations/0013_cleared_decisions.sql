-- sessionbase schema 13: when the user cleared a decision (an unpin, a rename undone, a
-- project brought back). Clearing deletes its user_metadata row, so without this a machine's
-- local mirror could not tell `sessionbase push` to clear it in the shared database too.
CREATE TABLE IF NOT EXISTS cleared_decisions (
    entity     TEXT NOT NULL,
    id         TEXT NOT NULL,
    key        TEXT NOT NULL,
    cleared_at INTEGER NOT NULL,  -- ms
    PRIMARY KEY (entity, id, key)
) WITHOUT ROWID;
