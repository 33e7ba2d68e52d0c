-- Accounts known to devices (from internal.auth.device.queue): who may own a device.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    role TEXT NOT NULL
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    max_hourly_kwh REAL NOT NULL CHECK (max_hourly_kwh > 0),
    energy_class TEXT,
    owner_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX devices_owner ON devices (owner_id);
CREATE INDEX devices_name ON devices (name);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE inbox (
    event_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
