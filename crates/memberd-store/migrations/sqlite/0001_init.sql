-- memberd's schema. Keep in step with ../postgres/0001_init.sql: the same tables, columns,
-- defaults and constraints. Timestamps are microseconds since the Unix epoch (UTC), flags are
-- 0/1 integers, JSON is text: types both backends share.

CREATE TABLE apps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    shop_domain TEXT UNIQUE,
    api_access BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE plans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    name TEXT NOT NULL,
    description TEXT,
    plan_type TEXT NOT NULL,
    status TEXT NOT NULL,
    permissions TEXT NOT NULL,
    prices TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX plans_by_scope ON plans (app_id, env, seq);

CREATE TABLE members (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    email TEXT NOT NULL,
    password_hash TEXT,
    verified BIGINT NOT NULL DEFAULT 0,
    custom_fields TEXT NOT NULL,
    meta_data TEXT NOT NULL,
    json TEXT,
    login_redirect TEXT,
    profile_image TEXT,
    stripe_customer_id TEXT,
    external_id TEXT,
    permissions TEXT NOT NULL,
    last_login BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT members_email_unique UNIQUE (app_id, env, email),
    CONSTRAINT members_external_id_unique UNIQUE (app_id, env, external_id)
);
CREATE INDEX members_by_scope ON members (app_id, env, seq);
CREATE INDEX members_by_updated_at ON members (app_id, env, updated_at);

CREATE TABLE plan_connections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    price_id TEXT,
    connection_type TEXT NOT NULL,
    status TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT,
    billing_interval TEXT,
    interval_count BIGINT NOT NULL,
    start_date BIGINT NOT NULL,
    current_period_start BIGINT,
    current_period_end BIGINT,
    trial_end BIGINT,
    cancel_at_period_end BIGINT NOT NULL DEFAULT 0,
    canceled_at BIGINT,
    cancel_reason TEXT,
    paused_at BIGINT,
    resume_at BIGINT,
    end_date BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX plan_connections_by_member ON plan_connections (member_id, seq);
CREATE INDEX plan_connections_by_plan ON plan_connections (plan_id, status);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_by_scope ON events (app_id, env, seq);

-- A request made with an Idempotency-Key: in progress while status_code is NULL, then the
-- response to replay.
CREATE TABLE idempotency_keys (
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status_code BIGINT,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, env, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
