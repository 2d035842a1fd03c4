-- SQLite. Per-account content screening at admission (Simple and SMTP mail): the lowest quality score
-- (0-10, mail-tester's sense) accepted, NULL = no score threshold; and whether the template review's rules
-- apply to custom content too.
CREATE TABLE account_screening (
    account_id     INTEGER PRIMARY KEY REFERENCES accounts (id),
    min_score      REAL,
    review_content INTEGER NOT NULL DEFAULT 0 CHECK (review_content IN (0, 1))
);
