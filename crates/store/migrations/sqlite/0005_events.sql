-- The event log: everything that happens to a mail after acceptance (delivered, dropped, bounce, open, click,
-- spamreport, unsubscribe, deferred). Callbacks and statistics read it. The id orders events of one message, but
-- is no resume cursor across writers: on PostgreSQL sequence order is not commit order, so a consumer that must
-- see every event keeps its own per-event state (a later migration's columns), not a high-water mark.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    message_id  TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    kind        INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    bounce_type TEXT,
    link        TEXT,
    user_agent  TEXT
);

CREATE INDEX events_by_message ON events (message_id, recipient);
CREATE INDEX events_by_account ON events (account_id, at_ms);
