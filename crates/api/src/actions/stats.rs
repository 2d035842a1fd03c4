//! Statistics and feedback actions: GetStatisticsReport and the four *AddressUnsubscribeConfig actions (field
//! names and types from the SDK's `models.py`), GetAbuseReport, and the mailpush extension ListReputationWarnings.

use super::parse;
use super::suppression::datetime;
use mailpush_core::StatisticsRequest;
use mailpush_core::{AbuseQuery, MAX_ABUSE_LIMIT};
use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::stats::StatCounters;
use mailpush_model::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

fn volume(date: Option<&str>, c: &StatCounters) -> Value {
    json!({
        // The whole period has no one date: empty, never null.
        "SendDate": date.unwrap_or_default(),
        "RequestCount": c.requested,
        "AcceptedCount": c.accepted,
        "DeliveredCount": c.delivered,
        "OpenedCount": c.opened,
        "ClickedCount": c.clicked,
        "BounceCount": c.bounced,
        "UnsubscribeCount": c.unsubscribed,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct StatisticsParams {
    start_date: String,
    end_date: String,
    domain: Option<String>,
    receiving_mailbox_type: Option<String>,
}

pub(super) async fn statistics(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: StatisticsParams = parse(params)?;
    let report = core
        .statistics_report(
            ctx,
            &StatisticsRequest {
                start_date: p.start_date,
                end_date: p.end_date,
                domain: p.domain,
                receiving_mailbox_type: p.receiving_mailbox_type,
            },
        )
        .await?;
    let daily: Vec<Value> = report.daily.iter().map(|(d, c)| volume(Some(d), c)).collect();
    Ok(json!({
        "DailyVolumes": daily,
        "OverallVolume": volume(None, &report.overall),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct AbuseParams {
    start_time: String,
    end_time: String,
    offset: Option<i64>,
    limit: Option<i64>,
    from_domain: Option<String>,
    from_address: Option<String>,
    mta: Option<String>,
    to_address: Option<String>,
    template_id: Option<String>,
}

/// `GetAbuseReport` with the SDK's `AbuseReport` model. `SourceIp` lists the sending domain's source pool
/// (comma-separated; empty when the operating system chooses the source), `BulkId` is empty (mailpush has no
/// bulk ids), `InsertTime`, `ComplainTime` and `AbuseTime` are when the complaint was recorded.
pub(super) async fn abuse(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: AbuseParams = parse(params)?;
    let query = AbuseQuery {
        start_time: p.start_time,
        end_time: p.end_time,
        from_domain: p.from_domain,
        from_address: p.from_address,
        mta: p.mta,
        to_address: p.to_address,
        template_id: p.template_id,
        offset: p.offset.unwrap_or(0),
        limit: p.limit.unwrap_or(MAX_ABUSE_LIMIT),
    };
    let (rows, total) = core.abuse_reports(ctx, &query).await?;
    let mut data = Vec::with_capacity(rows.len());
    for r in &rows {
        let from_domain = domain_of(&r.from_address);
        let source_ips = core.identity_send_ips(ctx, &from_domain).await?;
        let complained = datetime(r.complained_ms);
        data.push(json!({
            "DeliverTime": datetime(r.deliver_ms.unwrap_or(r.request_ms)),
            "OriginalMailFrom": r.from_address,
            "OriginalRcptTo": r.recipient,
            "FromDomain": from_domain,
            "ComplainTime": complained,
            "Mta": domain_of(&r.recipient),
            "SourceIp": source_ips.join(","),
            "InsertTime": complained,
            "TemplateId": if r.template_id > 0 { r.template_id.to_string() } else { String::new() },
            "BulkId": "",
            "MessageId": r.message_id.as_str(),
            "AbuseTime": complained,
            "Subject": r.subject,
        }));
    }
    Ok(json!({ "Data": data, "TotalCount": total }))
}

/// The domain of an address, lowercase ("" without one).
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ConfigParams {
    address: String,
    unsubscribe_config: String,
    status: Option<i64>,
}

pub(super) async fn create_config(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: ConfigParams = parse(params)?;
    core.create_unsubscribe_config(ctx, &p.address, &p.unsubscribe_config, p.status)
        .await?;
    Ok(json!({}))
}

pub(super) async fn update_config(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: ConfigParams = parse(params)?;
    core.update_unsubscribe_config(ctx, &p.address, &p.unsubscribe_config, p.status)
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DeleteConfigParams {
    address: String,
}

pub(super) async fn delete_config(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: DeleteConfigParams = parse(params)?;
    core.delete_unsubscribe_config(ctx, &p.address).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ListConfigParams {
    offset: Option<i64>,
    /// The SDK types it as a string; numbers are accepted too.
    limit: Option<Value>,
}

pub(super) async fn list_configs(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: ListConfigParams = parse(params)?;
    let limit = match &p.limit {
        None | Some(Value::Null) => 20,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
        Some(Value::String(s)) if s.trim().is_empty() => 20,
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("Limit {s:?} must be a number"),
            )
        })?,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("Limit: expected a number, got {other}"),
            ));
        }
    };
    let (rows, total) = core.list_unsubscribe_configs(ctx, p.offset.unwrap_or(0), limit).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "Address": r.address,
                "UnsubscribeConfig": r.unsubscribe_config,
                "Status": r.status,
            })
        })
        .collect();
    Ok(json!({ "AddressUnsubscribeConfigList": list, "Total": total }))
}

pub(super) async fn warnings(core: &Mailpush, ctx: &AccountContext) -> Result<Value, ApiError> {
    let rows = core.reputation_warnings(ctx).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|w| {
            json!({
                "Kind": w.kind,
                "BounceRate": w.rate,
                "Threshold": w.threshold,
                "DeliveredCount": w.delivered,
                "BounceCount": w.bounced,
                "RaisedTime": datetime(w.raised_ms),
                "ClearedTime": w.cleared_ms.map(datetime),
                "InForce": w.cleared_ms.is_none(),
            })
        })
        .collect();
    Ok(json!({ "Warnings": list }))
}
