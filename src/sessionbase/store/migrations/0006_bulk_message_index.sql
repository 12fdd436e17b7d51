-- sessionbase schema 6: new messages enter the full-text index in one statement per commit.
-- A per-row trigger made FTS5 flush its pending terms at the end of every row's statement
-- (each statement is a savepoint for a virtual table), writing one tiny segment per message
-- and merging them again and again. The store now indexes the rows a commit inserted with a
-- single INSERT … SELECT inside the same transaction; updates and deletes keep their triggers.
DROP TRIGGER message_search_insert;
