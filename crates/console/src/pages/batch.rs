//! Batch sending: recipient lists (CSV upload with valid / invalid counts) and tasks with live progress,
//! pause / resume / cancel.

use super::after;
use crate::ConsoleError;
use crate::auth::Page;
use axum::Form;
use axum::extract::Path;
use axum::response::{IntoResponse, Json, Response};
use mailpush_core::TaskAction;
use mailpush_core::{AccountContext, Mailpush};
use mailpush_core::{BatchRequest, TaskSchedule};
use mailpush_model::batch::SendTaskRow;
use serde::Deserialize;
use serde_json::{Value, json};

async fn lists_json(core: &Mailpush, account: &AccountContext) -> Result<Vec<Value>, ConsoleError> {
    Ok(core
        .list_receivers(account, None, None, 0, 100)
        .await?
        .1
        .iter()
        .map(|l| json!({ "id": l.id, "name": l.name, "valid": l.valid_count, "invalid": l.invalid_count, "created_ms": l.created_ms }))
        .collect())
}

/// The account's recipient lists and the upload form.
pub(crate) async fn lists(page: Page) -> Result<Response, ConsoleError> {
    let lists = lists_json(page.core(), page.account()?).await?;
    page.render("lists.html", "lists", json!({ "lists": lists })).await
}

#[derive(Deserialize)]
pub(crate) struct UploadForm {
    name: String,
    csv: String,
}

/// Imports the CSV into the list (created if missing), as `mailpush receivers import` does.
pub(crate) async fn upload(page: Page, Form(f): Form<UploadForm>) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let lines = f.csv.lines().map(|l| Ok(l.to_string())).collect::<Vec<_>>();
    let r =
        mailpush_admin::receivers::import_lines(page.core(), account, &f.name, lines.into_iter(), &mut |_| {}).await;
    let lang = page.lang;
    match r {
        Ok((_, t)) => after(
            "/lists",
            Ok(format!(
                "{}: {} {}, {} {}",
                f.name.trim(),
                lang.t("valid"),
                t.valid,
                lang.t("invalid"),
                t.invalid + t.too_long
            )),
        ),
        Err(e) => Ok(crate::auth::redirect_with(
            &format!("{}/lists", crate::MOUNT),
            false,
            &e.to_string(),
        )),
    }
}

fn task_json(t: &SendTaskRow) -> Value {
    let total = t.request_count;
    let done = (t.send_count + t.skip_count).min(total.max(0));
    let percent = if total > 0 {
        done * 100 / total
    } else if t.status.code() == 10 {
        100
    } else {
        0
    };
    json!({
        "id": t.id, "subject": t.task.subject, "list": t.receivers_name, "status": t.status.code(),
        "total": total, "done": done, "percent": percent,
    })
}

/// The account's tasks with their progress, and the form of a new one.
pub(crate) async fn tasks(page: Page) -> Result<Response, ConsoleError> {
    let account = page.account()?;
    let (_, rows) = page.core().list_send_tasks(account, None, None, None, 0, 100).await?;
    let (senders, templates) = super::senders_and_templates(page.core(), account).await?;
    let labels: serde_json::Map<String, Value> = [1, 5, 6, 7, 8, 9, 10]
        .iter()
        .map(|s| (s.to_string(), Value::from(page.lang.t(&format!("ts_{s}")))))
        .collect();
    let ctx = json!({
        "tasks": rows.iter().map(task_json).collect::<Vec<_>>(), "lists": lists_json(page.core(), account).await?,
        "senders": senders, "templates": templates, "labels": labels,
    });
    page.render("tasks.html", "tasks", ctx).await
}

/// The tasks' progress as JSON, polled by the tasks page.
pub(crate) async fn progress(page: Page) -> Result<Response, ConsoleError> {
    let (_, rows) = page
        .core()
        .list_send_tasks(page.account()?, None, None, None, 0, 100)
        .await?;
    Ok(Json(rows.iter().map(task_json).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TaskForm {
    from: String,
    receiver: i64,
    template: i64,
    subject: String,
    data: Option<String>,
    kind: Option<i64>,
    begin: Option<String>,
    interval: Option<i64>,
}

/// Starts a batch task (BatchSendEmail).
pub(crate) async fn create_task(page: Page, Form(f): Form<TaskForm>) -> Result<Response, ConsoleError> {
    let begin = f.begin.filter(|b| !b.trim().is_empty());
    let schedule = match f.kind.unwrap_or(1) {
        2 => TaskSchedule::Timed { begin },
        3 => TaskSchedule::Cycle {
            begin,
            interval_hours: f.interval,
            term_cycle: None,
        },
        _ => TaskSchedule::Immediate,
    };
    let req = BatchRequest {
        from: f.from,
        receiver_id: Some(f.receiver),
        subject: f.subject,
        reply_to: None,
        template_id: Some(f.template),
        template_data: f.data.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| "{}".into()),
        schedule,
        unsubscribe: None,
        ad_location: 0,
    };
    let r = page.core().batch_send_email(page.account()?, req).await;
    after("/tasks", r.map(|id| format!("#{id} {}", page.lang.t("ts_1"))))
}

/// Pause, resume or cancel.
pub(crate) async fn control(page: Page, Path((id, action)): Path<(i64, String)>) -> Result<Response, ConsoleError> {
    let action = match action.as_str() {
        "pause" => TaskAction::Pause,
        "resume" => TaskAction::Resume,
        "cancel" => TaskAction::Cancel,
        _ => return Err(ConsoleError::NotFound),
    };
    let r = page.core().control_send_task(page.account()?, id, action).await;
    after("/tasks", r.map(|()| format!("#{id} ✓")))
}
