-- SQLite. Sending limits (issue 5): per-account limit overrides and usage counters, the per-recipient sliding
-- hour, and sending domains' reputation levels.

-- One row per account that has sent or has overrides. The enqueue transaction reads and updates it for every
-- admitted message: it is the account's serialization point (PostgreSQL locks it FOR UPDATE). NULL limit
-- columns mean "the configured default". second_ms / day_ms name the current fixed window (its start, Unix ms).
CREATE TABLE account_limits (
    account_id             INTEGER PRIMARY KEY REFERENCES accounts (id),
    sends_per_second       INTEGER,
    per_recipient_per_hour INTEGER,
    daily_cap              INTEGER,
    second_ms              INTEGER NOT NULL DEFAULT 0,
    second_count           INTEGER NOT NULL DEFAULT 0,
    day_ms                 INTEGER NOT NULL DEFAULT 0,
    day_count              INTEGER NOT NULL DEFAULT 0
);

-- One row per admitted recipient, kept for an hour (pruned lazily): the true sliding-hour count.
CREATE TABLE recipient_sends (
    account_id INTEGER NOT NULL,
    recipient  TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL
);
CREATE INDEX recipient_sends_by_recipient ON recipient_sends (account_id, recipient, at_ms);
CREATE INDEX recipient_sends_by_time ON recipient_sends (account_id, at_ms);

-- Reputation level of a sending domain (no row = level 1, a new domain). changed_ms: last level change;
-- evaluated_day_ms: the UTC day of the last daily evaluation.
CREATE TABLE domain_reputation (
    account_id       INTEGER NOT NULL REFERENCES accounts (id),
    domain           TEXT    NOT NULL,
    level            INTEGER NOT NULL DEFAULT 1,
    changed_ms       INTEGER NOT NULL DEFAULT 0,
    evaluated_day_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, domain)
);
