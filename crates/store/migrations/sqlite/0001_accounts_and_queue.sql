-- mailpush store, SQLite: accounts and the delivery queue.
-- All timestamps are Unix milliseconds (INTEGER). Later features (identities, templates,
-- suppression, events) arrive as their own migrations.

CREATE TABLE accounts (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    app_id            INTEGER NOT NULL,
    secret_id         TEXT    NOT NULL UNIQUE,
    secret_key_sealed BLOB    NOT NULL,
    created_ms        INTEGER NOT NULL,
    suspended         INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1))
);

-- One row per accepted message. open_count = deliveries not yet final; the body is purged when it reaches 0.
CREATE TABLE messages (
    id            TEXT    NOT NULL PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    envelope_from TEXT    NOT NULL,
    from_address  TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    lane          INTEGER NOT NULL,
    request_ms    INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    open_count    INTEGER NOT NULL CHECK (open_count >= 0)
);

-- The MIME, kept apart so purging it frees pages and status queries never read it.
CREATE TABLE message_bodies (
    message_id TEXT NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    body       BLOB NOT NULL
);

-- The queue unit: one row per recipient.
-- state: 0 = pending (queued or deferred), 1 = leased to a worker, 2 = done (final).
-- While leased, next_attempt_ms holds the lease expiry, so "due" is one condition for both states.
-- lease_token is a per-row fencing counter, incremented by every claim.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT    NOT NULL REFERENCES messages (id),
    account_id      INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    lane            INTEGER NOT NULL,
    request_ms      INTEGER NOT NULL,
    state           INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
    send_status     INTEGER NOT NULL,
    deliver_status  INTEGER NOT NULL,
    deliver_message TEXT    NOT NULL DEFAULT '',
    deliver_ms      INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_token     INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT
);

-- Claim and next-due: only non-final rows, so the index stays the size of the live queue.
CREATE INDEX deliveries_due ON deliveries (lane, next_attempt_ms) WHERE state < 2;
-- GetSendEmailStatus: one account, one request-time range, in request order.
CREATE INDEX deliveries_by_request ON deliveries (account_id, request_ms);
-- By message (status by MessageId, attempt history by recipient).
CREATE INDEX deliveries_by_message ON deliveries (message_id, recipient);

-- Every attempt's outcome, in order (attempt = deliveries.attempts after it).
CREATE TABLE delivery_attempts (
    delivery_id    INTEGER NOT NULL REFERENCES deliveries (id),
    attempt        INTEGER NOT NULL,
    at_ms          INTEGER NOT NULL,
    deliver_status INTEGER NOT NULL,
    reply          TEXT    NOT NULL,
    remote         TEXT,
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
