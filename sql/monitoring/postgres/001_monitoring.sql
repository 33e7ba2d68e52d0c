-- Devices as monitoring knows them (from internal.device.monitoring.queue): limit and owner.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    owner_id TEXT,
    max_hourly_kwh DOUBLE PRECISION NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

CREATE INDEX devices_owner ON devices (owner_id);

-- Every accepted reading once: the key is what makes duplicates and redeliveries harmless.
CREATE TABLE readings (
    device_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    kwh DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, ts)
);

-- Sums per UTC quarter hour (bucket_start: epoch ms, a multiple of 900000).
CREATE TABLE buckets (
    device_id TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    kwh DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, bucket_start)
);

-- One alert per device and UTC hour, raised when the hour's total first passed the limit.
CREATE TABLE alerts (
    device_id TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    total_kwh DOUBLE PRECISION NOT NULL,
    limit_kwh DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, hour_start)
);

CREATE INDEX alerts_hour ON alerts (hour_start);

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
