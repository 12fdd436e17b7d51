-- sessionbase schema 9: paired devices, their one-time pairing codes, and an audit log.
-- Secrets are never stored: a device secret as its SHA-256, a pairing code as an HMAC under
-- the data dir's signing key.
CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,              -- space-separated: read write admin run
    created_at   INTEGER NOT NULL,           -- ms
    last_seen_at INTEGER,
    last_ip      TEXT,
    user_agent   TEXT,
    revoked_at   INTEGER,
    secret_hash  TEXT NOT NULL
);

CREATE TABLE pairing_codes (
    code_hash  TEXT PRIMARY KEY,
    name       TEXT,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device_id  TEXT
);

-- paired, token, revoked, renamed, removed, pairing_created, key_rotated, failed
CREATE TABLE auth_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    device_id TEXT,
    address   TEXT,
    detail    TEXT
);
CREATE INDEX auth_log_by_ts ON auth_log (ts);
