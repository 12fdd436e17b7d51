-- sessionbase schema 3: full-text search over message text and thread titles.
-- The indexes keep no copy of the text: they read it through views that add the `parts`
-- column (code-aware sub-tokens) with the sb_parts() function every sessionbase connection
-- registers. Triggers keep them in the same transaction as the rows they cover.

CREATE VIEW message_search_source AS
  SELECT rowid, text, sb_parts(text) AS parts FROM messages;

CREATE VIRTUAL TABLE message_search USING fts5(
  text, parts, content = 'message_search_source', content_rowid = 'rowid',
  tokenize = "unicode61 remove_diacritics 2 tokenchars '_-./'"
);

CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
  INSERT INTO message_search (rowid, text, parts) VALUES (new.rowid, new.text, sb_parts(new.text));
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
  INSERT INTO message_search (message_search, rowid, text, parts)
    VALUES ('delete', old.rowid, old.text, sb_parts(old.text));
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF text ON messages
  WHEN old.text IS NOT new.text BEGIN
  INSERT INTO message_search (message_search, rowid, text, parts)
    VALUES ('delete', old.rowid, old.text, sb_parts(old.text));
  INSERT INTO message_search (rowid, text, parts) VALUES (new.rowid, new.text, sb_parts(new.text));
END;

CREATE VIEW thread_search_source AS
  SELECT rowid, coalesce(title, '') AS title, sb_parts(coalesce(title, '')) AS parts FROM threads;

CREATE VIRTUAL TABLE thread_search USING fts5(
  title, parts, content = 'thread_search_source', content_rowid = 'rowid',
  tokenize = "unicode61 remove_diacritics 2 tokenchars '_-./'"
);

CREATE TRIGGER thread_search_insert AFTER INSERT ON threads BEGIN
  INSERT INTO thread_search (rowid, title, parts)
    VALUES (new.rowid, coalesce(new.title, ''), sb_parts(coalesce(new.title, '')));
END;

CREATE TRIGGER thread_search_delete AFTER DELETE ON threads BEGIN
  INSERT INTO thread_search (thread_search, rowid, title, parts)
    VALUES ('delete', old.rowid, coalesce(old.title, ''), sb_parts(coalesce(old.title, '')));
END;

CREATE TRIGGER thread_search_update AFTER UPDATE OF title ON threads
  WHEN old.title IS NOT new.title BEGIN
  INSERT INTO thread_search (thread_search, rowid, title, parts)
    VALUES ('delete', old.rowid, coalesce(old.title, ''), sb_parts(coalesce(old.title, '')));
  INSERT INTO thread_search (rowid, title, parts)
    VALUES (new.rowid, coalesce(new.title, ''), sb_parts(coalesce(new.title, '')));
END;

INSERT INTO message_search (message_search) VALUES ('rebuild');
INSERT INTO thread_search (thread_search) VALUES ('rebuild');
