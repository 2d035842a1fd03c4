//! `mailpush console-user add|list`: the people who sign in to the web console (`/console/`), for one account
//! or as the operator (every account, the template review queue).

use crate::table::render;
use crate::{AdminError, Report, account_context};
use mailpush_core::Mailpush;
use mailpush_core::{ALPHANUMERIC, random_string};
use serde_json::json;

/// Adds a console user of `account` (`None`: an operator). Without `password` one is generated and shown once.
pub async fn add(
    core: &Mailpush,
    username: &str,
    account: Option<&str>,
    password: Option<&str>,
) -> Result<Report, AdminError> {
    let ctx = match account {
        Some(name) => Some(account_context(core, name).await?),
        None => None,
    };
    let generated = password.is_none().then(|| random_string(20, ALPHANUMERIC));
    let password = password.or(generated.as_deref()).unwrap_or_default();
    let user = core.create_console_user(username, ctx.as_ref(), password).await?;
    let who = ctx.as_ref().map_or("operator (every account)".to_string(), |a| {
        format!("account {}", a.name)
    });
    let mut text = format!("console user {} added for {who}", user.username);
    if let Some(p) = &generated {
        text.push_str(&format!("\npassword: {p}   (shown once)"));
    }
    Ok(Report::new(
        text,
        json!({ "Username": user.username, "Account": ctx.map(|a| a.name), "Password": generated }),
    ))
}

/// Every console user.
pub async fn list(core: &Mailpush) -> Result<Report, AdminError> {
    let users = core.console_users(None).await?;
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                u.account.as_ref().map_or("(operator)".to_string(), |a| a.name.clone()),
            ]
        })
        .collect();
    let json = users
        .iter()
        .map(|u| json!({ "Username": u.username, "Account": u.account.as_ref().map(|a| a.name.clone()) }))
        .collect();
    Ok(Report::new(
        render(&["USERNAME", "ACCOUNT"], &rows, 40),
        serde_json::Value::Array(json),
    ))
}
