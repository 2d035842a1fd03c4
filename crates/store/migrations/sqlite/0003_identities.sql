-- SQLite. Sending identities (issue 3): domains, their DKIM keys, sender addresses.
-- Numbered 0003 (not 0002) to leave room for migrations of other features developed in parallel.

-- A domain belongs to exactly one account (UNIQUE domain). checks = JSON of the last DNS check
-- (record by record, with what DNS held); reason = why it is not sendable ('' when verified).
CREATE TABLE email_identities (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    domain      TEXT    NOT NULL UNIQUE,
    dkim_option INTEGER NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    checks      TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    checked_ms  INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL
);
CREATE INDEX email_identities_by_account ON email_identities (account_id, domain);
-- The re-check schedule scans verified domains by last check time.
CREATE INDEX email_identities_recheck ON email_identities (verified, checked_ms);

-- Private keys are sealed (AES-256-GCM) under the master key by the caller.
CREATE TABLE dkim_keys (
    identity_id        INTEGER NOT NULL REFERENCES email_identities (id) ON DELETE CASCADE,
    selector           TEXT    NOT NULL,
    algorithm          TEXT    NOT NULL,
    public_key         TEXT    NOT NULL,
    private_key_sealed BLOB    NOT NULL,
    created_ms         INTEGER NOT NULL,
    PRIMARY KEY (identity_id, selector)
);

-- Sender addresses; smtp_password_hash is an argon2 PHC string (NULL = no SMTP password set).
CREATE TABLE email_senders (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts (id),
    identity_id        INTEGER NOT NULL REFERENCES email_identities (id),
    address            TEXT    NOT NULL UNIQUE,
    sender_name        TEXT    NOT NULL DEFAULT '',
    smtp_password_hash TEXT,
    created_ms         INTEGER NOT NULL
);
CREATE INDEX email_senders_by_identity ON email_senders (identity_id);
CREATE INDEX email_senders_by_account ON email_senders (account_id, address);
