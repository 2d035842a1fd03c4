-- SQLite. An account's API keys (SecretId + sealed SecretKey), up to two active at once so a key can be replaced
-- without downtime. Authentication looks SecretIds up here only; accounts.secret_id / secret_key_sealed stay
-- as the account's first key, no longer consulted. Every account's current key moves in as its one active key.
-- last_used_day: UTC day number a request last presented the key; revoked_ms: NULL = active.
CREATE TABLE account_api_keys (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts (id),
    secret_id         TEXT    NOT NULL UNIQUE,
    secret_key_sealed BLOB    NOT NULL,
    created_ms        INTEGER NOT NULL,
    last_used_day     INTEGER,
    revoked_ms        INTEGER
);
CREATE INDEX account_api_keys_account ON account_api_keys (account_id);
INSERT INTO account_api_keys (account_id, secret_id, secret_key_sealed, created_ms)
    SELECT id, secret_id, secret_key_sealed, created_ms FROM accounts;
