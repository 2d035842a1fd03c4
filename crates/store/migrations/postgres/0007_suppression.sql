-- Suppression (issue 6 part A). The global bounce blacklist: an address that hard-bounced is refused for every
-- account while `created_ms` is within the configured period (blacklist_days). One row per (address, account
-- whose mail bounced), so an account lists and deletes only the entries its own mail caused, while admission
-- looks the address up across all accounts (the primary key's prefix).
CREATE TABLE bounce_blacklist (
    address     TEXT    NOT NULL,
    account_id  BIGINT  NOT NULL,
    created_ms  BIGINT  NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (address, account_id)
);
CREATE INDEX bounce_blacklist_by_account ON bounce_blacklist (account_id, created_ms);

-- Per-account custom blacklist (CreateCustomBlacklist …): expire_ms NULL = never expires.
CREATE TABLE custom_blacklist (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT  NOT NULL,
    address     TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL,
    expire_ms   BIGINT,
    UNIQUE (account_id, address)
);
