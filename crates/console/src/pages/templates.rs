//! Templates: list, create and edit with a live preview, review status with its reasons; the operator's review
//! queue.

use super::after;
use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::extract::Path;
use axum::response::{IntoResponse, Json, Response};
use mailpush_core::TemplateInput;
use mailpush_model::templates::TemplateStatus;
use serde::Deserialize;
use serde_json::json;

/// The status key of the UI texts and the badge class.
fn status(s: TemplateStatus) -> (&'static str, &'static str) {
    match s {
        TemplateStatus::Approved => ("approved", "ok"),
        TemplateStatus::Reviewing => ("reviewing", "warn"),
        TemplateStatus::Rejected => ("rejected", "bad"),
    }
}

const SAMPLE_DATA: &str = r#"{"name": "Ann", "code": "123456"}"#;

/// The account's templates.
pub(crate) async fn list(page: Page) -> Result<Response, ConsoleError> {
    let p = page.core().list_templates(page.account()?, 0, 100).await?;
    let templates: Vec<_> = p
        .templates
        .iter()
        .map(|t| {
            let (st, badge) = status(t.status);
            json!({ "id": t.id, "name": t.name, "category": t.category, "status": st, "badge": badge, "reason": t.review_reason })
        })
        .collect();
    page.render("templates.html", "templates", json!({ "templates": templates }))
        .await
}

/// The form of a new template.
pub(crate) async fn new_form(page: Page) -> Result<Response, ConsoleError> {
    page.account()?;
    let t = json!({ "name": "", "category": "notification", "html": "<p>Hello {{name}}, your code is {{code}}.</p>", "text": "Hello {{name}}, your code is {{code}}.", "data": SAMPLE_DATA, "subject": "Your code {{code}}" });
    page.render("template_edit.html", "templates", json!({ "t": t })).await
}

/// One template, editable, with its review state.
pub(crate) async fn edit(page: Page, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    let t = page
        .core()
        .template(page.account()?, id)
        .await
        .map_err(|_| ConsoleError::NotFound)?;
    let (st, badge) = status(t.status);
    let t = json!({
        "id": t.id, "name": t.name, "category": t.category, "html": t.html, "text": t.text, "status": st,
        "badge": badge, "reason": t.review_reason, "data": SAMPLE_DATA, "subject": "",
    });
    page.render("template_edit.html", "templates", json!({ "t": t })).await
}

#[derive(Deserialize)]
pub(crate) struct TemplateForm {
    name: String,
    category: Option<String>,
    html: Option<String>,
    text: Option<String>,
}

impl TemplateForm {
    fn input(self) -> TemplateInput {
        let body = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(|s| s.replace("\r\n", "\n"));
        TemplateInput {
            name: Some(self.name),
            content: Some((body(self.html), body(self.text))),
            category: self.category,
        }
    }
}

/// Creates a template (reviewed at once).
pub(crate) async fn create(page: Page, Form(f): Form<TemplateForm>) -> Result<Response, ConsoleError> {
    match page.core().create_template(page.account()?, f.input()).await {
        Ok(id) => after(
            &format!("/templates/{id}"),
            Ok(format!("#{id} {}", page.lang.t("saved"))),
        ),
        Err(e) => after("/templates/new", Err(e)),
    }
}

/// Saves an edit (reviewed again).
pub(crate) async fn update(
    page: Page,
    Path(id): Path<i64>,
    Form(f): Form<TemplateForm>,
) -> Result<Response, ConsoleError> {
    let r = page.core().update_template(page.account()?, id, f.input()).await;
    after(&format!("/templates/{id}"), r.map(|_| page.lang.t("saved").to_string()))
}

/// Deletes a template.
pub(crate) async fn delete(page: Page, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    let r = page.core().delete_template(page.account()?, id).await;
    match r {
        Ok(()) => after("/templates", Ok(format!("#{id}: {}", page.lang.t("delete")))),
        Err(e) => after(&format!("/templates/{id}"), Err(e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct PreviewForm {
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    data: Option<String>,
}

/// The live preview: the content rendered with the sample data as a send would render it (JSON).
pub(crate) async fn preview(page: Page, Form(f): Form<PreviewForm>) -> Response {
    let body = |s: &Option<String>| s.as_deref().filter(|s| !s.trim().is_empty()).map(str::to_string);
    let r = page.core().preview_template(
        f.subject.as_deref().unwrap_or(""),
        body(&f.html).as_deref(),
        body(&f.text).as_deref(),
        f.data.as_deref().unwrap_or(""),
    );
    Json(match r {
        Ok(c) => json!({ "subject": c.subject, "html": c.html, "text": c.text }),
        Err(e) => json!({ "error": e.to_api().message }),
    })
    .into_response()
}

/// The operator's queue: templates waiting for review, every account.
pub(crate) async fn review_queue(page: Page) -> Result<Response, ConsoleError> {
    if !page.operator() {
        return Err(ConsoleError::NotFound);
    }
    let accounts = page.core().list_accounts().await?;
    let mut pending = Vec::new();
    for s in page.core().admin_templates(true).await? {
        let t = page.core().admin_template(s.id).await?;
        let account = accounts.iter().find(|a| a.id == t.account_id).map(|a| a.name.clone());
        pending.push(json!({
            "id": t.id, "name": t.name, "category": t.category, "version": t.version, "html": t.html,
            "text": t.text, "reason": t.review_reason, "account": account,
        }));
    }
    page.render("review.html", "review", json!({ "pending": pending }))
        .await
}

#[derive(Deserialize)]
pub(crate) struct ReviewForm {
    decision: String,
    version: Option<i64>,
    reason: Option<String>,
}

/// Approves or rejects (with a reason) one template, if its content is still the version shown.
pub(crate) async fn review(
    page: Page,
    Path(id): Path<i64>,
    Form(f): Form<ReviewForm>,
) -> Result<Response, ConsoleError> {
    if !page.operator() {
        return Err(ConsoleError::NotFound);
    }
    let r = if f.decision == "approve" {
        page.core()
            .approve_template(id, f.version)
            .await
            .map(|_| format!("#{id}: {}", page.lang.t("approved")))
    } else {
        page.core()
            .reject_template(id, f.version, f.reason.as_deref().unwrap_or(""))
            .await
            .map(|_| format!("#{id}: {}", page.lang.t("rejected")))
    };
    after("/review", r)
}
