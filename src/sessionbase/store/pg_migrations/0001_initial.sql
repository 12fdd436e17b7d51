-- sessionbase on PostgreSQL, schema 1: the same logical tables as on SQLite (DESIGN §3).
-- Times are bigint milliseconds since the epoch (UTC); JSON columns hold JSON text, as on
-- SQLite, so values round-trip byte for byte. Several machines share one database: files
-- (sources, quarantine) are keyed by machine and path, everything else by the ids Codex gives.

CREATE TABLE projects (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    working_dir  text NOT NULL,
    repo_url     text,
    repo_branch  text,
    repo_commit  text,
    machine      text,
    created_at   bigint,
    updated_at   bigint,
    origin       text NOT NULL DEFAULT 'derived',     -- derived | user
    hidden       integer NOT NULL DEFAULT 0
);

CREATE TABLE threads (
    id               text PRIMARY KEY,
    project_id       text,
    machine          text,
    source           text,
    source_detail    text,
    originator       text,
    cli_version      text,
    model            text,
    model_provider   text,
    cwd              text,
    git              text,
    title            text,
    title_source     text,
    title_auto       text,
    name_event       text,
    rollout_path     text,
    forked_from_id   text,
    parent_thread_id text,
    agent_role       text,
    agent_nickname   text,
    created_at       bigint,
    updated_at       bigint,
    message_count    integer NOT NULL DEFAULT 0,
    last_message_at  bigint,
    snippet          text,
    tokens_input     bigint NOT NULL DEFAULT 0,
    tokens_cached    bigint NOT NULL DEFAULT 0,
    tokens_output    bigint NOT NULL DEFAULT 0,
    tokens_reasoning bigint NOT NULL DEFAULT 0,
    tokens_total     bigint NOT NULL DEFAULT 0,
    archived         integer NOT NULL DEFAULT 0,
    pinned           integer NOT NULL DEFAULT 0,
    archived_by_user integer,
    title_search     tsvector                         -- our own tokens (store._pg_fts)
);
CREATE INDEX threads_by_updated ON threads (updated_at DESC, id);
CREATE INDEX threads_by_project ON threads (project_id, updated_at DESC);
CREATE INDEX threads_by_parent ON threads (parent_thread_id) WHERE parent_thread_id IS NOT NULL;
CREATE INDEX threads_title_search ON threads USING gin (title_search);

CREATE TABLE messages (
    thread_id     text NOT NULL,
    idx           integer NOT NULL,
    turn_id       text,
    ts            bigint,
    role          text NOT NULL,
    kind          text NOT NULL,
    text          text NOT NULL,
    data          text NOT NULL DEFAULT '{}',
    item_id       text,
    source_offset bigint,
    search        tsvector NOT NULL,                  -- our own tokens (store._pg_fts)
    PRIMARY KEY (thread_id, idx)
);
CREATE INDEX messages_search ON messages USING gin (search);

CREATE TABLE extras (
    thread_id     text NOT NULL,
    source_offset bigint NOT NULL,
    type          text NOT NULL,
    raw           text NOT NULL,
    PRIMARY KEY (thread_id, source_offset, type)
);

CREATE TABLE skills (
    id                text PRIMARY KEY,
    scope             text NOT NULL,
    name              text NOT NULL,
    description       text NOT NULL,
    short_description text,
    license           text,
    allowed_tools     text,
    metadata          text NOT NULL DEFAULT '{}',
    path              text NOT NULL,
    project_id        text
);

CREATE TABLE skill_problems (
    path   text NOT NULL,
    scope  text NOT NULL,
    reason text NOT NULL
);

CREATE TABLE sources (
    machine         text NOT NULL,
    path            text NOT NULL,
    codex_home      text NOT NULL,
    thread_id       text,
    generation      text,
    dev             bigint,
    inode           bigint,
    size            bigint NOT NULL DEFAULT 0,
    mtime_ns        bigint NOT NULL DEFAULT 0,
    "offset"        bigint NOT NULL DEFAULT 0,
    lines           bigint NOT NULL DEFAULT 0,
    fingerprint     text,
    fingerprint_len integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'ok',
    error           text,
    skipped         text NOT NULL DEFAULT '{}',
    state           text,
    updated_at      bigint,
    PRIMARY KEY (machine, path)
);
CREATE INDEX sources_by_thread ON sources (thread_id);
CREATE INDEX sources_by_inode ON sources (machine, dev, inode);

CREATE TABLE quarantine (
    machine  text NOT NULL,
    path     text NOT NULL,
    "offset" bigint NOT NULL,
    lineno   bigint NOT NULL,
    reason   text NOT NULL,
    raw      bytea NOT NULL,
    PRIMARY KEY (machine, path, "offset")
);

CREATE TABLE session_index (
    thread_id  text PRIMARY KEY,
    name       text NOT NULL,
    updated_at text
);

CREATE TABLE user_metadata (
    entity     text NOT NULL,
    id         text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (entity, id, key)
);

-- Every commit of every process: replicas read it to know what changed (NOTIFY only wakes them).
CREATE TABLE commit_log (
    version bigint PRIMARY KEY,
    touched text NOT NULL
);

CREATE TABLE settings_kv (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE mutation_log (
    session_id text NOT NULL,
    request_id bigint NOT NULL,
    result     text NOT NULL,
    version    bigint NOT NULL,
    ts         bigint NOT NULL,
    call       text,                                -- digest of the path and arguments
    PRIMARY KEY (session_id, request_id)
);

CREATE TABLE units (
    thread_id    text NOT NULL,
    start_idx    integer NOT NULL,
    end_idx      integer NOT NULL,
    role         text NOT NULL,
    content_hash text NOT NULL,
    text         text NOT NULL,
    PRIMARY KEY (thread_id, start_idx)
);
CREATE INDEX units_by_hash ON units (content_hash);

-- Embeddings by content hash, one table for every model; label is the id in each replica's
-- in-memory ANN index (a column of type vector could sit beside it where pgvector exists).
CREATE TABLE vectors (
    model  text NOT NULL,
    label  bigint GENERATED ALWAYS AS IDENTITY,
    hash   text NOT NULL,
    vector bytea NOT NULL,
    PRIMARY KEY (model, label),
    UNIQUE (model, hash)
);

-- Each serving process says it is alive, and how far it has applied the commit log.
CREATE TABLE replicas (
    id           text PRIMARY KEY,
    machine      text NOT NULL,
    pid          integer NOT NULL,
    address      text,
    started_at   bigint NOT NULL,
    heartbeat_at bigint NOT NULL,
    applied      bigint NOT NULL DEFAULT 0
);

-- Who ingests each (machine, Codex home); token changes at every takeover, so a process that
-- lost its claim cannot commit for that home any more.
CREATE TABLE ingesters (
    machine    text NOT NULL,
    codex_home text NOT NULL,
    holder     text NOT NULL,
    pid        integer NOT NULL,
    token      bigint NOT NULL,
    since      bigint NOT NULL,
    PRIMARY KEY (machine, codex_home)
);
