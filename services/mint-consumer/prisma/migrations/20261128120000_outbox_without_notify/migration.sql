-- The outbox's NOTIFY trigger made every writing transaction hold Postgres' cluster-wide NOTIFY
-- lock until its WAL flush, serializing commits (packages/outbox/sql/outbox_events.sql has none
-- now). The consumer wakes its relay itself after a commit that wrote outbox rows.
DROP TRIGGER IF EXISTS "outbox_events_notify" ON "outbox_events";
DROP FUNCTION IF EXISTS "outbox_events_notify"();
