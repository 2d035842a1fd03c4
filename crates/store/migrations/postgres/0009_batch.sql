-- Batch sending (issue 9): recipient lists and send tasks.
-- status: 1 pending (empty), 2 uploading (an import is running), 3 done.
CREATE TABLE receivers (
    id            BIGSERIAL PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id),
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    status        INTEGER NOT NULL,
    valid_count   BIGINT  NOT NULL DEFAULT 0,
    invalid_count BIGINT  NOT NULL DEFAULT 0,
    created_ms    BIGINT  NOT NULL,
    UNIQUE (account_id, name)
);

-- One address of a list. status 1 valid, 2 invalid (kept and counted, never sent to; reason says why).
CREATE TABLE receiver_details (
    id            BIGSERIAL PRIMARY KEY,
    receiver_id   BIGINT  NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    account_id    BIGINT  NOT NULL,
    email         TEXT    NOT NULL,
    template_data TEXT,
    status        INTEGER NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    created_ms    BIGINT  NOT NULL,
    UNIQUE (receiver_id, email)
);

-- The runner walks a list by id (its cursor).
CREATE INDEX receiver_details_walk ON receiver_details (receiver_id, status, id);

-- A BatchSendEmail task. cursor = the last receiver_details.id fed to the queue; it advances in the same
-- transaction as the messages it stands for. status: 1 to start, 5 sending, 6 paused for today, 7 error, 10 done.
CREATE TABLE send_tasks (
    id             BIGSERIAL PRIMARY KEY,
    account_id     BIGINT  NOT NULL REFERENCES accounts (id),
    receiver_id    BIGINT  NOT NULL,
    from_address   TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    reply_to       TEXT,
    task_type      INTEGER NOT NULL,
    template_id    BIGINT  NOT NULL,
    template_data  TEXT    NOT NULL DEFAULT '',
    unsubscribe    TEXT    NOT NULL DEFAULT '',
    ad_location    INTEGER NOT NULL DEFAULT 0,
    begin_ms       BIGINT  NOT NULL,
    interval_hours INTEGER NOT NULL DEFAULT 0,
    term_cycle     INTEGER NOT NULL DEFAULT 0,
    status         INTEGER NOT NULL,
    request_count  BIGINT  NOT NULL DEFAULT 0,
    send_count     BIGINT  NOT NULL DEFAULT 0,
    cache_count    BIGINT  NOT NULL DEFAULT 0,
    skip_count     BIGINT  NOT NULL DEFAULT 0,
    err_msg        TEXT    NOT NULL DEFAULT '',
    cursor         BIGINT  NOT NULL DEFAULT 0,
    runs           INTEGER NOT NULL DEFAULT 0,
    next_run_ms    BIGINT  NOT NULL,
    created_ms     BIGINT  NOT NULL,
    updated_ms     BIGINT  NOT NULL,
    lease_owner    TEXT,
    lease_until_ms BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX send_tasks_by_account ON send_tasks (account_id, id);
CREATE INDEX send_tasks_runnable ON send_tasks (next_run_ms) WHERE status IN (1, 5, 6);
