-- SQLite. Tags of sending domains (Tencent's TagList on CreateEmailIdentity): stored, returned by
-- GetEmailIdentity / ListEmailIdentities and filterable there.
CREATE TABLE identity_tags (
    account_id INTEGER NOT NULL,
    domain     TEXT    NOT NULL,
    tag_key    TEXT    NOT NULL,
    tag_value  TEXT    NOT NULL,
    PRIMARY KEY (account_id, domain, tag_key)
);

-- SES v2 front end: templates are named (a name per account) and carry a Subject; the body lives in the
-- account's ordinary template (reviewed as any other), whose id this maps to.
CREATE TABLE sesv2_templates (
    account_id  INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    template_id INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- SES v2 suppression reasons (BOUNCE / COMPLAINT) of addresses put on the account's suppression list; the
-- suppression itself is the account's custom blacklist, which admission screens.
CREATE TABLE sesv2_suppression_reasons (
    account_id INTEGER NOT NULL,
    address    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    PRIMARY KEY (account_id, address)
);
