//! `GetSendQuota` (mailpush extension): today's usage and the limits in force for the calling account.

use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::ApiError;
use serde_json::{Value, json};

/// `GetSendQuota`: no parameters.
pub(crate) async fn get_send_quota(core: &Mailpush, ctx: &AccountContext) -> Result<Value, ApiError> {
    let q = core.send_quota(ctx).await?;
    let domains: Vec<Value> = q
        .domains
        .iter()
        .map(|d| {
            json!({
                "IdentityName": d.domain,
                "CurrentReputationLevel": d.level,
                "DailyQuota": d.daily_quota,
            })
        })
        .collect();
    let warmup = warmup_entries(core, ctx).await?;
    Ok(json!({
        "SentToday": q.sent_today,
        "DailyQuota": q.daily_quota,
        "RemainingToday": q.remaining_today,
        "DailyCap": q.daily_cap,
        "SendsPerSecond": q.sends_per_second,
        "PerRecipientPerHour": q.per_recipient_per_hour,
        "Domains": domains,
        "Warmup": warmup,
        "SourceIps": source_ips(core, ctx).await?,
    }))
}

/// `Warmup`: per sending domain, today's warm-up allowance (null = unlimited), the deliveries that used it and
/// the deliveries held for a later day.
async fn warmup_entries(core: &Mailpush, ctx: &AccountContext) -> Result<Vec<Value>, ApiError> {
    Ok(core
        .domain_warmup(ctx)
        .await?
        .into_iter()
        .map(|w| {
            json!({
                "IdentityName": w.domain,
                "WarmupDay": w.day,
                "WarmupAllowance": w.allowance,
                "SentToday": w.sent_today,
                "Held": w.held,
            })
        })
        .collect())
}

/// `SourceIps` of `GetSendQuota`: the source addresses the account's mail can go out from, with today's sends and
/// warm-up allowance (`null` = no limit).
async fn source_ips(core: &Mailpush, ctx: &AccountContext) -> Result<Vec<Value>, ApiError> {
    let ips = core.source_ip_quota(ctx).await?;
    Ok(ips
        .iter()
        .map(|q| {
            json!({
                "Address": q.address.to_string(),
                "Pool": q.pool,
                "SentToday": q.sent_today,
                "WarmupDay": q.warmup_day,
                "WarmupAllowance": q.warmup_allowance,
                "RemainingToday": q.remaining_today,
                "FirstUsedDate": q.first_used_ms.map(mailpush_model::clock::date_of),
            })
        })
        .collect())
}
