-- PostgreSQL. Source IPs (issue 5): the source pool ("dedicated IPs") each sending domain is assigned to, and the
-- warm-up counters of each source address, shared by every worker.

-- No row = the shared pool.
CREATE TABLE domain_source_pools (
    account_id BIGINT  NOT NULL REFERENCES accounts (id),
    domain     TEXT    NOT NULL,
    pool       TEXT    NOT NULL,
    changed_ms BIGINT  NOT NULL,
    PRIMARY KEY (account_id, domain)
);

-- One row per source address that has sent: first_day_ms is the UTC day of its first use (day 1 of its warm-up),
-- day_ms / day_count the UTC day counted and the recipients sent from it that day.
CREATE TABLE source_ip_warmup (
    ip           TEXT    PRIMARY KEY,
    first_day_ms BIGINT  NOT NULL,
    day_ms       BIGINT  NOT NULL,
    day_count    BIGINT  NOT NULL DEFAULT 0
);
