//! Suppression actions: ListBlackEmailAddress, DeleteBlackList (the global bounce blacklist, the caller's rows)
//! and CreateCustomBlacklist, ListCustomBlacklist, UpdateCustomBlackList, DeleteCustomBlackList (the account's own
//! list). Field names and types from the SDK's `models.py`.

use super::parse;
use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::ApiError;
use serde::Deserialize;
use serde_json::{Value, json};

/// `YYYY-MM-DD HH:MM:SS` in the calendar zone (`time_zone`), as Tencent shows times.
pub(crate) fn datetime(ms: i64) -> String {
    mailpush_model::clock::datetime_of(ms)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ListBlackParams {
    start_date: String,
    end_date: String,
    limit: i64,
    offset: i64,
    email_address: Option<String>,
    /// Deprecated in the SDK; accepted and ignored.
    #[serde(rename = "TaskID")]
    #[allow(dead_code)]
    task_id: Option<String>,
}

pub(super) async fn list_black(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: ListBlackParams = parse(params)?;
    let (rows, total) = core
        .list_black_email_address(
            ctx,
            &p.start_date,
            &p.end_date,
            p.email_address.as_deref(),
            p.offset,
            p.limit,
        )
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| json!({"BounceTime": datetime(r.created_ms), "EmailAddress": r.address, "IspDesc": r.reason}))
        .collect();
    Ok(json!({"BlackList": list, "TotalCount": total}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DeleteBlackParams {
    email_address_list: Vec<String>,
}

pub(super) async fn delete_black(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: DeleteBlackParams = parse(params)?;
    core.delete_black_list(ctx, &p.email_address_list).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateCustomParams {
    emails: Vec<String>,
    expire_date: Option<String>,
}

pub(super) async fn create_custom(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: CreateCustomParams = parse(params)?;
    let c = core
        .create_custom_blacklist(ctx, &p.emails, p.expire_date.as_deref())
        .await?;
    Ok(json!({
        "TotalCount": c.total,
        "ValidCount": c.valid,
        "TooLongCount": c.too_long,
        "RepeatCount": c.repeat,
        "InvalidCount": c.invalid,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ListCustomParams {
    offset: i64,
    limit: i64,
    status: Option<i64>,
    email: Option<String>,
}

pub(super) async fn list_custom(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: ListCustomParams = parse(params)?;
    let now = core.now_ms();
    let (rows, total) = core
        .list_custom_blacklist(ctx, p.status, p.email.as_deref(), p.offset, p.limit)
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "Id": r.id,
                "Email": r.address,
                "CreateTime": datetime(r.created_ms),
                // The last day the entry is in force ("" = forever).
                "ExpireDate": r.expire_ms.map(|e| mailpush_model::clock::date_of(e - 1)).unwrap_or_default(),
                "Status": i64::from(r.expire_ms.is_none_or(|e| e > now)),
            })
        })
        .collect();
    Ok(json!({"TotalCount": total, "Data": data}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct UpdateCustomParams {
    id: i64,
    email: String,
    expire_date: Option<String>,
}

pub(super) async fn update_custom(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: UpdateCustomParams = parse(params)?;
    core.update_custom_blacklist(ctx, p.id, &p.email, p.expire_date.as_deref())
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DeleteCustomParams {
    emails: Vec<String>,
}

pub(super) async fn delete_custom(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: DeleteCustomParams = parse(params)?;
    core.delete_custom_blacklist(ctx, &p.emails).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetime_format() {
        mailpush_model::time_zone::set_current(mailpush_model::TimeZone::utc());
        assert_eq!(super::datetime(0), "1970-01-01 00:00:00");
        assert_eq!(super::datetime(1_764_115_200_000 + 3_723_000), "2025-11-26 01:02:03");
    }
}
