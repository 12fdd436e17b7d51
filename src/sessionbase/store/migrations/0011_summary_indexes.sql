-- sessionbase schema 11: status:get and projects:list re-run on every commit that touches a
-- file or a thread, and each scanned whole rows of wide tables (a source row carries its
-- normalizer state, ~6 KB; 10,000 files made status:get take ~300 ms per commit). Narrow
-- covering indexes let those scans read a few pages instead.
CREATE INDEX IF NOT EXISTS sources_summary ON sources (status, size, "offset", error, skipped, path);
CREATE INDEX IF NOT EXISTS threads_counts ON threads (message_count);
