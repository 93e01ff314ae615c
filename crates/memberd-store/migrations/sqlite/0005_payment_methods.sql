-- Members' payment methods: only the brand, the last four digits and the expiry of a card are
-- kept, with the gateway's own reference to it. Keep in step with ../postgres/0005_payment_methods.sql.

CREATE TABLE payment_methods (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month BIGINT NOT NULL,
    exp_year BIGINT NOT NULL,
    gateway TEXT NOT NULL,
    gateway_ref TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX payment_methods_by_member ON payment_methods (member_id, seq);
