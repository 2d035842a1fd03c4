//! `GetTlsPolicy` / `UpdateTlsPolicy` (mailpush extensions): "TLS required" for the whole account or per sender
//! address. Mail it applies to goes only over STARTTLS with a certificate verified for the MX host name.

use super::parse;
use mailpush_core::{AccountContext, Mailpush};
use mailpush_model::ApiError;
use mailpush_model::account::TlsRequiredSettings;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct UpdateParams {
    /// Whether TLS is required.
    require_tls: bool,
    /// One of the account's sender addresses; absent: the whole account.
    #[serde(default)]
    email_address: Option<String>,
}

/// The reply of both actions: the account's setting and the sender addresses that require TLS.
fn settings(s: &TlsRequiredSettings) -> Value {
    json!({
        "RequireTls": s.account,
        "RequireTlsAddresses": s.senders,
    })
}

pub(super) async fn get_tls_policy(core: &Mailpush, ctx: &AccountContext) -> Result<Value, ApiError> {
    Ok(settings(&core.tls_required(ctx).await?))
}

pub(super) async fn update_tls_policy(core: &Mailpush, ctx: &AccountContext, params: Value) -> Result<Value, ApiError> {
    let p: UpdateParams = parse(params)?;
    let address = p.email_address.as_deref().filter(|a| !a.trim().is_empty());
    Ok(settings(&core.set_tls_required(ctx, address, p.require_tls).await?))
}
