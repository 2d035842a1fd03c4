//! `GetDmarcReport` (mailpush extension): the DMARC aggregate reports received about one of the account's
//! domains, per UTC day and source IP.

use super::parse;
use mailpush_core::{AccountContext, Mailpush};
use mailpush_core::{DmarcReportRequest, DmarcSourceDay};
use mailpush_model::ApiError;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DmarcReportParams {
    email_identity: String,
    start_date: String,
    end_date: String,
}

/// The wire form of one day and source IP.
fn source_day(d: &DmarcSourceDay) -> Value {
    json!({
        "Date": d.date,
        "SourceIp": d.source_ip,
        "MessageCount": d.messages,
        "DkimPassCount": d.dkim_aligned,
        "DkimFailCount": d.messages - d.dkim_aligned,
        "SpfPassCount": d.spf_aligned,
        "SpfFailCount": d.messages - d.spf_aligned,
        "DmarcPassCount": d.dmarc_pass,
        "DmarcFailCount": d.messages - d.dmarc_pass,
        "QuarantineCount": d.quarantined,
        "RejectCount": d.rejected,
        "ReportingOrgs": d.reporting_orgs,
    })
}

pub(super) async fn get_dmarc_report(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: DmarcReportParams = parse(params)?;
    let report = core
        .dmarc_report(
            ctx,
            &DmarcReportRequest {
                email_identity: p.email_identity,
                start_date: p.start_date,
                end_date: p.end_date,
            },
        )
        .await?;
    let data: Vec<Value> = report.days.iter().map(source_day).collect();
    Ok(json!({
        "EmailIdentity": report.domain,
        "TotalCount": data.len(),
        "Data": data,
    }))
}
