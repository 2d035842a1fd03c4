-- PostgreSQL. DMARC aggregate reports (RFC 7489) received by the inbound MX at dmarc@<bounce MX host>.
-- One row per report, stored once per (reporting organisation, report id); its records in dmarc_report_rows,
-- each attributed to the account owning its From domain (records of domains nobody owns are not stored).
-- `day` is the UTC day (days since 1970-01-01) the report's date range begins.
CREATE TABLE dmarc_reports (
    id            BIGSERIAL PRIMARY KEY,
    org_name      TEXT   NOT NULL,
    org_email     TEXT   NOT NULL,
    report_id     TEXT   NOT NULL,
    policy_domain TEXT   NOT NULL,
    begin_ms      BIGINT NOT NULL,
    end_ms        BIGINT NOT NULL,
    received_ms   BIGINT NOT NULL,
    UNIQUE (org_name, report_id)
);

CREATE TABLE dmarc_report_rows (
    report       BIGINT  NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    account_id   BIGINT  NOT NULL REFERENCES accounts (id),
    domain       TEXT    NOT NULL,
    day          BIGINT  NOT NULL,
    source_ip    TEXT    NOT NULL,
    count        BIGINT  NOT NULL,
    disposition  TEXT    NOT NULL,
    dkim_aligned BOOLEAN NOT NULL,
    spf_aligned  BOOLEAN NOT NULL,
    dkim_result  TEXT    NOT NULL,
    spf_result   TEXT    NOT NULL,
    header_from  TEXT    NOT NULL
);
CREATE INDEX dmarc_report_rows_by_domain ON dmarc_report_rows (account_id, domain, day);
CREATE INDEX dmarc_report_rows_by_report ON dmarc_report_rows (report);
