//! Settings → API keys (list, create a second key shown once, revoke) and the unsubscribe defaults of the
//! account's sender addresses.

use super::after;
use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::response::Response;
use mailpush_core::AccountCredentials;
use serde::Deserialize;
use serde_json::json;

/// The keys page; `created` is the key just created, whose SecretKey is shown this once.
async fn render(page: &Page, created: Option<&AccountCredentials>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let core = page.core();
    let keys: Vec<_> = core
        .list_api_keys(account)
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "secret_id": k.secret_id,
                "created_ms": k.created_ms,
                "last_used": k.last_used,
                "revoked_ms": k.revoked_ms,
                "active": k.is_active(),
            })
        })
        .collect();
    let active = keys.iter().filter(|k| k["active"] == json!(true)).count();
    let (configs, _) = core.list_unsubscribe_configs(account, 0, 100).await?;
    let senders: Vec<_> = core
        .list_senders(account)
        .await?
        .into_iter()
        .map(|s| {
            let config = configs.iter().find(|c| c.address.eq_ignore_ascii_case(&s.address));
            json!({
                "address": s.address,
                "configured": config.is_some(),
                "code": config.map(|c| c.unsubscribe_config.clone()),
                "status": config.map_or(0, |c| c.status),
            })
        })
        .collect();
    let ctx = json!({
        "keys": keys,
        "can_create": (active as i64) < mailpush_core::MAX_ACTIVE_KEYS,
        "created": created.map(|c| json!({ "secret_id": c.secret_id, "secret_key": c.secret_key })),
        "senders": senders,
        "codes": (0..=12).collect::<Vec<i32>>(),
    });
    page.render("keys.html", "settings", ctx).await
}

/// The API keys and unsubscribe defaults page.
pub(crate) async fn show(page: Page) -> Result<Response, ConsoleError> {
    render(&page, None).await
}

#[derive(Deserialize)]
pub(crate) struct KeyForm {
    op: String,
    secret_id: Option<String>,
}

/// Creates a second key (the page shows its SecretKey once) or revokes one.
pub(crate) async fn change(page: Page, Form(f): Form<KeyForm>) -> Result<Response, ConsoleError> {
    let account = page.account()?.clone();
    match f.op.as_str() {
        "create" => match page.core().create_api_key(&account).await {
            Ok(creds) => render(&page, Some(&creds)).await,
            Err(e) => after("/settings/keys", Err(e)),
        },
        _ => {
            let secret_id = f.secret_id.unwrap_or_default();
            let r = page
                .core()
                .revoke_api_key(&account, &secret_id)
                .await
                .map(|()| format!("{secret_id}: {}", page.lang.t("key_revoked")));
            after("/settings/keys", r)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct UnsubscribeForm {
    address: String,
    code: String,
    status: Option<String>,
}

/// Sets a sender address's unsubscribe default (created on first save, updated afterwards).
pub(crate) async fn unsubscribe(page: Page, Form(f): Form<UnsubscribeForm>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let core = page.core();
    let status = Some(i64::from(f.status.as_deref() == Some("1")));
    let (configs, _) = core.list_unsubscribe_configs(account, 0, 100).await?;
    let exists = configs.iter().any(|c| c.address.eq_ignore_ascii_case(&f.address));
    let r = if exists {
        core.update_unsubscribe_config(account, &f.address, &f.code, status)
            .await
    } else {
        core.create_unsubscribe_config(account, &f.address, &f.code, status)
            .await
    };
    after(
        "/settings/keys",
        r.map(|()| format!("{}: {}", f.address, page.lang.t("saved"))),
    )
}
