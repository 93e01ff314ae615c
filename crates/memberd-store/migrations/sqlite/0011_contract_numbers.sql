-- Appstle's membership contracts are numbered per environment of an app, so that a store
-- cannot tell from its own numbers how many contracts other stores make. The numbers given so
-- far (the table's global sequence) stay what they were; each environment goes on from the
-- highest it holds.
ALTER TABLE plan_connections ADD COLUMN contract_number BIGINT NOT NULL DEFAULT 0;
UPDATE plan_connections SET contract_number = seq;
CREATE UNIQUE INDEX plan_connections_by_number ON plan_connections (app_id, env, contract_number);

CREATE TABLE contract_numbers (
    app_id TEXT NOT NULL REFERENCES apps (id),
    env TEXT NOT NULL CHECK (env IN ('live', 'sandbox')),
    last_number BIGINT NOT NULL,
    PRIMARY KEY (app_id, env)
);
INSERT INTO contract_numbers (app_id, env, last_number)
    SELECT app_id, env, MAX(seq) FROM plan_connections GROUP BY app_id, env;
