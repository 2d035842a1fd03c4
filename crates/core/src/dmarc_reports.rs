//! DMARC aggregate reports: what the inbound MX does with the reports receivers send to
//! `rua=mailto:dmarc@<bounce MX host>` (or that it recognises by their attachment), and `GetDmarcReport` /
//! `mailpush dmarc report`, which read them back per UTC day and source IP.
//!
//! A report is parsed off the async threads ([`mailpush_reputation::dmarc`]: zip, gzip or XML, decompressed size
//! capped), each record attributed to the account owning its From domain (else the domain the policy was
//! published at), and stored once per (reporting organisation, report id). Records of domains no account owns are
//! dropped, and a report with none left is not stored; both are logged. A malformed report is refused (logged),
//! never bounced back.

use crate::{AccountContext, CoreError, Env};
use mailpush_model::AccountId;
use mailpush_model::ErrorCode;
use mailpush_model::clock::{DAY_MS, date_of_day, day_number, day_range};
use mailpush_reputation::dmarc::{self, AggregateReport};
use mailpush_store::{NewDmarcReport, NewDmarcRow};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Longest period one `GetDmarcReport` may span, days.
pub const MAX_DMARC_REPORT_DAYS: i64 = 90;

/// What became of one mail holding (or said to hold) an aggregate report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcReceived {
    /// Stored with this many records.
    Stored {
        /// Records stored (those of domains an account owns).
        records: usize,
    },
    /// The same organisation's report with the same id was stored before.
    Duplicate,
    /// No record is about a domain an account owns: nothing stored.
    NoOwner,
    /// The mail carries no zip, gzip or XML attachment.
    NotAReport,
    /// The attachment could not be read (malformed, oversized): nothing stored.
    Refused(String),
}

/// A `GetDmarcReport` query.
#[derive(Debug, Clone, Default)]
pub struct DmarcReportRequest {
    /// `EmailIdentity`: one of the account's sending domains.
    pub email_identity: String,
    /// `StartDate`, `YYYY-MM-DD` (UTC day), inclusive.
    pub start_date: String,
    /// `EndDate`, `YYYY-MM-DD` (UTC day), inclusive.
    pub end_date: String,
}

/// Reported mail of one UTC day from one source IP, all reporting organisations together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcSourceDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Sending IP address the receivers saw.
    pub source_ip: String,
    /// Messages.
    pub messages: i64,
    /// Messages whose DKIM passed aligned with the From domain.
    pub dkim_aligned: i64,
    /// Messages whose SPF passed aligned with the From domain.
    pub spf_aligned: i64,
    /// Messages that passed DMARC (DKIM or SPF aligned).
    pub dmarc_pass: i64,
    /// Messages the receivers quarantined.
    pub quarantined: i64,
    /// Messages the receivers rejected.
    pub rejected: i64,
    /// The organisations that reported them, sorted.
    pub reporting_orgs: Vec<String>,
}

/// The answer to [`DmarcReportRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcReport {
    /// The domain, normalised.
    pub domain: String,
    /// One entry per day and source IP with reported mail, by day then IP.
    pub days: Vec<DmarcSourceDay>,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

/// Parses and stores the aggregate report in `mail` (run by the inbound MX).
pub(crate) async fn receive_report(env: &Env, mail: &[u8]) -> Result<DmarcReceived, CoreError> {
    let owned = mail.to_vec();
    let parsed = tokio::task::spawn_blocking(move || dmarc::parse_report_mail(&owned))
        .await
        .map_err(|e| CoreError::Config(format!("DMARC report parser task: {e}")))?;
    let report = match parsed {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(DmarcReceived::NotAReport),
        Err(e) => {
            tracing::warn!(error = %e, "inbound: DMARC report refused");
            return Ok(DmarcReceived::Refused(e.to_string()));
        }
    };
    store_report(env, &report).await
}

async fn store_report(env: &Env, report: &AggregateReport) -> Result<DmarcReceived, CoreError> {
    let mut owners: HashMap<String, Option<AccountId>> = HashMap::new();
    let identities = env.store.identities();
    let mut rows = Vec::with_capacity(report.records.len());
    let mut unowned: BTreeSet<&str> = BTreeSet::new();
    let day = report.begin_secs.div_euclid(86_400);
    for r in &report.records {
        let mut attributed = None;
        for domain in [&r.header_from, &report.policy_domain] {
            let owner = match owners.get(domain) {
                Some(o) => *o,
                None => {
                    let o = identities.identity_owner(domain).await?;
                    owners.insert(domain.clone(), o);
                    o
                }
            };
            if let Some(account) = owner {
                attributed = Some((account, domain.clone()));
                break;
            }
        }
        let Some((account_id, domain)) = attributed else {
            unowned.insert(&r.header_from);
            continue;
        };
        rows.push(NewDmarcRow {
            account_id,
            domain,
            day,
            source_ip: r.source_ip.to_string(),
            count: r.count,
            disposition: r.disposition.clone(),
            dkim_aligned: r.dkim_aligned,
            spf_aligned: r.spf_aligned,
            dkim_result: r.dkim_result.clone(),
            spf_result: r.spf_result.clone(),
            header_from: r.header_from.clone(),
        });
    }
    if !unowned.is_empty() {
        tracing::info!(
            org = report.org_name,
            report_id = report.report_id,
            domains = ?unowned,
            "inbound: DMARC report records about domains no account owns ignored"
        );
    }
    if rows.is_empty() {
        tracing::info!(
            org = report.org_name,
            report_id = report.report_id,
            policy_domain = report.policy_domain,
            "inbound: DMARC report about no account's domain; ignored"
        );
        return Ok(DmarcReceived::NoOwner);
    }
    let records = rows.len();
    let new = NewDmarcReport {
        org_name: report.org_name.clone(),
        org_email: report.org_email.clone(),
        report_id: report.report_id.clone(),
        policy_domain: report.policy_domain.clone(),
        begin_ms: report.begin_secs.saturating_mul(1000),
        end_ms: report.end_secs.saturating_mul(1000),
        received_ms: env.clock.now_ms(),
        rows,
    };
    let stored = env.store.dmarc_reports().record(&new).await?;
    tracing::info!(
        org = report.org_name,
        report_id = report.report_id,
        policy_domain = report.policy_domain,
        records,
        stored,
        "inbound: DMARC aggregate report"
    );
    Ok(if stored {
        DmarcReceived::Stored { records }
    } else {
        DmarcReceived::Duplicate
    })
}

/// `GetDmarcReport` and the operator's `dmarc report`.
pub struct DmarcReports {
    pub(crate) env: Env,
}

impl DmarcReports {
    /// The account's reported mail from one of its domains per UTC day and source IP.
    pub(crate) async fn report(
        &self,
        account: &AccountContext,
        req: &DmarcReportRequest,
    ) -> Result<DmarcReport, CoreError> {
        let account = account.id;
        let domain = mailpush_identity::normalize_domain(req.email_identity.trim())
            .map_err(|e| refuse(ErrorCode::InvalidParameterValue, format!("EmailIdentity: {e}")))?;
        let (first_day, last_day) = day_span(&req.start_date, &req.end_date)?;
        if self.env.store.identities().identity(account, &domain).await?.is_none() {
            return Err(refuse(
                ErrorCode::InvalidParameterValueNotExistDomain,
                format!("EmailIdentity {domain} has not been created by this account"),
            ));
        }
        let rows = self
            .env
            .store
            .dmarc_reports()
            .daily(account, &domain, first_day, last_day)
            .await?;
        let mut by_key: BTreeMap<(i64, String), (DmarcSourceDay, BTreeSet<String>)> = BTreeMap::new();
        for r in rows {
            let (d, orgs) = by_key.entry((r.day, r.source_ip.clone())).or_insert_with(|| {
                (
                    DmarcSourceDay {
                        date: date_of_day(r.day),
                        source_ip: r.source_ip.clone(),
                        ..Default::default()
                    },
                    BTreeSet::new(),
                )
            });
            d.messages += r.messages;
            d.dkim_aligned += r.dkim_aligned;
            d.spf_aligned += r.spf_aligned;
            d.dmarc_pass += r.dmarc_pass;
            d.quarantined += r.quarantined;
            d.rejected += r.rejected;
            orgs.insert(r.org_name);
        }
        let days = by_key
            .into_values()
            .map(|(mut d, orgs)| {
                d.reporting_orgs = orgs.into_iter().collect();
                d
            })
            .collect();
        Ok(DmarcReport { domain, days })
    }
}

/// The UTC day numbers of an inclusive `StartDate`..`EndDate`, checked as `GetStatisticsReport` checks them.
fn day_span(start: &str, end: &str) -> Result<(i64, i64), CoreError> {
    let bad = |field: &str, raw: &str| {
        refuse(
            ErrorCode::InvalidParameterValueWrongDate,
            format!("{field} {raw:?} must be a date like 2026-11-26"),
        )
    };
    let (from_ms, _) = day_range(start.trim()).ok_or_else(|| bad("StartDate", start))?;
    let (_, to_ms) = day_range(end.trim()).ok_or_else(|| bad("EndDate", end))?;
    if to_ms <= from_ms {
        return Err(refuse(
            ErrorCode::InvalidParameterValueWrongDate,
            format!("EndDate {end} is before StartDate {start}"),
        ));
    }
    if (to_ms - from_ms) / DAY_MS > MAX_DMARC_REPORT_DAYS {
        return Err(refuse(
            ErrorCode::FailedOperationNotSupportDate,
            format!("a report spans at most {MAX_DMARC_REPORT_DAYS} days"),
        ));
    }
    // Day numbers name dates whatever the calendar zone: the rows' days are the reports' UTC dates.
    Ok((day_number(from_ms), day_number(to_ms - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_spans_are_checked_like_statistics_reports() {
        let code = |r: Result<(i64, i64), CoreError>| match r {
            Err(CoreError::Refused(e)) => Some(e.code),
            _ => None,
        };
        let (a, b) = day_span("2025-12-06", "2025-12-07").unwrap();
        assert_eq!((a, b), (20_428, 20_429));
        assert_eq!(
            code(day_span("2025-13-01", "2025-12-07")),
            Some(ErrorCode::InvalidParameterValueWrongDate)
        );
        assert_eq!(
            code(day_span("2025-12-07", "2025-12-06")),
            Some(ErrorCode::InvalidParameterValueWrongDate)
        );
        assert_eq!(
            code(day_span("2025-01-01", "2025-12-06")),
            Some(ErrorCode::FailedOperationNotSupportDate)
        );
    }
}
