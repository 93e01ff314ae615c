-- Tells every memberd node which environment's members, plans or plan connections changed, so
-- that each drops what it keeps of that environment in memory (memberd-store's read_cache.rs).
-- A change made anywhere counts: through another node, the CLI, or plain SQL. Statement
-- triggers send one notification per environment and statement, so a bulk import costs a few,
-- not one per row; PostgreSQL delivers them at commit, folding repeats within a transaction.
-- SQLite needs no triggers (its cache watches the WAL index instead):
-- ../sqlite/0009_read_notifications.sql is empty, to keep the numbering in step.
CREATE FUNCTION memberd_reads_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('memberd_reads', scope)
    FROM (SELECT DISTINCT app_id || ' ' || env AS scope FROM changed) AS scopes;
    RETURN NULL;
END
$$;

CREATE TRIGGER members_inserted AFTER INSERT ON members
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER members_updated AFTER UPDATE ON members
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER members_deleted AFTER DELETE ON members
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();

CREATE TRIGGER plans_inserted AFTER INSERT ON plans
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plans_updated AFTER UPDATE ON plans
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plans_deleted AFTER DELETE ON plans
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();

CREATE TRIGGER plan_connections_inserted AFTER INSERT ON plan_connections
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plan_connections_updated AFTER UPDATE ON plan_connections
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER plan_connections_deleted AFTER DELETE ON plan_connections
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memberd_reads_changed();
