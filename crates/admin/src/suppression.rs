//! `mailpush suppression …`: an account's custom blacklist, and the global bounce blacklist entries its mail
//! caused.

use crate::table::render;
use crate::{AdminError, Report, account_context, datetime};
use mailpush_core::Mailpush;
use serde_json::json;

/// The custom blacklist of `account` in force (with expiry).
pub async fn list(core: &Mailpush, account: &str) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    // Pages of 100, the most the API's ListCustomBlacklist answers at once.
    let mut entries = Vec::new();
    let total = loop {
        let (page, total) = core
            .list_custom_blacklist(&ctx, Some(1), None, entries.len() as i64, 100)
            .await?;
        let last = page.len() < 100;
        entries.extend(page);
        if last {
            break total;
        }
    };
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.address.clone(),
                datetime(e.created_ms),
                e.expire_ms.map_or_else(|| "never".into(), datetime),
            ]
        })
        .collect();
    let json = json!({
        "Total": total,
        "Entries": entries.iter().map(|e| json!({
            "Email": e.address, "CreateTime": datetime(e.created_ms), "ExpireTime": e.expire_ms.map(datetime),
        })).collect::<Vec<_>>(),
    });
    Ok(Report::new(render(&["ADDRESS", "ADDED", "EXPIRES"], &rows, 60), json))
}

/// Adds `email` to `account`'s custom blacklist until the end of the UTC day `expire_date` (none: forever).
pub async fn add(core: &Mailpush, account: &str, email: &str, expire_date: Option<&str>) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let r = core
        .create_custom_blacklist(&ctx, &[email.to_string()], expire_date)
        .await?;
    if r.valid == 0 {
        return Err(AdminError::Invalid(format!(
            "{email} was not added (invalid or already listed)"
        )));
    }
    Ok(Report::new(
        format!(
            "{email} blacklisted for {account}{}",
            expire_date.map(|d| format!(" until {d}")).unwrap_or_default()
        ),
        json!({ "Email": email, "ExpireDate": expire_date }),
    ))
}

/// Removes `email` from `account`'s custom blacklist, and the global bounce blacklist entry the account's mail
/// caused for it (so the account may send to it again).
pub async fn delete(core: &Mailpush, account: &str, email: &str) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let addresses = [email.to_string()];
    let custom = core.delete_custom_blacklist(&ctx, &addresses).await?;
    let bounce = core.delete_black_list(&ctx, &addresses).await?;
    Ok(Report {
        text: format!("{email}: {custom} custom blacklist entry and {bounce} bounce blacklist entry removed"),
        json: json!({ "Email": email, "CustomRemoved": custom, "BounceRemoved": bounce }),
        success: custom + bounce > 0,
    })
}
