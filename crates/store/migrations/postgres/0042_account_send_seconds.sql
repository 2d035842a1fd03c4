-- PostgreSQL. The per-account send rate counted per second of request time, one row per (account, second) that
-- had sends, kept for a minute. `account_limits.second_ms / second_count` held only the newest second: a mail
-- whose request time fell in an earlier second but whose enqueue committed after a later one (admission work
-- between the two, or another api process) reset that counter, and the earlier second admitted more than the
-- rate. Read and written under the account's `account_limits` row lock, like the other counters.
CREATE TABLE account_send_seconds (
    account_id BIGINT NOT NULL,
    second_ms  BIGINT NOT NULL,
    sends      BIGINT NOT NULL,
    PRIMARY KEY (account_id, second_ms)
);
