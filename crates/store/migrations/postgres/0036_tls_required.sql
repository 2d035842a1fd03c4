-- PostgreSQL. Transport security of outbound mail: "TLS required" per account and per sender address, and what
-- each message demands of its connection, decided when it is accepted (mailpush_model::TlsRequirement: 0 = the
-- process's outbound_tls, 1 = verified TLS, 2 = REQUIRETLS as submitted over SMTP, RFC 8689).
ALTER TABLE accounts ADD COLUMN require_tls BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE email_senders ADD COLUMN require_tls BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN tls_requirement INTEGER NOT NULL DEFAULT 0;
