-- The columns of SQLite's body spool (see the SQLite migration), so that both backends read bodies with one
-- statement. PostgreSQL keeps every body in `body`: these stay NULL.
ALTER TABLE message_bodies ADD COLUMN spool_segment BIGINT;
ALTER TABLE message_bodies ADD COLUMN spool_offset BIGINT;
ALTER TABLE message_bodies ADD COLUMN spool_length BIGINT;
