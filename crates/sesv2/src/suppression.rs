//! The account-level suppression list: `PutSuppressedDestination`, `GetSuppressedDestination`,
//! `DeleteSuppressedDestination`, `ListSuppressedDestinations`. An address put there is a custom blacklist entry
//! of the account (screened by core's admission, as Tencent's `CreateCustomBlacklist`), with its reason kept
//! beside it; addresses that hard-bounced the account's mail (core's bounce blacklist) are listed as `BOUNCE`.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::RawQuery;
use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::clock::{DAY_MS, date_of};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AwsError, Named, Signed, epoch_seconds, paged_reply, query_values};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutInput {
    email_address: String,
    reason: String,
}

fn check_reason(reason: &str) -> Result<&'static str, AwsError> {
    match reason {
        "BOUNCE" => Ok("BOUNCE"),
        "COMPLAINT" => Ok("COMPLAINT"),
        other => Err(AwsError::bad_request(format!(
            "Reason {other:?} must be BOUNCE or COMPLAINT"
        ))),
    }
}

/// Every suppressed address of the account: address → (reason, last update ms).
async fn suppressed(core: &Mailpush, ctx: &AccountContext) -> Result<BTreeMap<String, (String, i64)>, AwsError> {
    let reasons: HashMap<String, String> = core.suppression_reasons(ctx).await?.into_iter().collect();
    let mut out = BTreeMap::new();
    // Hard bounces of the account's mail within the bounce blacklist's lifetime (listed in 90-day windows).
    let now = core.now_ms();
    let days = i64::try_from(core.settings().blacklist_days).unwrap_or(180).max(1);
    let mut end = now;
    while end > now - days * DAY_MS {
        let start = (end - 89 * DAY_MS).max(now - days * DAY_MS);
        let mut offset = 0;
        loop {
            let (rows, total) = core
                .list_black_email_address(ctx, &date_of(start), &date_of(end), None, offset, 100)
                .await
                .map_err(AwsError::from_core)?;
            for r in &rows {
                out.insert(r.address.to_ascii_lowercase(), ("BOUNCE".to_string(), r.created_ms));
            }
            offset += 100;
            if offset >= total || rows.is_empty() {
                break;
            }
        }
        end = start - DAY_MS;
    }
    let mut offset = 0;
    loop {
        let (rows, total) = core
            .list_custom_blacklist(ctx, None, None, offset, 100)
            .await
            .map_err(AwsError::from_core)?;
        for r in &rows {
            if r.expire_ms.is_some_and(|e| e <= now) {
                continue;
            }
            let address = r.address.to_ascii_lowercase();
            let reason = reasons.get(&address).cloned().unwrap_or_else(|| "COMPLAINT".into());
            out.insert(address, (reason, r.created_ms));
        }
        offset += 100;
        if offset >= total || rows.is_empty() {
            break;
        }
    }
    Ok(out)
}

pub(crate) async fn put(signed: Signed) -> Result<Json<Value>, AwsError> {
    let input: PutInput = signed.json()?;
    let (core, ctx) = (&signed.core, &signed.ctx);
    let reason = check_reason(&input.reason)?;
    let address = input.email_address.trim().to_ascii_lowercase();
    let created = core
        .create_custom_blacklist(ctx, std::slice::from_ref(&address), None)
        .await
        .map_err(AwsError::from_core)?;
    if created.valid + created.repeat == 0 {
        return Err(AwsError::bad_request(format!(
            "EmailAddress {address:?} is not a valid address"
        )));
    }
    core.set_suppression_reason(ctx, &address, Some(reason)).await?;
    Ok(Json(json!({})))
}

pub(crate) async fn get(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let address = signed.name.trim().to_ascii_lowercase();
    let all = suppressed(core, ctx).await?;
    let (reason, at) = all
        .get(&address)
        .ok_or_else(|| AwsError::not_found(format!("{address} is not on the suppression list")))?;
    Ok(Json(json!({
        "SuppressedDestination": {
            "EmailAddress": address,
            "Reason": reason,
            "LastUpdateTime": epoch_seconds(*at),
        }
    })))
}

pub(crate) async fn delete(signed: Named) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let address = signed.name.trim().to_ascii_lowercase();
    let list = [address.clone()];
    let custom = core
        .delete_custom_blacklist(ctx, &list)
        .await
        .map_err(AwsError::from_core)?;
    let bounced = core.delete_black_list(ctx, &list).await.map_err(AwsError::from_core)?;
    core.set_suppression_reason(ctx, &address, None).await?;
    if custom + bounced == 0 {
        return Err(AwsError::not_found(format!("{address} is not on the suppression list")));
    }
    Ok(Json(json!({})))
}

pub(crate) async fn list(RawQuery(query): RawQuery, signed: Signed) -> Result<Json<Value>, AwsError> {
    let (core, ctx) = (&signed.core, &signed.ctx);
    let q = query.as_deref();
    let reasons: Vec<String> = query_values(q, "Reason");
    for r in &reasons {
        check_reason(r)?;
    }
    let time = |name: &str| -> Result<Option<i64>, AwsError> {
        match query_values(q, name).pop() {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(|s| Some((s * 1000.0) as i64))
                .map_err(|_| AwsError::bad_request(format!("{name} must be a timestamp"))),
        }
    };
    let (start, end) = (time("StartDate")?, time("EndDate")?);
    let all: Vec<(String, (String, i64))> = suppressed(core, ctx)
        .await?
        .into_iter()
        .filter(|(_, (reason, at))| {
            (reasons.is_empty() || reasons.contains(reason))
                && start.is_none_or(|s| *at >= s)
                && end.is_none_or(|e| *at <= e)
        })
        .collect();
    let list: Vec<Value> = all
        .iter()
        .map(|(address, (reason, at))| {
            json!({ "EmailAddress": address, "Reason": reason, "LastUpdateTime": epoch_seconds(*at) })
        })
        .collect();
    Ok(Json(paged_reply("SuppressedDestinationSummaries", list, q)?))
}
