-- sessionbase on PostgreSQL, schema 5: thread lists read an index range. They order by
-- updated_at DESC NULLS LAST, then id in byte order (as SQLite compares text); the indexes of
-- schema 1 were NULLS FIRST in the default collation, so every list sorted the whole table
-- (20 ms at 8,200 threads). And the planner could not tell how many threads a list keeps
-- (archived and sub-agent threads are left out through coalesce()), so it would not walk an
-- index even in that order: the statistics below tell it.

DROP INDEX threads_by_updated;
DROP INDEX threads_by_project;
CREATE INDEX threads_newest ON threads (updated_at DESC NULLS LAST, id COLLATE "C");
CREATE INDEX threads_newest_by_project
    ON threads (project_id, updated_at DESC NULLS LAST, id COLLATE "C");
CREATE STATISTICS threads_listed ON (coalesce(archived_by_user, archived)), (coalesce(source, ''))
    FROM threads;
ANALYZE threads;
