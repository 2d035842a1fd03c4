-- PostgreSQL. Retention: the pruner walks messages oldest first by request time, a few hundred per transaction,
-- and deletes those whose every recipient reached its final state before the cutoff. The space of deleted rows
-- is reused after autovacuum has passed over them (see README, Data retention).
CREATE INDEX messages_by_request ON messages (request_ms);
