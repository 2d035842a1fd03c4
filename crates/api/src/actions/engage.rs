//! Engagement actions (mailpush extensions): callback URLs and the callback signing secret.

use super::parse;
use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::ApiError;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SetCallbackUrlParams {
    callback_url: Option<String>,
    email_address: Option<String>,
}

pub(super) async fn set_callback_url(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: SetCallbackUrlParams = parse(params)?;
    core.set_callback_url(ctx, p.email_address.as_deref(), p.callback_url.as_deref())
        .await?;
    Ok(json!({}))
}

pub(super) async fn get_callback_config(core: &Mailpush, ctx: &AccountContext) -> Result<Value, ApiError> {
    let cfg = core.callback_config(ctx).await?;
    let senders: Vec<Value> = cfg
        .sender_urls
        .iter()
        .map(|(a, u)| json!({ "EmailAddress": a, "CallbackUrl": u }))
        .collect();
    Ok(json!({
        "CallbackUrl": cfg.account_url.unwrap_or_default(),
        "AddressCallbacks": senders,
        "CallbackSecret": cfg.secret,
    }))
}

pub(super) async fn reset_secret(core: &Mailpush, ctx: &AccountContext) -> Result<Value, ApiError> {
    let secret = core.reset_callback_secret(ctx).await?;
    Ok(json!({ "CallbackSecret": secret }))
}
