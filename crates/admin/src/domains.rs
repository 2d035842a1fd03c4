//! `mailpush domain …`: what DNS holds for a sending domain, and the source pools domains send from.

use crate::table::render;
use crate::{AdminError, Report, account_context};
use mailpush_core::{IdentityView, Mailpush};
use serde_json::json;

fn identity_report(v: &IdentityView) -> Report {
    let rows: Vec<Vec<String>> = v
        .records
        .iter()
        .map(|r| {
            vec![
                r.spec.record_type.clone(),
                r.spec.name.clone(),
                r.spec.expected.clone(),
                if r.pass { "pass".into() } else { "not yet".into() },
            ]
        })
        .collect();
    let text = format!(
        "domain {}: {} (return path at {})\npublish these records:\n{}",
        v.domain,
        if v.verified { "verified" } else { "not verified" },
        v.mail_from_domain,
        render(&["TYPE", "HOST", "VALUE", "STATE"], &rows, 60)
    );
    let json = json!({
        "Domain": v.domain, "Verified": v.verified, "DkimOption": v.dkim_option, "MailFromDomain": v.mail_from_domain,
        "Records": v.records.iter().map(|r| json!({
            "Type": r.spec.record_type, "Name": r.spec.name, "Host": r.spec.host, "Expected": r.spec.expected,
            "Found": r.current, "Pass": r.pass, "Required": r.spec.required,
        })).collect::<Vec<_>>(),
    });
    Report {
        text,
        json,
        success: true,
    }
}

/// Adds a sending domain to `account` (DKIM keys generated) and shows the records to publish.
pub async fn add(core: &Mailpush, account: &str, domain: &str, dkim_option: Option<i64>) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    Ok(identity_report(&core.create_identity(&ctx, domain, dkim_option).await?))
}

/// Checks `account`'s sending domain in DNS now; unsuccessful while it is not verified.
pub async fn verify(core: &Mailpush, account: &str, domain: &str) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let view = core.update_identity(&ctx, domain, None).await?;
    let mut report = identity_report(&view);
    report.success = view.verified;
    Ok(report)
}

/// Moves `account`'s domain's return path (SPF and the bounce MX) to `mail_from` (`None` = `bounce.<domain>`)
/// and checks it now; unsuccessful while the domain is not verified.
pub async fn set_mail_from(
    core: &Mailpush,
    account: &str,
    domain: &str,
    mail_from: Option<&str>,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let view = core.set_mail_from_domain(&ctx, domain, mail_from).await?;
    let mut report = identity_report(&view);
    report.success = view.verified;
    Ok(report)
}

/// `account`'s sending domains.
pub async fn list(core: &Mailpush, account: &str) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let (domains, _) = core.list_identities(&ctx, 0, 1000).await?;
    let rows: Vec<Vec<String>> = domains
        .iter()
        .map(|d| {
            vec![
                d.domain.clone(),
                if d.verified {
                    "verified".into()
                } else {
                    "not verified".into()
                },
                d.dkim_option.to_string(),
            ]
        })
        .collect();
    let json = domains
        .iter()
        .map(|d| json!({ "Domain": d.domain, "Verified": d.verified, "DkimOption": d.dkim_option }))
        .collect();
    Ok(Report::new(
        render(&["DOMAIN", "STATE", "DKIM OPTION"], &rows, 60),
        serde_json::Value::Array(json),
    ))
}

/// Adds a sender address to `account` (on one of its domains), with an SMTP password when given.
pub async fn add_sender(
    core: &Mailpush,
    account: &str,
    address: &str,
    name: Option<&str>,
    smtp_password: Option<&str>,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let sender = core.create_sender(&ctx, address, name).await?;
    if let Some(password) = smtp_password {
        core.update_smtp_password(&ctx, address, password).await?;
    }
    Ok(Report::new(
        format!(
            "sender {} added{}",
            sender.address,
            if smtp_password.is_some() {
                " with an SMTP password"
            } else {
                ""
            }
        ),
        json!({ "Address": sender.address, "SenderName": sender.sender_name, "SmtpPassword": smtp_password.is_some() }),
    ))
}

/// Sets whether mail from the account's sender `address` requires TLS (`mailpush sender set --require-tls`) and
/// reports the account's sender addresses that require it.
pub async fn set_sender(
    core: &Mailpush,
    account: &str,
    address: &str,
    require_tls: bool,
) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let settings = core.set_tls_required(&ctx, Some(address), require_tls).await?;
    Ok(Report::new(
        format!(
            "sender {address}: require-tls {require_tls}\n{account}: senders requiring TLS: {}",
            if settings.senders.is_empty() {
                "none".to_string()
            } else {
                settings.senders.join(", ")
            }
        ),
        json!({ "Address": address, "RequireTls": require_tls, "RequireTlsAddresses": settings.senders }),
    ))
}

/// Looks up every record the sending `domain` (of whichever account) must publish: expected against found. The
/// report is unsuccessful when a required record fails (the domain cannot send).
pub async fn check(core: &Mailpush, domain: &str) -> Result<Report, AdminError> {
    let Some((row, records)) = core.admin_check_domain(domain).await? else {
        return Err(AdminError::Invalid(format!(
            "no account has the sending domain {domain}"
        )));
    };
    let account = core
        .list_accounts()
        .await?
        .into_iter()
        .find(|a| a.id == row.account_id)
        .map_or_else(|| row.account_id.to_string(), |a| a.name);
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let reason = r.reason.clone().unwrap_or_default();
            let result = match (r.pass, r.spec.required) {
                (true, _) => "pass".to_string(),
                (false, true) => format!("FAIL: {reason}"),
                (false, false) => format!("fail (optional): {reason}"),
            };
            let found = if r.current.is_empty() {
                "-".to_string()
            } else {
                r.current.clone()
            };
            vec![
                r.spec.record_type.clone(),
                r.spec.name.clone(),
                r.spec.expected.clone(),
                found,
                result,
            ]
        })
        .collect();
    let sendable = records.iter().all(|r| r.pass || !r.spec.required);
    let text = format!(
        "domain {}  account {}  stored status: {}\n{}\nresult: {}",
        row.domain,
        account,
        if row.verified { "verified" } else { "not verified" },
        render(&["TYPE", "HOST", "EXPECTED", "FOUND", "RESULT"], &rows, 60),
        if sendable { "sendable" } else { "NOT sendable" }
    );
    let json = json!({
        "Domain": row.domain,
        "Account": account,
        "Verified": row.verified,
        "Sendable": sendable,
        "Records": records.iter().map(|r| json!({
            "Type": r.spec.record_type, "Host": r.spec.name, "Expected": r.spec.expected,
            "Found": r.current, "Pass": r.pass, "Required": r.spec.required, "Reason": r.reason,
        })).collect::<Vec<_>>(),
    });
    Ok(Report {
        text,
        json,
        success: sendable,
    })
}

/// Sends `domain`'s mail from the source pool `pool` (`shared` = the default pool).
pub async fn set_pool(core: &Mailpush, domain: &str, pool: &str) -> Result<Report, AdminError> {
    core.set_domain_pool(domain, Some(pool)).await?;
    Ok(Report::new(
        format!("{domain} now sends from source pool {pool}"),
        json!({ "Domain": domain, "Pool": pool }),
    ))
}

/// The source addresses per pool with today's sends and warm-up allowance, and the domains' pools.
pub async fn pools(core: &Mailpush) -> Result<Report, AdminError> {
    let quotas = core.all_source_ip_quota().await?;
    let assignments = core.domain_pool_assignments().await?;
    let rows: Vec<Vec<String>> = quotas
        .iter()
        .map(|q| {
            vec![
                q.pool.clone(),
                q.address.to_string(),
                q.sent_today.to_string(),
                q.warmup_day.to_string(),
                q.warmup_allowance
                    .map_or_else(|| "unlimited".to_string(), |a| a.to_string()),
            ]
        })
        .collect();
    let mut text = render(&["POOL", "ADDRESS", "SENT TODAY", "DAY", "ALLOWANCE"], &rows, 40);
    for a in &assignments {
        text.push_str(&format!(
            "\ndomain {} (account {}) -> pool {}",
            a.domain, a.account_id, a.pool
        ));
    }
    let json = json!({
        "Addresses": quotas.iter().map(|q| json!({
            "Pool": q.pool, "Address": q.address.to_string(), "SentToday": q.sent_today,
            "WarmupDay": q.warmup_day, "Allowance": q.warmup_allowance,
        })).collect::<Vec<_>>(),
        "Domains": assignments.iter().map(|a| json!({
            "Domain": a.domain, "AccountId": a.account_id, "Pool": a.pool,
        })).collect::<Vec<_>>(),
    });
    Ok(Report::new(text, json))
}
