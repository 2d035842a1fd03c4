//! `mailpush account …`: create, change, suspend, resume and list accounts.

use crate::{AdminError, Report};
use mailpush_core::{AccountCredentials, Mailpush};
use mailpush_model::templates::AccountPolicy;
use serde_json::json;

/// The note under credentials that add to the account's keys.
const KEEP_THE_SECRET_KEY: &str = "Keep the SecretKey now: it is stored encrypted and cannot be shown again.";

/// A report of new credentials, shown only now, with `note` under them.
fn credentials_report(creds: &AccountCredentials, note: &str) -> Result<Report, AdminError> {
    let text = format!(
        "account:   {}\nAppId:     {}\nSecretId:  {}\nSecretKey: {}\n{note}",
        creds.name, creds.app_id, creds.secret_id, creds.secret_key
    );
    let json = serde_json::to_value(creds).map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(Report::new(text, json))
}

/// Creates an account with its content permissions; the report carries the credentials, shown only now.
pub async fn create(core: &Mailpush, name: &str, policy: AccountPolicy) -> Result<Report, AdminError> {
    let creds = core.create_account_with_policy(name, policy).await?;
    credentials_report(&creds, KEEP_THE_SECRET_KEY)
}

/// Gives the account a new SecretId and SecretKey in place of every active key (shown once; the old ones stop
/// working).
pub async fn rotate_key(core: &Mailpush, name: &str) -> Result<Report, AdminError> {
    let creds = core.rotate_account_key(name).await?;
    credentials_report(
        &creds,
        "The previous SecretId and SecretKey no longer work (running servers: within 30 s).",
    )
}

/// The account's API keys: SecretId, created, last used day, active or revoked (never the secrets).
pub async fn keys(core: &Mailpush, name: &str) -> Result<Report, AdminError> {
    let account = core.account_named(name).await?;
    let keys = core.list_api_keys(&account).await?;
    let text = keys
        .iter()
        .map(|k| {
            format!(
                "{}	created {}	last used {}	{}",
                k.secret_id,
                mailpush_core::format_time(k.created_ms),
                k.last_used.as_deref().unwrap_or("-"),
                k.revoked_ms.map_or("active".to_string(), |ms| format!(
                    "revoked {}",
                    mailpush_core::format_time(ms)
                ))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let json = serde_json::to_value(&keys).map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(Report::new(text, json))
}

/// Adds a second API key to the account (shown once; the existing key keeps working).
pub async fn create_key(core: &Mailpush, name: &str) -> Result<Report, AdminError> {
    let account = core.account_named(name).await?;
    let creds = core.create_api_key(&account).await?;
    credentials_report(&creds, KEEP_THE_SECRET_KEY)
}

/// Revokes one of the account's API keys (refused for its last active key).
pub async fn revoke_key(core: &Mailpush, name: &str, secret_id: &str) -> Result<Report, AdminError> {
    let account = core.account_named(name).await?;
    core.revoke_api_key(&account, secret_id).await?;
    Ok(Report::new(
        format!("{name}: {secret_id} revoked (running servers refuse it within 30 s)"),
        json!({ "Name": name, "SecretId": secret_id, "Revoked": true }),
    ))
}

/// A limit given on the command line: `N` or `default` (the setting's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitArg {
    /// Back to the default of the settings.
    Default,
    /// This value.
    Value(i64),
}

impl LimitArg {
    /// Parses `N` (non-negative) or `default`.
    pub fn parse(text: &str) -> Result<LimitArg, AdminError> {
        match text {
            "default" => Ok(LimitArg::Default),
            n => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(LimitArg::Value)
                .ok_or_else(|| AdminError::Invalid(format!("{n:?}: give a non-negative number or `default`"))),
        }
    }

    fn as_override(this: Option<LimitArg>) -> Option<Option<i64>> {
        this.map(|a| match a {
            LimitArg::Default => None,
            LimitArg::Value(n) => Some(n),
        })
    }
}

/// What `account set` changes; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    /// Custom content (`Simple`) allowed.
    pub allow_simple_content: Option<bool>,
    /// Links allowed in templates.
    pub allow_links: Option<bool>,
    /// Messages per second.
    pub sends_per_second: Option<LimitArg>,
    /// Mails per recipient address in any sliding hour.
    pub per_recipient_per_hour: Option<LimitArg>,
    /// Cap of the daily quota.
    pub daily_cap: Option<LimitArg>,
    /// `DOMAIN=LEVEL`: the reputation level (1–20) of one of the account's domains.
    pub domain_level: Option<String>,
    /// Every mail of the account goes only over verified TLS.
    pub require_tls: Option<bool>,
}

/// Applies `changes` to the account `name` and reports what it has now.
pub async fn set(core: &Mailpush, name: &str, changes: AccountChanges) -> Result<Report, AdminError> {
    let mut lines = Vec::new();
    let mut json = serde_json::Map::new();
    if changes.sends_per_second.is_some() || changes.per_recipient_per_hour.is_some() || changes.daily_cap.is_some() {
        let o = core
            .set_account_limits(
                name,
                LimitArg::as_override(changes.sends_per_second),
                LimitArg::as_override(changes.per_recipient_per_hour),
                LimitArg::as_override(changes.daily_cap),
            )
            .await?;
        let show = |v: Option<i64>| v.map_or("default".to_string(), |n| n.to_string());
        lines.push(format!(
            "{name}: sends-per-second {}, per-recipient-per-hour {}, daily-cap {}",
            show(o.sends_per_second),
            show(o.per_recipient_per_hour),
            show(o.daily_cap)
        ));
        json.insert("SendsPerSecond".into(), json!(o.sends_per_second));
        json.insert("PerRecipientPerHour".into(), json!(o.per_recipient_per_hour));
        json.insert("DailyCap".into(), json!(o.daily_cap));
    }
    if let Some(spec) = &changes.domain_level {
        let (domain, level) = spec
            .split_once('=')
            .and_then(|(d, l)| Some((d, l.parse::<u8>().ok().filter(|l| (1..=20).contains(l))?)))
            .ok_or_else(|| AdminError::Invalid("--domain-level takes DOMAIN=LEVEL with LEVEL 1-20".into()))?;
        core.set_domain_level(domain, level)
            .await
            .map_err(|e| AdminError::Refused(e.to_string()))?;
        lines.push(format!("{domain}: reputation level {level}"));
        json.insert("DomainLevel".into(), json!({ "Domain": domain, "Level": level }));
    }
    let tls = match changes.require_tls {
        Some(required) => core.set_tls_required_by_name(name, None, required).await?,
        None => core.tls_required_by_name(name).await?,
    };
    lines.push(format!("{name}: require-tls {}", tls.account));
    json.insert("RequireTls".into(), json!(tls.account));
    let p = core
        .set_account_policy(name, changes.allow_simple_content, changes.allow_links)
        .await?;
    lines.push(format!(
        "{name}: allow-simple-content {}, allow-links {}",
        p.allow_simple_content, p.allow_links
    ));
    json.insert("AllowSimpleContent".into(), json!(p.allow_simple_content));
    json.insert("AllowLinks".into(), json!(p.allow_links));
    Ok(Report::new(lines.join("\n"), serde_json::Value::Object(json)))
}

/// Suspends (`true`) or resumes the account `name`.
pub async fn set_suspended(core: &Mailpush, name: &str, suspended: bool) -> Result<Report, AdminError> {
    core.set_account_suspended_by_name(name, suspended).await?;
    let state = if suspended { "suspended" } else { "resumed" };
    Ok(Report::new(
        format!("{name}: {state}"),
        json!({ "Name": name, "Suspended": suspended }),
    ))
}

/// Every account: AppId, name, whether suspended.
pub async fn list(core: &Mailpush) -> Result<Report, AdminError> {
    let accounts = core.list_accounts().await?;
    let text = accounts
        .iter()
        .map(|a| {
            format!(
                "{}\t{}{}",
                a.app_id,
                a.name,
                if a.suspended { "\t(suspended)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let json = accounts
        .iter()
        .map(|a| json!({"Name": a.name, "AppId": a.app_id, "Suspended": a.suspended}))
        .collect();
    Ok(Report::new(text, serde_json::Value::Array(json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_arguments() {
        assert_eq!(LimitArg::parse("default").ok(), Some(LimitArg::Default));
        assert_eq!(LimitArg::parse("12").ok(), Some(LimitArg::Value(12)));
        assert!(LimitArg::parse("-1").is_err());
        assert!(LimitArg::parse("many").is_err());
        assert_eq!(LimitArg::as_override(Some(LimitArg::Default)), Some(None));
        assert_eq!(LimitArg::as_override(None), None);
    }
}
