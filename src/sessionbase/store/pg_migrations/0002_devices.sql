-- Paired devices, their one-time pairing codes, and an audit log (as SQLite's schema 9).
CREATE TABLE devices (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    scopes       text NOT NULL,
    created_at   bigint NOT NULL,
    last_seen_at bigint,
    last_ip      text,
    user_agent   text,
    revoked_at   bigint,
    secret_hash  text NOT NULL
);

CREATE TABLE pairing_codes (
    code_hash  text PRIMARY KEY,
    name       text,
    scopes     text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    used_at    bigint,
    device_id  text
);

CREATE TABLE auth_log (
    id        bigserial PRIMARY KEY,
    ts        bigint NOT NULL,
    event     text NOT NULL,
    device_id text,
    address   text,
    detail    text
);
CREATE INDEX auth_log_by_ts ON auth_log (ts);
