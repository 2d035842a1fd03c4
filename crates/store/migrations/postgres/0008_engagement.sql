-- Issue 6 part B: unsubscribes, per-recipient bodies of tracked mail, callbacks.

-- An unsubscribe binds a recipient to the sending domain it unsubscribed from (per account: a domain belongs
-- to one account). Admission looks up (account, domain, recipients) with one indexed query.
CREATE TABLE unsubscribes (
    account_id BIGINT  NOT NULL,
    domain     TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    at_ms      BIGINT  NOT NULL,
    PRIMARY KEY (account_id, domain, recipient)
);

-- Mail with tracking or an unsubscribe link carries recipient-specific tokens: its body is built per
-- recipient and kept here; the worker prefers it over message_bodies.
CREATE TABLE recipient_bodies (
    message_id TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    body       BYTEA NOT NULL,
    PRIMARY KEY (message_id, recipient)
);

-- Callback targets: sender_address '' is the account-level URL; a sender address's own URL wins.
CREATE TABLE callback_targets (
    account_id     BIGINT  NOT NULL,
    sender_address TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    PRIMARY KEY (account_id, sender_address)
);

-- The per-account secret callbacks are signed with, sealed under the master key.
CREATE TABLE callback_secrets (
    account_id    BIGINT  PRIMARY KEY,
    secret_sealed BYTEA    NOT NULL
);

-- Per-event callback delivery state (no high-water mark: every event is tracked on its own).
-- cb_state: 0 = to deliver (due at cb_next_ms; a claim pushes cb_next_ms forward as a lease),
-- 1 = delivered, 2 = nothing to deliver to (no URL), 3 = given up after the retry window.
ALTER TABLE events ADD COLUMN cb_state INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cb_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cb_next_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cb_error TEXT;
CREATE INDEX events_callback_due ON events (cb_next_ms) WHERE cb_state = 0;
