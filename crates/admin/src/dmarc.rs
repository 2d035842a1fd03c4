//! `mailpush dmarc report`: the DMARC aggregate reports received about one of an account's domains, per UTC day
//! and source IP, as `GetDmarcReport` answers them.

use crate::table::render;
use crate::{AdminError, Report, account_context};
use mailpush_core::DmarcReportRequest;
use mailpush_core::Mailpush;
use serde_json::json;

/// Which days to show: one, or an inclusive range (`to` defaults to today, `from` to six days before `to`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Days {
    /// `--date`: this UTC day only.
    pub date: Option<String>,
    /// `--from`: the first UTC day.
    pub from: Option<String>,
    /// `--to`: the last UTC day.
    pub to: Option<String>,
}

/// `account`'s DMARC aggregate report results for sending domain `domain` over `days` (UTC, `YYYY-MM-DD`).
pub async fn report(core: &Mailpush, account: &str, domain: &str, days: &Days) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let (start, end) = match days {
        Days {
            date: Some(d),
            from: None,
            to: None,
        } => (d.clone(), d.clone()),
        Days { date: Some(_), .. } => {
            return Err(AdminError::Invalid(
                "--date cannot be combined with --from or --to".to_string(),
            ));
        }
        Days { from, to, .. } => {
            let end = to
                .clone()
                .unwrap_or_else(|| mailpush_model::clock::date_of(core.now_ms()));
            let start = match from {
                Some(s) => s.clone(),
                None => {
                    let end_ms = mailpush_model::clock::day_range(&end)
                        .map(|(from, _)| from)
                        .ok_or_else(|| AdminError::Invalid(format!("{end} is not a date like 2026-11-26")))?;
                    mailpush_model::clock::date_of(end_ms - 6 * 86_400_000)
                }
            };
            (start, end)
        }
    };
    let report = core
        .dmarc_report(
            &ctx,
            &DmarcReportRequest {
                email_identity: domain.to_string(),
                start_date: start.clone(),
                end_date: end.clone(),
            },
        )
        .await?;
    let rows: Vec<Vec<String>> = report
        .days
        .iter()
        .map(|d| {
            vec![
                d.date.clone(),
                d.source_ip.clone(),
                d.messages.to_string(),
                d.dkim_aligned.to_string(),
                d.spf_aligned.to_string(),
                d.dmarc_pass.to_string(),
                (d.messages - d.dmarc_pass).to_string(),
                d.reporting_orgs.join(","),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        format!("no DMARC reports about {} from {start} to {end}", report.domain)
    } else {
        render(
            &[
                "DAY",
                "SOURCE IP",
                "MESSAGES",
                "DKIM PASS",
                "SPF PASS",
                "DMARC PASS",
                "DMARC FAIL",
                "REPORTED BY",
            ],
            &rows,
            12,
        )
    };
    let data: Vec<serde_json::Value> = report
        .days
        .iter()
        .map(|d| {
            json!({
                "Date": d.date, "SourceIp": d.source_ip, "MessageCount": d.messages,
                "DkimPassCount": d.dkim_aligned, "SpfPassCount": d.spf_aligned, "DmarcPassCount": d.dmarc_pass,
                "DmarcFailCount": d.messages - d.dmarc_pass, "QuarantineCount": d.quarantined,
                "RejectCount": d.rejected, "ReportingOrgs": d.reporting_orgs,
            })
        })
        .collect();
    Ok(Report::new(
        text,
        json!({ "EmailIdentity": report.domain, "StartDate": start, "EndDate": end, "Data": data }),
    ))
}
