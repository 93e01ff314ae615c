-- Nothing to do on SQLite: ../postgres/0013_quiet_commits.sql changes the triggers of its 0009
-- and adds the cluster's rate-limit buckets; SQLite has neither (one process serves a SQLite
-- file, and its rate limit is kept in that process). This file keeps the numbering in step.
SELECT 1;
