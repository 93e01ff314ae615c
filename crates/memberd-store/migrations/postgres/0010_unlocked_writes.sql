-- Writes to one environment commit side by side instead of one after another. Keep in step
-- with ../sqlite/0010_unlocked_writes.sql.
--
-- Until now every write that recorded events took an advisory lock of its environment and
-- held it to commit, so that the event log's numbers were in commit order; every write that
-- added or removed a member held the environment's one member_counts row to commit. Both
-- made each write wait for the WAL flush of the one before it.

-- The event log is now read in the order of the transactions that recorded the events, and
-- only as far as every older transaction has ended (see events.rs). Events recorded before
-- this migration are all settled: they keep tx 0 and so come first, in their old order.
ALTER TABLE events ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN tx SET DEFAULT pg_current_xact_id()::text::bigint;
DROP INDEX events_by_scope;
CREATE INDEX events_by_scope ON events (app_id, env, tx, seq);

-- Where a webhook endpoint stands in the log is now a (tx, seq) pair.
ALTER TABLE webhook_endpoints ADD COLUMN event_cursor_tx BIGINT NOT NULL DEFAULT 0;

-- A member count is now the sum of slots; each database connection adds to its own.
ALTER TABLE member_counts ADD COLUMN slot BIGINT NOT NULL DEFAULT 0;
ALTER TABLE member_counts DROP CONSTRAINT member_counts_pkey;
ALTER TABLE member_counts ADD PRIMARY KEY (app_id, env, slot);
