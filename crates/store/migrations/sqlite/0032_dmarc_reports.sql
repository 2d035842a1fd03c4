-- SQLite. DMARC aggregate reports (RFC 7489) received by the inbound MX at dmarc@<bounce MX host>.
-- One row per report, stored once per (reporting organisation, report id); its records in dmarc_report_rows,
-- each attributed to the account owning its From domain (records of domains nobody owns are not stored).
-- `day` is the UTC day (days since 1970-01-01) the report's date range begins.
CREATE TABLE dmarc_reports (
    id            INTEGER PRIMARY KEY,
    org_name      TEXT    NOT NULL,
    org_email     TEXT    NOT NULL,
    report_id     TEXT    NOT NULL,
    policy_domain TEXT    NOT NULL,
    begin_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    UNIQUE (org_name, report_id)
);

CREATE TABLE dmarc_report_rows (
    report       INTEGER NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    domain       TEXT    NOT NULL,
    day          INTEGER NOT NULL,
    source_ip    TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    disposition  TEXT    NOT NULL,
    dkim_aligned BOOLEAN NOT NULL,
    spf_aligned  BOOLEAN NOT NULL,
    dkim_result  TEXT    NOT NULL,
    spf_result   TEXT    NOT NULL,
    header_from  TEXT    NOT NULL
);
CREATE INDEX dmarc_report_rows_by_domain ON dmarc_report_rows (account_id, domain, day);
CREATE INDEX dmarc_report_rows_by_report ON dmarc_report_rows (report);
