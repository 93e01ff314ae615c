-- memberd's own writes stop notifying inside their transactions, and the cluster gets one rate
-- limit. Keep in step with ../sqlite/0013_quiet_commits.sql.
--
-- A transaction that calls pg_notify takes, at commit, a lock that is one for the whole server
-- (not per database) and holds it until its commit record is flushed: the triggers of 0009 made
-- every write to members, plans and plan connections commit one after another. Now memberd's
-- store tells the other nodes itself, after its commit, from a connection of its own (read_cache.rs),
-- and marks its connections with `memberd.store = on`; the triggers notify only for a write
-- made anywhere else (plain SQL, another tool), which keeps the old guarantee for those.
DROP TRIGGER members_inserted ON members;
DROP TRIGGER members_updated ON members;
DROP TRIGGER members_deleted ON members;
DROP TRIGGER plans_inserted ON plans;
DROP TRIGGER plans_updated ON plans;
DROP TRIGGER plans_deleted ON plans;
DROP TRIGGER plan_connections_inserted ON plan_connections;
DROP TRIGGER plan_connections_updated ON plan_connections;
DROP TRIGGER plan_connections_deleted ON plan_connections;

CREATE TRIGGER members_inserted AFTER INSERT ON members
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER members_updated AFTER UPDATE ON members
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER members_deleted AFTER DELETE ON members
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();

CREATE TRIGGER plans_inserted AFTER INSERT ON plans
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plans_updated AFTER UPDATE ON plans
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plans_deleted AFTER DELETE ON plans
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();

CREATE TRIGGER plan_connections_inserted AFTER INSERT ON plan_connections
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plan_connections_updated AFTER UPDATE ON plan_connections
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plan_connections_deleted AFTER DELETE ON plan_connections
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();

-- The cluster's rate limits, one GCRA bucket per key (rate_limits.rs). Unlogged: a check writes
-- no WAL and waits for no flush, and buckets lost in a crash only start full again.
CREATE UNLOGGED TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    -- The bucket's theoretical arrival time, in seconds since the epoch (database time).
    tat DOUBLE PRECISION NOT NULL,
    -- When it was last checked, and what that check took.
    checked_at DOUBLE PRECISION NOT NULL,
    granted INTEGER NOT NULL
);
