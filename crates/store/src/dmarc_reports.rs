//! DMARC aggregate reports (`dmarc_reports`, `dmarc_report_rows`, migration 0032): what receivers reported about
//! the mail of the accounts' domains. A report is stored once per (reporting organisation, report id), its rows in
//! the same transaction; `GetDmarcReport` reads them summed per UTC day, source IP and reporting organisation.

use crate::sql::{Pool, builder, query};
use crate::{AccountId, Store, StoreError};

/// Rows inserted per statement.
const ROWS_PER_STATEMENT: usize = 500;

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDmarcReport {
    /// Reporting organisation (`org_name`).
    pub org_name: String,
    /// Its contact address (`email`; may be empty).
    pub org_email: String,
    /// The report's id, unique per organisation.
    pub report_id: String,
    /// The domain the policy was published at.
    pub policy_domain: String,
    /// Start of the reported period, Unix ms.
    pub begin_ms: i64,
    /// End of the reported period, Unix ms.
    pub end_ms: i64,
    /// When the inbound MX received it, Unix ms.
    pub received_ms: i64,
    /// Its records, each attributed to an account.
    pub rows: Vec<NewDmarcRow>,
}

/// One record of a report, attributed to the account owning its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDmarcRow {
    /// The account owning `domain`.
    pub account_id: AccountId,
    /// The account's sending domain the record is about (lowercase).
    pub domain: String,
    /// UTC day (days since 1970-01-01) the row is counted on.
    pub day: i64,
    /// The sending IP address the receiver saw.
    pub source_ip: String,
    /// Messages.
    pub count: i64,
    /// What the receiver did: `none`, `quarantine`, `reject`.
    pub disposition: String,
    /// DKIM passed aligned with the From domain.
    pub dkim_aligned: bool,
    /// SPF passed aligned with the From domain.
    pub spf_aligned: bool,
    /// Raw DKIM result (`pass`, `fail`, …; empty when none).
    pub dkim_result: String,
    /// Raw SPF result (`pass`, `softfail`, …; empty when none).
    pub spf_result: String,
    /// The `From` header's domain.
    pub header_from: String,
}

/// The counts of one UTC day, source IP and reporting organisation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DmarcDailyRow {
    /// UTC day, days since 1970-01-01.
    pub day: i64,
    /// Sending IP address.
    pub source_ip: String,
    /// Reporting organisation.
    pub org_name: String,
    /// Messages.
    pub messages: i64,
    /// Messages whose DKIM passed aligned.
    pub dkim_aligned: i64,
    /// Messages whose SPF passed aligned.
    pub spf_aligned: i64,
    /// Messages that passed DMARC (DKIM or SPF aligned).
    pub dmarc_pass: i64,
    /// Messages the receiver quarantined.
    pub quarantined: i64,
    /// Messages the receiver rejected.
    pub rejected: i64,
}

/// DMARC aggregate reports ([`Store::dmarc_reports`]).
#[derive(Debug, Clone, Copy)]
pub struct DmarcReports<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// DMARC aggregate reports: record one, read an account's domain per day.
    pub fn dmarc_reports(&self) -> DmarcReports<'_> {
        DmarcReports { store: self }
    }
}

impl DmarcReports<'_> {
    /// Stores a report and its rows in one transaction; `false` (nothing written) when a report of the same
    /// organisation and id is stored already.
    pub async fn record(self, report: &NewDmarcReport) -> Result<bool, StoreError> {
        self.store.guarded(record(self.store.writer(), report)).await
    }

    /// The account's reported mail from `domain` on UTC days `first_day..=last_day`, summed per day, source IP
    /// and reporting organisation, ordered by day, source IP and organisation.
    pub async fn daily(
        self,
        account: AccountId,
        domain: &str,
        first_day: i64,
        last_day: i64,
    ) -> Result<Vec<DmarcDailyRow>, StoreError> {
        query(
            "SELECT r.day, r.source_ip, d.org_name, \
             CAST(SUM(r.count) AS BIGINT) AS messages, \
             CAST(SUM(CASE WHEN r.dkim_aligned THEN r.count ELSE 0 END) AS BIGINT) AS dkim_aligned, \
             CAST(SUM(CASE WHEN r.spf_aligned THEN r.count ELSE 0 END) AS BIGINT) AS spf_aligned, \
             CAST(SUM(CASE WHEN r.dkim_aligned OR r.spf_aligned THEN r.count ELSE 0 END) AS BIGINT) AS dmarc_pass, \
             CAST(SUM(CASE WHEN r.disposition = 'quarantine' THEN r.count ELSE 0 END) AS BIGINT) AS quarantined, \
             CAST(SUM(CASE WHEN r.disposition = 'reject' THEN r.count ELSE 0 END) AS BIGINT) AS rejected \
             FROM dmarc_report_rows r JOIN dmarc_reports d ON d.id = r.report \
             WHERE r.account_id = $1 AND r.domain = $2 AND r.day >= $3 AND r.day <= $4 \
             GROUP BY r.day, r.source_ip, d.org_name ORDER BY r.day, r.source_ip, d.org_name",
        )
        .bind(account)
        .bind(domain)
        .bind(first_day)
        .bind(last_day)
        .fetch_all(self.store.guarded_reader())
        .await
    }
}

/// [`DmarcReports::record`]'s transaction.
async fn record(pool: Pool<'_>, r: &NewDmarcReport) -> Result<bool, StoreError> {
    let mut tx = pool.begin_write().await?;
    let mut conn = tx.conn();
    let id: Option<i64> = query(
        "INSERT INTO dmarc_reports (org_name, org_email, report_id, policy_domain, begin_ms, end_ms, received_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_name, report_id) DO NOTHING RETURNING id",
    )
    .bind(&r.org_name)
    .bind(&r.org_email)
    .bind(&r.report_id)
    .bind(&r.policy_domain)
    .bind(r.begin_ms)
    .bind(r.end_ms)
    .bind(r.received_ms)
    .scalar_optional(&mut conn)
    .await?;
    let Some(id) = id else {
        return Ok(false);
    };
    for chunk in r.rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb = builder(
            "INSERT INTO dmarc_report_rows (report, account_id, domain, day, source_ip, count, disposition, \
             dkim_aligned, spf_aligned, dkim_result, spf_result, header_from) ",
        );
        qb.push_values(chunk, |b, row| {
            b.push_bind(id)
                .push_bind(row.account_id)
                .push_bind(&row.domain)
                .push_bind(row.day)
                .push_bind(&row.source_ip)
                .push_bind(row.count)
                .push_bind(&row.disposition)
                .push_bind(row.dkim_aligned)
                .push_bind(row.spf_aligned)
                .push_bind(&row.dkim_result)
                .push_bind(&row.spf_result)
                .push_bind(&row.header_from);
        });
        qb.build().execute(&mut conn).await?;
    }
    tx.commit().await?;
    Ok(true)
}
