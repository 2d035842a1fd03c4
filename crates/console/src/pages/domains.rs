//! Sending domains (add, records table, verify now, delete) and sender addresses with SMTP passwords.

use super::after;
use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::extract::Path;
use axum::response::Response;
use mailpush_core::IdentityView;
use serde::Deserialize;
use serde_json::{Value, json};

fn domain_json(d: &IdentityView, level: Option<u8>) -> Value {
    json!({
        "domain": d.domain, "verified": d.verified, "reason": d.reason, "checked_ms": d.checked_ms,
        "created_ms": d.created_ms, "level": level,
        "records": d.records.iter().map(|r| json!({
            "kind": format!("{:?}", r.spec.kind).to_uppercase(), "type": r.spec.record_type, "host": r.spec.host, "name": r.spec.name,
            "expected": r.spec.expected, "current": r.current, "pass": r.pass, "reason": r.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The account's domains and senders.
pub(crate) async fn list(page: Page) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let (domains, _) = page.core().list_identities(account, 0, 100).await?;
    let names: Vec<&str> = domains.iter().map(|d| d.domain.as_str()).collect();
    let levels = page.core().reputations(account, &names).await?;
    let senders = page.core().list_senders(account).await?;
    let ctx = json!({
        "domains": domains.iter().zip(&levels).map(|(d, l)| domain_json(d, Some(l.level))).collect::<Vec<_>>(),
        "senders": senders.iter().map(|s| json!({ "address": s.address, "name": s.sender_name, "smtp": s.has_smtp_password, "created_ms": s.created_ms })).collect::<Vec<_>>(),
    });
    page.render("domains.html", "domains", ctx).await
}

/// One domain's records.
pub(crate) async fn show(page: Page, Path(domain): Path<String>) -> Result<Response, ConsoleError> {
    let d = page
        .core()
        .get_identity(page.account()?, &domain)
        .await
        .map_err(|_| ConsoleError::NotFound)?;
    page.render("domain.html", "domains", json!({ "d": domain_json(&d, None) }))
        .await
}

#[derive(Deserialize)]
pub(crate) struct AddDomain {
    domain: String,
    dkim_option: Option<i64>,
}

/// Adds a domain (keys generated) and shows its records.
pub(crate) async fn add(page: Page, Form(f): Form<AddDomain>) -> Result<Response, ConsoleError> {
    let r = page
        .core()
        .create_identity(page.account()?, &f.domain, f.dkim_option)
        .await;
    match r {
        Ok(d) => after(&format!("/domains/{}", d.domain), Ok(format!("{} ✓", d.domain))),
        Err(e) => after("/domains", Err(e)),
    }
}

/// Checks DNS now.
pub(crate) async fn verify(page: Page, Path(domain): Path<String>) -> Result<Response, ConsoleError> {
    let r = page.core().update_identity(page.account()?, &domain, None).await;
    let to = format!("/domains/{domain}");
    after(
        &to,
        r.map(|d| {
            let label = if d.verified {
                page.lang.t("verified")
            } else {
                page.lang.t("not_verified")
            };
            format!("{}: {label}", d.domain)
        }),
    )
}

/// Deletes a domain (refused while it has senders).
pub(crate) async fn delete(page: Page, Path(domain): Path<String>) -> Result<Response, ConsoleError> {
    let r = page.core().delete_identity(page.account()?, &domain).await;
    match r {
        Ok(()) => after("/domains", Ok(format!("{domain}: {}", page.lang.t("delete")))),
        Err(e) => after(&format!("/domains/{domain}"), Err(e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct AddSender {
    address: String,
    name: Option<String>,
    smtp_password: Option<String>,
}

/// Adds a sender address, with an SMTP password when one is given.
pub(crate) async fn add_sender(page: Page, Form(f): Form<AddSender>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let r = async {
        let s = page
            .core()
            .create_sender(account, &f.address, f.name.as_deref())
            .await?;
        if let Some(p) = f.smtp_password.as_deref().filter(|p| !p.is_empty()) {
            page.core().update_smtp_password(account, &s.address, p).await?;
        }
        Ok(format!("{} ✓", s.address))
    }
    .await;
    after("/domains", r)
}

#[derive(Deserialize)]
pub(crate) struct SenderPassword {
    address: String,
    password: String,
}

/// Sets a sender's SMTP password.
pub(crate) async fn sender_password(page: Page, Form(f): Form<SenderPassword>) -> Result<Response, ConsoleError> {
    let r = page
        .core()
        .update_smtp_password(page.account()?, &f.address, &f.password)
        .await;
    after(
        "/domains",
        r.map(|()| format!("{}: {}", f.address, page.lang.t("saved"))),
    )
}

#[derive(Deserialize)]
pub(crate) struct SenderAddress {
    address: String,
}

/// Deletes a sender address.
pub(crate) async fn delete_sender(page: Page, Form(f): Form<SenderAddress>) -> Result<Response, ConsoleError> {
    let r = page.core().delete_sender(page.account()?, &f.address).await;
    after(
        "/domains",
        r.map(|()| format!("{}: {}", f.address, page.lang.t("delete"))),
    )
}
