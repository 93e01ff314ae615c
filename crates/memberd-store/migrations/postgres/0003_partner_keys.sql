-- Partner keys (Appstle's X-App-Key): an integration's key across apps, stored as a hash.
-- Keep in step with ../sqlite/0003_partner_keys.sql.

CREATE TABLE partner_keys (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
