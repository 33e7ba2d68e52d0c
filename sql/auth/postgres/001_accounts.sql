-- Accounts: credentials and role.  Profiles live in the users role.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'client')),
    token_version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Usernames are unique regardless of case.
CREATE UNIQUE INDEX accounts_username ON accounts (lower(username));

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE inbox (
    event_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
