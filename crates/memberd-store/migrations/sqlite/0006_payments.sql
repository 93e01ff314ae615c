-- Charges of members' plan connections. Keep in step with ../postgres/0006_payments.sql.

CREATE TABLE payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    member_id TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL,
    payment_method_id TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    failure_reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_by_member ON payments (member_id, seq);
