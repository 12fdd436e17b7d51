-- sessionbase schema 12: the pinned threads, newest first, without reading the others (the
-- web app's history asks for them on every commit that touches a thread).
CREATE INDEX IF NOT EXISTS threads_pinned ON threads (updated_at DESC) WHERE pinned != 0;
