-- PostgreSQL. TLS-RPT (RFC 8460): the TLS outcome of outbound SMTP sessions, counted per receiving policy domain and UTC
-- day (days since 1970-01-01), and which domain's daily report was sent.
-- One counter row per distinct (policy, result) of a day: result_type '' counts successful sessions, any other
-- value (an RFC 8460 §4.3 result type) failed ones, with the failure's details. Empty text = not known. The
-- policy's strings and MX host patterns are newline-separated.
CREATE TABLE tls_rpt_counts (
    day            BIGINT NOT NULL,
    policy_domain  TEXT    NOT NULL,
    policy_type    TEXT    NOT NULL,
    policy_strings TEXT    NOT NULL,
    mx_hosts       TEXT    NOT NULL,
    result_type    TEXT    NOT NULL,
    sending_ip     TEXT    NOT NULL,
    receiving_mx   TEXT    NOT NULL,
    receiving_ip   TEXT    NOT NULL,
    reason_code    TEXT    NOT NULL,
    sessions       BIGINT NOT NULL,
    PRIMARY KEY (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip, receiving_mx,
                 receiving_ip, reason_code)
);

-- A domain's report of a day, claimed once (by whichever node inserts first) and then marked with what became of it.
CREATE TABLE tls_rpt_reports (
    day           BIGINT NOT NULL,
    policy_domain TEXT    NOT NULL,
    report_id     TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    claimed_ms    BIGINT NOT NULL,
    PRIMARY KEY (day, policy_domain)
);
