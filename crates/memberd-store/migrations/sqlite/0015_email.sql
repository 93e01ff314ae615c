-- Email: the outbox, templates and one-time codes. Keep in step with ../postgres/0015_email.sql.

-- The email outbox. An email is written in the transaction of the change that asks for it,
-- already rendered, and the sender claims it with a lease, sends it and records how that went.
CREATE TABLE emails (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    kind TEXT NOT NULL,
    member_id TEXT,
    to_address TEXT NOT NULL,
    -- The environment's sender when it has one; NULL for the server's --email-from.
    from_name TEXT,
    from_address TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'not_sent')),
    -- Why it failed or was not sent.
    status_reason TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    lease_owner TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'queued';
CREATE INDEX emails_by_scope ON emails (app_id, env, seq);

-- Each environment's own templates; a kind without a row uses the built-in default.
CREATE TABLE email_templates (
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, env, kind)
);

-- One-time codes, kept only as hashes: one per address and purpose (a new one replaces the
-- last), and no two live ones alike in an environment, so that a code alone finds its member.
CREATE TABLE member_codes (
    app_id TEXT NOT NULL,
    env TEXT NOT NULL,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    member_id TEXT,
    code_hash TEXT NOT NULL,
    wrong_tries BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, env, purpose, email),
    UNIQUE (app_id, env, purpose, code_hash)
);

ALTER TABLE environment_settings ADD COLUMN email_from_name TEXT;
ALTER TABLE environment_settings ADD COLUMN email_from_address TEXT;
ALTER TABLE environment_settings ADD COLUMN verify_redirect_url TEXT;
