//! `mailpush template …`: the operator's review queue.

use crate::{AdminError, Report};
use mailpush_core::Mailpush;
use mailpush_model::templates::TemplateStatus;
use serde_json::json;

fn status_name(status: TemplateStatus) -> &'static str {
    match status {
        TemplateStatus::Approved => "approved",
        TemplateStatus::Reviewing => "pending",
        TemplateStatus::Rejected => "rejected",
    }
}

/// Templates of every account (only those waiting for review with `pending_only`).
pub async fn list(core: &Mailpush, pending_only: bool) -> Result<Report, AdminError> {
    let list = core.admin_templates(pending_only).await?;
    let text = list
        .iter()
        .map(|t| {
            format!(
                "{}\tv{}\taccount {}\t{}\t{}\t{}",
                t.id,
                t.version,
                t.account_id,
                status_name(t.status),
                t.category,
                t.name
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let json = list
        .iter()
        .map(|t| {
            json!({
                "TemplateID": t.id, "AccountId": t.account_id, "TemplateName": t.name,
                "TemplateCategory": t.category, "TemplateStatus": t.status.code(),
                "ReviewReason": t.review_reason, "Version": t.version,
                "CreatedTimestamp": t.created_ms / 1000,
            })
        })
        .collect();
    Ok(Report::new(text, serde_json::Value::Array(json)))
}

/// One template with its content, to review it.
pub async fn show(core: &Mailpush, id: i64) -> Result<Report, AdminError> {
    let t = core.admin_template(id).await?;
    let mut text = format!(
        "template {} version {} (account {}): {}\nstatus: {}\ncategory: {}",
        t.id,
        t.version,
        t.account_id,
        t.name,
        status_name(t.status),
        t.category
    );
    if !t.review_reason.is_empty() {
        text.push_str(&format!("\nreview reason:\n{}", t.review_reason));
    }
    if let Some(html) = &t.html {
        text.push_str(&format!("\n--- Html ---\n{html}"));
    }
    if let Some(plain) = &t.text {
        text.push_str(&format!("\n--- Text ---\n{plain}"));
    }
    let json = json!({
        "TemplateID": t.id, "AccountId": t.account_id, "TemplateName": t.name, "TemplateCategory": t.category,
        "TemplateStatus": t.status.code(), "ReviewReason": t.review_reason, "Version": t.version,
        "Html": t.html, "Text": t.text,
    });
    Ok(Report::new(text, json))
}

/// Approves a template waiting for review; with `version`, only if its content is still that version.
pub async fn approve(core: &Mailpush, id: i64, version: Option<i64>) -> Result<Report, AdminError> {
    let t = core.approve_template(id, version).await?;
    Ok(Report::new(
        format!("template {} version {} approved", t.id, t.version),
        json!({ "TemplateID": t.id, "Version": t.version, "TemplateStatus": t.status.code() }),
    ))
}

/// Rejects a template with a reason the account sees as ReviewReason.
pub async fn reject(core: &Mailpush, id: i64, version: Option<i64>, reason: &str) -> Result<Report, AdminError> {
    let t = core.reject_template(id, version, reason).await?;
    Ok(Report::new(
        format!("template {} version {} rejected", t.id, t.version),
        json!({ "TemplateID": t.id, "Version": t.version, "TemplateStatus": t.status.code() }),
    ))
}
