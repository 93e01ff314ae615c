-- The same tables as ../postgres/0010_unlocked_writes.sql, which lets writes to one
-- environment commit side by side on PostgreSQL. SQLite has a single writer: there tx stays 0
-- (the event log is in sequence order) and every count is in slot 0.
ALTER TABLE events ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
DROP INDEX events_by_scope;
CREATE INDEX events_by_scope ON events (app_id, env, tx, seq);

ALTER TABLE webhook_endpoints ADD COLUMN event_cursor_tx BIGINT NOT NULL DEFAULT 0;

-- SQLite cannot change a primary key in place.
CREATE TABLE member_counts_by_slot (
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    slot BIGINT NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    PRIMARY KEY (app_id, env, slot)
);
INSERT INTO member_counts_by_slot (app_id, env, slot, n) SELECT app_id, env, 0, n FROM member_counts;
DROP TABLE member_counts;
ALTER TABLE member_counts_by_slot RENAME TO member_counts;
