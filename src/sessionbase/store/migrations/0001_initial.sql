-- sessionbase schema 1: the mirror of Codex rollouts (DESIGN §3).
-- Times are integer milliseconds since the epoch (UTC); JSON columns hold JSON text.

CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    working_dir  TEXT NOT NULL,
    repo_url     TEXT,
    repo_branch  TEXT,
    repo_commit  TEXT,
    machine      TEXT,
    created_at   INTEGER,
    updated_at   INTEGER
);

CREATE TABLE threads (
    id               TEXT PRIMARY KEY,           -- the Codex session id
    project_id       TEXT,
    machine          TEXT,
    source           TEXT,
    source_detail    TEXT,                       -- JSON: the raw source object, if any
    originator       TEXT,
    cli_version      TEXT,
    model            TEXT,
    model_provider   TEXT,
    cwd              TEXT,
    git              TEXT,                       -- JSON {commit_hash, branch, repository_url}
    title            TEXT,                       -- effective: rename > index > event > first message
    title_source     TEXT,
    title_auto       TEXT,                       -- first real user message
    name_event       TEXT,                       -- last thread_name_updated in the rollout
    rollout_path     TEXT,
    forked_from_id   TEXT,
    parent_thread_id TEXT,
    agent_role       TEXT,
    agent_nickname   TEXT,
    created_at       INTEGER,
    updated_at       INTEGER,
    message_count    INTEGER NOT NULL DEFAULT 0,
    last_message_at  INTEGER,
    snippet          TEXT,
    tokens_input     INTEGER NOT NULL DEFAULT 0,
    tokens_cached    INTEGER NOT NULL DEFAULT 0,
    tokens_output    INTEGER NOT NULL DEFAULT 0,
    tokens_reasoning INTEGER NOT NULL DEFAULT 0,
    tokens_total     INTEGER NOT NULL DEFAULT 0,
    archived         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX threads_by_updated ON threads (updated_at DESC);
CREATE INDEX threads_by_project ON threads (project_id, updated_at DESC);

CREATE TABLE messages (
    thread_id     TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    turn_id       TEXT,
    ts            INTEGER,
    role          TEXT NOT NULL,                 -- user | assistant | system
    kind          TEXT NOT NULL,                 -- message | reason | cmd | patch | tool | search | plan | error
    text          TEXT NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}',    -- JSON payload: command, exit code, output excerpt…
    item_id       TEXT,
    source_offset INTEGER,
    UNIQUE (thread_id, idx)
);

-- Lines nothing maps yet, kept raw (and counted in sources.unknown).
CREATE TABLE extras (
    thread_id     TEXT NOT NULL,
    source_offset INTEGER NOT NULL,
    type          TEXT NOT NULL,
    raw           TEXT NOT NULL,
    PRIMARY KEY (thread_id, source_offset, type)
);

CREATE TABLE skills (
    id                TEXT PRIMARY KEY,
    scope             TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    short_description TEXT,
    license           TEXT,
    allowed_tools     TEXT,                      -- JSON list
    metadata          TEXT NOT NULL DEFAULT '{}',
    path              TEXT NOT NULL,
    project_id        TEXT
);

CREATE TABLE skill_problems (
    path   TEXT NOT NULL,
    scope  TEXT NOT NULL,
    reason TEXT NOT NULL
);

-- One row per rollout file: where ingest stands, and the normalizer state at that offset.
CREATE TABLE sources (
    path            TEXT PRIMARY KEY,
    codex_home      TEXT NOT NULL,
    thread_id       TEXT,
    generation      TEXT,
    dev             INTEGER,
    inode           INTEGER,
    size            INTEGER NOT NULL DEFAULT 0,
    mtime_ns        INTEGER NOT NULL DEFAULT 0,
    "offset"        INTEGER NOT NULL DEFAULT 0,
    lines           INTEGER NOT NULL DEFAULT 0,
    fingerprint     TEXT,
    fingerprint_len INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'ok',  -- ok | duplicate | error | gone
    error           TEXT,
    skipped         TEXT NOT NULL DEFAULT '{}',  -- JSON {reason: count}
    state           TEXT,                        -- JSON ThreadState
    updated_at      INTEGER
);
CREATE INDEX sources_by_thread ON sources (thread_id);

CREATE TABLE quarantine (
    path   TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    lineno INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw    BLOB NOT NULL,                        -- at most the first 4 KiB of the line
    PRIMARY KEY (path, "offset")
);

-- Names from $CODEX_HOME/session_index.jsonl (newest entry per thread wins).
CREATE TABLE session_index (
    thread_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    updated_at TEXT
);

-- What the user decided (renames, pins, archive flags, tags): never derived, never dropped.
CREATE TABLE user_metadata (
    entity     TEXT NOT NULL,
    id         TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,                    -- JSON
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (entity, id, key)
);

CREATE TABLE commit_log (
    version INTEGER PRIMARY KEY,                 -- nanoseconds since the epoch, monotonic
    touched TEXT NOT NULL                        -- JSON list of "table:key" strings
);

CREATE TABLE settings_kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
