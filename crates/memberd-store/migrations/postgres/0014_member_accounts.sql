-- Members' own accounts: publishable keys, the member-facing API's settings, sessions, the
-- keys that sign their tokens, gated content and the count of failed logins. Keep in step
-- with ../sqlite/0014_member_accounts.sql.

-- A publishable key identifies one environment of an app to browsers and grants nothing
-- else, so it is kept as it is: it is no secret.
CREATE TABLE publishable_keys (
    key TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    created_at BIGINT NOT NULL,
    UNIQUE (app_id, env)
);
INSERT INTO publishable_keys (key, app_id, env, created_at)
SELECT CASE e.env WHEN 'live' THEN 'pk_live_' ELSE 'pk_sb_' END
           || md5(random()::text || clock_timestamp()::text || a.id || e.env),
       a.id, e.env, a.created_at
FROM apps a CROSS JOIN (SELECT 'live' AS env UNION ALL SELECT 'sandbox') e;

-- No row: every setting at its default (the code's, which differs between live and sandbox
-- for the allowed origins).
CREATE TABLE environment_settings (
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    -- A JSON array of origins; NULL for the environment's default.
    allowed_origins TEXT,
    signup_enabled BIGINT NOT NULL DEFAULT 1,
    session_lifetime_days BIGINT NOT NULL DEFAULT 14,
    password_min_length BIGINT NOT NULL DEFAULT 8,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, env)
);

CREATE TABLE member_sessions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL,
    env TEXT NOT NULL,
    member_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    -- logout, password_changed, revoked, member_deleted
    end_reason TEXT
);
CREATE INDEX member_sessions_member ON member_sessions (app_id, env, member_id, seq);
-- Sessions are read through the read cache, like members: a session ended outside memberd
-- (plain SQL) is announced as 0013's triggers announce such writes to members.
CREATE TRIGGER member_sessions_updated AFTER UPDATE ON member_sessions
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();
CREATE TRIGGER member_sessions_deleted AFTER DELETE ON member_sessions
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    WHEN (current_setting('memberd.store', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION memberd_reads_changed();

-- The server's token signing keys (ES256). The private half never leaves the database but to
-- sign; a retired key is still published until the tokens it signed have expired.
CREATE TABLE signing_keys (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    -- PKCS#8, base64.
    private_key TEXT NOT NULL,
    -- The uncompressed P-256 point, base64url: what the JWKS publishes.
    public_x TEXT NOT NULL,
    public_y TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE secure_content (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id TEXT NOT NULL,
    env TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('HTML', 'TEXT')),
    content TEXT NOT NULL,
    plan_ids TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, env, id)
);

-- Failed logins per address and per client address, in fixed windows. Unlogged, like the
-- rate limits: counts lost in a crash only start again from zero.
CREATE UNLOGGED TABLE login_failures (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL
);
