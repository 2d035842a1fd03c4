-- SQLite. Retention: the pruner walks messages oldest first by request time, a few hundred per transaction,
-- and deletes those whose every recipient reached its final state before the cutoff.
CREATE INDEX messages_by_request ON messages (request_ms);
