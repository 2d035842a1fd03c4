-- SQLite. The return-path (custom MAIL FROM) domain of a sending domain: '' = bounce.<domain>, the default of
-- domains created from now on. Domains that exist already verified with the MX and SPF at their apex keep that
-- scheme (mail_from_domain = domain), so an upgrade changes none of their records.
ALTER TABLE email_identities ADD COLUMN mail_from_domain TEXT NOT NULL DEFAULT '';
UPDATE email_identities SET mail_from_domain = domain;
