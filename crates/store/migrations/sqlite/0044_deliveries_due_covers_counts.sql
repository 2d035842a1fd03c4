-- SQLite. The due index also holds each waiting delivery's state and status, so that the queue's counts (the
-- `/metrics` gauges, refreshed every few seconds) read the index alone instead of every waiting row: a million
-- waiting deliveries took a third of a second of CPU per refresh. `id` follows `next_attempt_ms` so that claims
-- still read due rows in (due, id) order without sorting them. Every write that changes `state` or
-- `deliver_status` of a waiting row changes its `next_attempt_ms` too, so the entry was rewritten anyway.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (lane, next_attempt_ms, id, state, deliver_status) WHERE state < 2;
