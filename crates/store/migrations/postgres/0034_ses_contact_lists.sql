-- PostgreSQL. SES v2 contact lists with their topics, and their contacts with their topic preferences.
-- topics: a JSON array of {TopicName, DisplayName, Description, DefaultSubscriptionStatus}.
CREATE TABLE ses_contact_lists (
    account_id  BIGINT  NOT NULL REFERENCES accounts (id),
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    topics      TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL,
    updated_ms  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- preferences: a JSON object of topic names to OPT_IN / OPT_OUT (topics not named follow their default).
-- unsubscribe_all: 1 or 0. attributes: AttributesData as given.
CREATE TABLE ses_contacts (
    account_id      BIGINT  NOT NULL,
    list_name       TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    preferences     TEXT    NOT NULL,
    unsubscribe_all BIGINT  NOT NULL,
    attributes      TEXT    NOT NULL,
    created_ms      BIGINT  NOT NULL,
    updated_ms      BIGINT  NOT NULL,
    PRIMARY KEY (account_id, list_name, email)
);
