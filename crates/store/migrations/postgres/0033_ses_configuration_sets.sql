-- PostgreSQL. SES v2 configuration sets, their event destinations (HTTP(S) endpoints) and the configuration set and
-- message tags (EmailTags) of the mail sent with one. The message row is written before the message is enqueued,
-- so it has no foreign key to messages.
CREATE TABLE ses_configuration_sets (
    account_id BIGINT  NOT NULL REFERENCES accounts (id),
    name       TEXT    NOT NULL,
    created_ms BIGINT  NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- event_types: the MatchingEventTypes, comma-separated (SEND,DELIVERY,…). enabled: 1 or 0.
CREATE TABLE ses_event_destinations (
    account_id  BIGINT  NOT NULL,
    set_name    TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    enabled     BIGINT  NOT NULL,
    url         TEXT    NOT NULL,
    event_types TEXT    NOT NULL,
    PRIMARY KEY (account_id, set_name, name)
);

-- tags: a JSON object of tag names to values.
CREATE TABLE ses_message_tags (
    message_id TEXT    NOT NULL PRIMARY KEY,
    account_id BIGINT  NOT NULL,
    set_name   TEXT    NOT NULL,
    tags       TEXT    NOT NULL
);
