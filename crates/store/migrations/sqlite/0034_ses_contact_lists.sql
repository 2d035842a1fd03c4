-- SQLite. SES v2 contact lists with their topics, and their contacts with their topic preferences.
-- topics: a JSON array of {TopicName, DisplayName, Description, DefaultSubscriptionStatus}.
CREATE TABLE ses_contact_lists (
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    topics      TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- preferences: a JSON object of topic names to OPT_IN / OPT_OUT (topics not named follow their default).
-- unsubscribe_all: 1 or 0. attributes: AttributesData as given.
CREATE TABLE ses_contacts (
    account_id      INTEGER NOT NULL,
    list_name       TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    preferences     TEXT    NOT NULL,
    unsubscribe_all INTEGER NOT NULL,
    attributes      TEXT    NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (account_id, list_name, email)
);
