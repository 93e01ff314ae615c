-- How many members each environment holds, kept in the transaction of every insert and delete,
-- so that an unfiltered list's totalCount is one row's read instead of a count over every
-- member (tens of milliseconds at a million). Keep in step with ../sqlite/0008_member_counts.sql.
CREATE TABLE member_counts (
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    n BIGINT NOT NULL,
    PRIMARY KEY (app_id, env)
);

INSERT INTO member_counts (app_id, env, n)
SELECT app_id, env, COUNT(*) FROM members GROUP BY app_id, env;
