-- Templates (issue 4) and the account permissions that go with them.

-- Custom (`Simple`) content needs a permission, as on Tencent SES; links in templates need another.
ALTER TABLE accounts ADD COLUMN allow_simple_content INTEGER NOT NULL DEFAULT 0 CHECK (allow_simple_content IN (0, 1));
ALTER TABLE accounts ADD COLUMN allow_links          INTEGER NOT NULL DEFAULT 0 CHECK (allow_links IN (0, 1));

-- status: 0 approved, 1 under review, 2 rejected (Tencent's TemplateStatus).
-- version: incremented by every content edit; (id, version) keys the compiled-template cache.
-- AUTOINCREMENT: ids are never reused after a delete, so a cache key can never point at another template.
CREATE TABLE templates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    name          TEXT    NOT NULL,
    category      TEXT    NOT NULL,
    html          TEXT,
    text          TEXT,
    status        INTEGER NOT NULL CHECK (status IN (0, 1, 2)),
    review_reason TEXT    NOT NULL DEFAULT '',
    version       INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE INDEX templates_by_account ON templates (account_id, id);
-- The operator's manual review queue.
CREATE INDEX templates_pending ON templates (id) WHERE status = 1;
