-- SQLite. Readiness write probe: each process upserts its one row, proving the database takes writes
-- (a full disk refuses even this).
CREATE TABLE health_probe (
    node  TEXT    PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
