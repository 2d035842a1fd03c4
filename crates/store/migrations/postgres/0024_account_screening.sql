-- PostgreSQL. Per-account content screening at admission (Simple and SMTP mail): the lowest quality score
-- (0-10, mail-tester's sense) accepted, NULL = no score threshold; and whether the template review's rules
-- apply to custom content too.
CREATE TABLE account_screening (
    account_id     BIGINT PRIMARY KEY REFERENCES accounts (id),
    min_score      DOUBLE PRECISION,
    review_content BOOLEAN NOT NULL DEFAULT FALSE
);
