-- A large message body of an SQLite store may live in a spool segment file beside the database (`body_spool`):
-- then `body` is empty and these three columns say where it is. NULL: the body is in `body`.
ALTER TABLE message_bodies ADD COLUMN spool_segment INTEGER;
ALTER TABLE message_bodies ADD COLUMN spool_offset INTEGER;
ALTER TABLE message_bodies ADD COLUMN spool_length INTEGER;
-- The sweeper asks per closed segment whether any body still lives in it.
CREATE INDEX message_bodies_spool_segment ON message_bodies (spool_segment) WHERE spool_segment IS NOT NULL;
