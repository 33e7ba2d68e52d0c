-- The ws role: stored notifications, chat history, the people seen on the
-- WebSocket (so that a client can address an administrator by id and an
-- administrator's conversation list shows names), and the live replicas.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);

CREATE INDEX notifications_user ON notifications (user_id, id);

-- A conversation is named by its client's id: the client talks with the administrators as a team.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_role TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at BIGINT
);

CREATE INDEX messages_conversation ON messages (conversation, id);

CREATE TABLE people (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE TABLE ws_replicas (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

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
