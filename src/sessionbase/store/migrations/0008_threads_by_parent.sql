-- sessionbase schema 8: a thread's sub-agents are found by their parent, for the web app's
-- history (each thread shows how many sub-agents it spawned, and lists them on demand).
CREATE INDEX threads_by_parent ON threads (parent_thread_id) WHERE parent_thread_id IS NOT NULL;
