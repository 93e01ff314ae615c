-- The lifecycle scheduler and test clocks. Keep in step with ../postgres/0007_lifecycle.sql.

-- A sandbox clock that a set of members lives by; it moves only when advanced.
CREATE TABLE test_clocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    frozen_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE members ADD COLUMN test_clock_id TEXT REFERENCES test_clocks (id);

-- When the connection's next transition falls due (kept from the domain's next_due on every
-- write), the clock it falls due by (that of its member), and the scheduler's lease on it.
ALTER TABLE plan_connections ADD COLUMN next_action_at BIGINT;
ALTER TABLE plan_connections ADD COLUMN test_clock_id TEXT;
ALTER TABLE plan_connections ADD COLUMN lease_until BIGINT;
-- The plan a connection moves to at the end of its period.
ALTER TABLE plan_connections ADD COLUMN scheduled_plan_id TEXT;
ALTER TABLE plan_connections ADD COLUMN scheduled_price_id TEXT;
CREATE INDEX plan_connections_due ON plan_connections (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX plan_connections_by_clock ON plan_connections (test_clock_id, next_action_at) WHERE test_clock_id IS NOT NULL;

-- Connections written before the scheduler existed: the earliest time anything could fall due.
-- The scheduler works out the exact transition when it looks at them.
UPDATE plan_connections SET next_action_at = COALESCE(resume_at, next_retry_at, current_period_end, end_date)
    WHERE status NOT IN ('CANCELED', 'EXPIRED');
