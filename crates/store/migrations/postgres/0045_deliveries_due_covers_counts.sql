-- PostgreSQL. The due index also carries each waiting delivery's state and status, so that the queue's counts
-- (the `/metrics` gauges, refreshed every few seconds on every node) are an index-only scan instead of a read of
-- every waiting row from the table: with a million waiting among eleven million the planner scanned the whole
-- table, 1.3 s of CPU per refresh. The key, and so the claims' order, is unchanged. Every write that changes
-- `state` or `deliver_status` of a waiting row changes its `next_attempt_ms` or takes it out of the index, so the
-- entry was rewritten anyway.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (lane, next_attempt_ms) INCLUDE (state, deliver_status) WHERE state < 2;
