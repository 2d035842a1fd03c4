-- Message bodies are compressed with LZ4 instead of the default pglz: it compresses several times faster, and
-- under HTTP load pglz took about 8 % of PostgreSQL's CPU. Bodies stored before keep pglz (both are read).
-- A server built without LZ4 keeps pglz.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE message_bodies ALTER COLUMN body SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE recipient_bodies ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server has no LZ4: message bodies stay compressed with pglz';
END
$$;
