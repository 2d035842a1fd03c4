-- SQLite. Web console: the people who sign in (account_id NULL = the operator, who sees every account) and
-- their sessions (the cookie's SHA-256, never the cookie itself; acting_account_id = the account an operator
-- is looking at).
CREATE TABLE console_users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    account_id    INTEGER REFERENCES accounts (id),
    password_hash TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE console_sessions (
    token_hash        TEXT    NOT NULL PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf              TEXT    NOT NULL,
    acting_account_id INTEGER,
    created_ms        INTEGER NOT NULL,
    expires_ms        INTEGER NOT NULL
);

CREATE INDEX console_sessions_expiry ON console_sessions (expires_ms);
