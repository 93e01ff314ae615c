-- Dunning: a PAST_DUE connection's failed charges and when it is tried again.
-- Keep in step with ../postgres/0004_dunning.sql.

ALTER TABLE plan_connections ADD COLUMN retry_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plan_connections ADD COLUMN next_retry_at BIGINT;
