//! `mailpush batch list` and `mailpush batch status`: an account's batch tasks (`BatchSendEmail`) and their
//! progress.

use crate::table::render;
use crate::{AdminError, Report, account_context, datetime};
use mailpush_core::Mailpush;
use mailpush_model::batch::SendTaskRow;
use serde_json::json;

/// Most tasks one listing shows (the newest).
const LISTED: i64 = 100;

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "to start",
        5 => "sending",
        6 => "paused (daily quota)",
        7 => "error",
        10 => "done",
        _ => "unknown",
    }
}

fn task_json(t: &SendTaskRow) -> serde_json::Value {
    json!({
        "TaskId": t.id, "TaskStatus": t.status.code(), "ReceiversId": t.task.receiver_id,
        "FromEmailAddress": t.task.from_address, "Subject": t.task.subject, "RequestCount": t.request_count,
        "SendCount": t.send_count, "CacheCount": t.cache_count, "SkipCount": t.skip_count, "ErrMsg": t.err_msg,
        "UpdateTime": datetime(t.updated_ms),
    })
}

/// Whether a task has nothing more to do (done or failed).
pub fn finished(t: &SendTaskRow) -> bool {
    matches!(t.status.code(), 7 | 10)
}

/// The account's batch tasks, newest first.
pub async fn list(core: &Mailpush, account: &str) -> Result<Report, AdminError> {
    let ctx = account_context(core, account).await?;
    let (total, tasks) = core.list_send_tasks(&ctx, None, None, None, 0, LISTED).await?;
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                status_name(t.status.code()).to_string(),
                t.request_count.to_string(),
                t.send_count.to_string(),
                t.cache_count.to_string(),
                t.skip_count.to_string(),
                datetime(t.updated_ms),
                t.task.subject.clone(),
            ]
        })
        .collect();
    let text = render(
        &[
            "ID",
            "STATUS",
            "REQUESTED",
            "SENT",
            "CACHED",
            "SKIPPED",
            "UPDATED",
            "SUBJECT",
        ],
        &rows,
        30,
    );
    Ok(Report::new(
        text,
        json!({ "TotalCount": total, "Data": tasks.iter().map(task_json).collect::<Vec<_>>() }),
    ))
}

/// One task of the account, for `batch status` (and its `--follow` loop).
pub async fn task(core: &Mailpush, account: &str, id: i64) -> Result<SendTaskRow, AdminError> {
    let ctx = account_context(core, account).await?;
    let mut offset = 0;
    loop {
        let (total, tasks) = core.list_send_tasks(&ctx, None, None, None, offset, LISTED).await?;
        if let Some(t) = tasks.into_iter().find(|t| t.id == id) {
            return Ok(t);
        }
        offset += LISTED;
        if offset >= total {
            return Err(AdminError::Invalid(format!("{account} has no batch task {id}")));
        }
    }
}

/// A task's progress as a report.
pub fn status(t: &SendTaskRow) -> Report {
    Report::new(
        format!(
            "task {}: {}; {} of {} recipients sent, {} cached for tomorrow, {} skipped{}",
            t.id,
            status_name(t.status.code()),
            t.send_count,
            t.request_count,
            t.cache_count,
            t.skip_count,
            if t.err_msg.is_empty() {
                String::new()
            } else {
                format!("; {}", t.err_msg)
            }
        ),
        task_json(t),
    )
}
