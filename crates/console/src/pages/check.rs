//! The mail-quality check (邮件质量评分): score a template with data, or a whole MIME message, before sending
//! it — the same report as `CheckEmailQuality` and `mailpush check`.

use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::response::Response;
use mailpush_core::{CoreError, SendContent, SendRequest};
use mailpush_core::{QualityInput, QualityRequest};
use mailpush_model::TriggerType;
use serde::Deserialize;
use serde_json::{Value, json};

/// The form, empty.
pub(crate) async fn form(page: Page) -> Result<Response, ConsoleError> {
    show(&page, Value::Null, None, CheckForm::default()).await
}

#[derive(Deserialize, Default)]
pub(crate) struct CheckForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    subject: String,
    template: Option<String>,
    data: Option<String>,
    /// A whole message as SMTP would submit it; wins over the template fields when given.
    raw: Option<String>,
    /// Checkbox: judge as marketing mail (List-Unsubscribe expected).
    marketing: Option<String>,
}

/// Scores the mail and shows the report beside the form (nothing is sent or stored).
pub(crate) async fn check(page: Page, Form(f): Form<CheckForm>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let marketing = f.marketing.is_some();
    let input = match f.raw.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        // Browsers submit textarea lines with CRLF already; a pasted message may carry bare LF.
        Some(raw) => QualityInput::Raw(raw.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()),
        None => QualityInput::Send(Box::new(SendRequest {
            from: f.from.clone(),
            destination: vec!["check@example.com".into()],
            subject: f.subject.clone(),
            content: Some(SendContent::Template {
                id: f.template.as_deref().and_then(|t| t.parse().ok()).unwrap_or_default(),
                data: f
                    .data
                    .clone()
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| "{}".into()),
            }),
            trigger: if marketing {
                TriggerType::Batch
            } else {
                TriggerType::Trigger
            },
            ..SendRequest::default()
        })),
    };
    let request = QualityRequest {
        input,
        marketing: Some(marketing),
        unsubscribe: false,
    };
    match page.core().check_email_quality(account, request).await {
        Ok(report) => {
            let report = serde_json::to_value(&report).unwrap_or(Value::Null);
            show(&page, report, None, f).await
        }
        Err(CoreError::Refused(e)) => {
            let error = format!("{}: {}", e.code.as_str(), e.message);
            show(&page, Value::Null, Some(error), f).await
        }
        Err(e) => Err(ConsoleError::Core(e)),
    }
}

async fn show(page: &Page, report: Value, error: Option<String>, f: CheckForm) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let (senders, templates) = super::senders_and_templates(page.core(), account).await?;
    page.render(
        "check.html",
        "check",
        json!({
            "senders": senders,
            "templates": templates,
            "report": report,
            "error": error,
            "form": {
                "from": f.from, "subject": f.subject, "template": f.template, "data": f.data, "raw": f.raw,
                "marketing": f.marketing.is_some(),
            },
        }),
    )
    .await
}
