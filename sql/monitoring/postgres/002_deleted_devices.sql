-- Devices that were deleted, for good: ids are never reused.
--
-- Replicas take device events from one queue as competing consumers, so a
-- device's "upserted" may be applied after its "deleted" (another replica
-- was slower, or the broker redelivered it).  Without a record of the
-- deletion that late upsert would bring the device back; with it, an upsert
-- of a deleted id changes nothing.
CREATE TABLE deleted_devices (
    id TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);
