-- SQLite. Warm-up of sending domains and automatic reputation levels (issue 5).

-- The sending domain (the domain of the message's From address, lower case) on each delivery, so the claim can
-- count and hold per domain without a join. warmup_day_ms: the UTC day (its midnight, Unix ms) whose warm-up
-- allowance this delivery used, -1 = none yet; a retry on the same day does not use allowance twice.
-- warmup_held: 1 while the delivery waits for a later day's allowance (GetSendEmailStatus says so).
ALTER TABLE deliveries ADD COLUMN sender_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN warmup_day_ms INTEGER NOT NULL DEFAULT -1;
ALTER TABLE deliveries ADD COLUMN warmup_held INTEGER NOT NULL DEFAULT 0;

-- Existing rows: the sending domain from their message.
UPDATE deliveries SET sender_domain = (
    SELECT lower(substr(m.from_address, instr(m.from_address, '@') + 1)) FROM messages m WHERE m.id = deliveries.message_id
);

-- "How many are held" per account and domain reads only the held rows.
CREATE INDEX deliveries_warmup_held ON deliveries (account_id, sender_domain) WHERE warmup_held = 1 AND state < 2;

-- One row per (account, sending domain) that has sent: its first sending day (UTC midnight, Unix ms; the
-- warm-up ramp counts from it) and the deliveries that used the allowance of day day_ms. The claim transaction
-- reads and updates it (PostgreSQL: FOR UPDATE), so workers sharing the database never exceed the allowance.
CREATE TABLE domain_warmup (
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    domain       TEXT    NOT NULL,
    first_day_ms INTEGER NOT NULL,
    day_ms       INTEGER NOT NULL DEFAULT 0,
    day_count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, domain)
);

-- Domains that sent before warm-up existed are not new: their first day is their first message's.
INSERT INTO domain_warmup (account_id, domain, first_day_ms)
SELECT account_id, domain, MIN(request_ms) - (MIN(request_ms) % 86400000)
FROM (SELECT account_id, lower(substr(from_address, instr(from_address, '@') + 1)) AS domain, request_ms FROM messages)
GROUP BY account_id, domain;
