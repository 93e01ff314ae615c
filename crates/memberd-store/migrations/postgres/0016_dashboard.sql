-- The dashboard: operators, their sign-ins, the links that set their passwords, and the
-- audit log of what they change. Keep in step with ../sqlite/0016_dashboard.sql.

CREATE TABLE operators (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    -- Stored lowercase.
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    -- 1: every app, including later ones; 0: the apps in operator_apps.
    all_apps BIGINT NOT NULL,
    -- argon2id; NULL until the operator follows their link.
    password_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE operator_apps (
    operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    PRIMARY KEY (operator_id, app_id)
);

-- A sign-in. The cookie holds the token; only its SHA-256 is kept.
CREATE TABLE operator_sessions (
    token_hash TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX operator_sessions_by_operator ON operator_sessions (operator_id);

-- One-time links that set a password. operator_id NULL: the link `memberd serve` prints on
-- a database with no operator, which makes the first owner.
CREATE TABLE operator_links (
    token_hash TEXT PRIMARY KEY,
    operator_id TEXT REFERENCES operators (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE audit_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    operator_id TEXT NOT NULL,
    -- As it was then: the entry reads the same after the operator changes or goes.
    operator_email TEXT NOT NULL,
    app_id TEXT,
    env TEXT CHECK (env IN ('live', 'sandbox')),
    action TEXT NOT NULL,
    target TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_by_scope ON audit_log (app_id, env, seq);
