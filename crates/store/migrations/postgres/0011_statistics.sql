-- Issue 6, statistics and the rest of the feedback loop.

-- The template a message was rendered from (0 = none): callbacks report it as templateId.
ALTER TABLE messages ADD COLUMN template_id BIGINT NOT NULL DEFAULT 0;

-- Daily rollup behind GetStatisticsReport: one row per (account, UTC day, sending domain, recipient domain),
-- its counters bumped IN THE SAME TRANSACTION as the events (and deliveries) they count, so the report reads a
-- few rows per day instead of aggregating the event log. `day` is days since 1970-01-01 (UTC).
CREATE TABLE stats_daily (
    account_id   BIGINT NOT NULL,
    day          BIGINT  NOT NULL,
    send_domain  TEXT    NOT NULL,
    recv_domain  TEXT    NOT NULL,
    requested    BIGINT NOT NULL DEFAULT 0,
    accepted     BIGINT NOT NULL DEFAULT 0,
    delivered    BIGINT NOT NULL DEFAULT 0,
    opened       BIGINT NOT NULL DEFAULT 0,
    clicked      BIGINT NOT NULL DEFAULT 0,
    bounced      BIGINT NOT NULL DEFAULT 0,
    unsubscribed BIGINT NOT NULL DEFAULT 0,
    dropped      BIGINT NOT NULL DEFAULT 0,
    complained   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day, send_domain, recv_domain)
);

-- First open / first click of a recipient of a message: OpenedCount and ClickedCount count recipients, not
-- pixel loads. The primary key makes "first" race-free on every backend.
CREATE TABLE stats_firsts (
    message_id TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    kind       INTEGER NOT NULL,
    PRIMARY KEY (message_id, recipient, kind)
);

-- GetAbuseReport pages through the account's complaints (spamreport events) by time.
CREATE INDEX events_complaints ON events (account_id, at_ms) WHERE kind = 6;

-- AddressUnsubscribeConfig: the default Unsubscribe option of a sender address (Status 1 = in force).
CREATE TABLE address_unsubscribe_configs (
    account_id         BIGINT NOT NULL,
    address            TEXT    NOT NULL,
    unsubscribe_config TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    created_ms         BIGINT NOT NULL,
    PRIMARY KEY (account_id, address)
);

-- Bounce-rate warnings: raised when an account's bounce rate over the reputation window exceeds the threshold,
-- cleared when it falls back. At most one open warning per account (the partial unique index), so several
-- monitors sharing a database raise it once.
CREATE TABLE reputation_warnings (
    id         BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    kind       TEXT    NOT NULL,
    raised_ms  BIGINT NOT NULL,
    cleared_ms BIGINT,
    rate       DOUBLE PRECISION    NOT NULL,
    threshold  DOUBLE PRECISION    NOT NULL,
    delivered  BIGINT NOT NULL,
    bounced    BIGINT NOT NULL
);
CREATE UNIQUE INDEX reputation_warnings_open ON reputation_warnings (account_id, kind) WHERE cleared_ms IS NULL;
CREATE INDEX reputation_warnings_by_account ON reputation_warnings (account_id, raised_ms);
