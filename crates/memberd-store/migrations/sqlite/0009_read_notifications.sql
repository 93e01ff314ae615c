-- Nothing to do on SQLite: ../postgres/0009_read_notifications.sql adds the triggers that tell
-- memberd nodes sharing a PostgreSQL database what changed; on SQLite every commit shows in the
-- WAL-index header, which the read cache watches. This file keeps the two folders' numbering
-- in step.
SELECT 1;
