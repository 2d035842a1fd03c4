-- Templates (issue 4) and the account permissions that go with them.

-- Custom (`Simple`) content needs a permission, as on Tencent SES; links in templates need another.
ALTER TABLE accounts
    ADD COLUMN allow_simple_content BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN allow_links          BOOLEAN NOT NULL DEFAULT FALSE;

-- status: 0 approved, 1 under review, 2 rejected (Tencent's TemplateStatus).
-- version: incremented by every content edit; (id, version) keys the compiled-template cache.
-- Identity columns never reuse ids, so a cache key can never point at another template.
CREATE TABLE templates (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (id),
    name          TEXT    NOT NULL,
    category      TEXT    NOT NULL,
    html          TEXT,
    text          TEXT,
    status        INTEGER NOT NULL CHECK (status IN (0, 1, 2)),
    review_reason TEXT    NOT NULL DEFAULT '',
    version       BIGINT  NOT NULL,
    created_ms    BIGINT  NOT NULL,
    updated_ms    BIGINT  NOT NULL
);

CREATE INDEX templates_by_account ON templates (account_id, id);
-- The operator's manual review queue.
CREATE INDEX templates_pending ON templates (id) WHERE status = 1;
