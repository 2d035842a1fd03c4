//! Suppression lists and settings (callback URL, console users).

use super::{after, day};
use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

/// The custom blacklist and the bounce blacklist entries the account's mail caused.
pub(crate) async fn suppression(page: Page) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let (custom, _) = page
        .core()
        .list_custom_blacklist(account, Some(2), None, 0, 100)
        .await?;
    let now = page.core().now_ms();
    let (bounces, _) = page
        .core()
        .list_black_email_address(account, &day(now - 180 * 86_400_000), &day(now), None, 0, 100)
        .await?;
    let ctx = json!({
        "custom": custom.iter().map(|e| json!({ "address": e.address, "created_ms": e.created_ms, "expire_ms": e.expire_ms })).collect::<Vec<_>>(),
        "bounces": bounces.iter().map(|e| json!({ "address": e.address, "created_ms": e.created_ms, "reason": e.reason })).collect::<Vec<_>>(),
    });
    page.render("suppression.html", "suppression", ctx).await
}

#[derive(Deserialize)]
pub(crate) struct SuppressionForm {
    op: String,
    email: String,
    expire: Option<String>,
}

/// Adds to or deletes from the custom blacklist; lifts a bounce blacklist entry.
pub(crate) async fn suppression_change(page: Page, Form(f): Form<SuppressionForm>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let emails = vec![f.email.clone()];
    let r = match f.op.as_str() {
        "add" => page
            .core()
            .create_custom_blacklist(account, &emails, f.expire.as_deref().filter(|e| !e.is_empty()))
            .await
            .map(|_| ()),
        "unbounce" => page.core().delete_black_list(account, &emails).await.map(|_| ()),
        _ => page.core().delete_custom_blacklist(account, &emails).await.map(|_| ()),
    };
    after(
        "/suppression",
        r.map(|()| format!("{}: {}", f.email, page.lang.t("saved"))),
    )
}

/// The settings page.
pub(crate) async fn show(page: Page) -> Result<Response, ConsoleError> {
    let account = page.session.account.clone();
    let (url, secret) = match &account {
        Some(a) => {
            let c = page.core().callback_config(a).await?;
            (c.account_url, Some(c.secret))
        }
        None => (None, None),
    };
    let scope = if page.operator() { None } else { account.as_ref() };
    let users: Vec<_> = page
        .core()
        .console_users(scope)
        .await?
        .into_iter()
        .map(|u| json!({ "username": u.username, "account": u.account.map(|a| a.name) }))
        .collect();
    let ctx = json!({ "callback_url": url, "callback_secret": secret, "users": users });
    page.render("settings.html", "settings", ctx).await
}

#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    op: String,
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Saves the callback URL, sends a test event to it, or (the operator) adds a console user of the account shown (an operator when none is).
pub(crate) async fn change(page: Page, Form(f): Form<SettingsForm>) -> Result<Response, ConsoleError> {
    let r = match f.op.as_str() {
        "callback" => {
            let url = f.url.as_deref().filter(|u| !u.trim().is_empty());
            page.core()
                .set_callback_url(page.account()?, None, url)
                .await
                .map(|()| page.lang.t("saved").to_string())
        }
        "test_event" => page
            .core()
            .send_test_callback(page.account()?)
            .await
            .map(|()| page.lang.t("test_event_sent").to_string()),
        // Console users are created by the operator (or the CLI), for the account shown or as operators.
        _ if !page.operator() => return Err(ConsoleError::NotFound),
        _ => page
            .core()
            .create_console_user(
                f.username.as_deref().unwrap_or(""),
                page.session.account.as_ref(),
                f.password.as_deref().unwrap_or(""),
            )
            .await
            .map(|u| format!("{} ✓", u.username)),
    };
    after("/settings", r)
}
