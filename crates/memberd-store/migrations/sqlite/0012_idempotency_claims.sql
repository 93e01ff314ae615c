-- An Idempotency-Key is claimed for as long as its request may run (a lease), by one claim
-- (a token), and its answer is written in the transaction of the write it answers. A claim
-- whose lease ran out unanswered (its process died) is taken over by the next retry; the
-- write of a claim that was taken over cannot commit. Keys claimed before this migration
-- have no lease, and count as run out.
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT;
ALTER TABLE idempotency_keys ADD COLUMN lease_until BIGINT;
-- The Content-Type of the answer kept, so that a replay is the answer as it was.
ALTER TABLE idempotency_keys ADD COLUMN response_type TEXT;
