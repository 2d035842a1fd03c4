//! The pages: each handler reads a form or query, calls the core, and renders a template or redirects with a
//! one-shot message.

pub(crate) mod batch;
pub(crate) mod check;
pub(crate) mod domains;
pub(crate) mod keys;
pub(crate) mod mailbox;
pub(crate) mod messages;
pub(crate) mod settings;
pub(crate) mod stats;
pub(crate) mod templates;

use crate::auth::redirect_with;
use crate::{ConsoleError, MOUNT};
use axum::response::Response;
use mailpush_core::CoreError;

/// After a POST: back to `to` (under the mount) with `ok` as the message, or the core's refusal.
pub(crate) fn after(to: &str, result: Result<String, CoreError>) -> Result<Response, ConsoleError> {
    let to = format!("{MOUNT}{to}");
    Ok(match result {
        Ok(message) => redirect_with(&to, true, &message),
        Err(CoreError::Refused(e)) => redirect_with(&to, false, &format!("{}: {}", e.code.as_str(), e.message)),
        Err(e) => return Err(ConsoleError::Core(e)),
    })
}

/// The UTC day of a Unix ms instant, `YYYY-MM-DD`.
pub(crate) fn day(ms: i64) -> String {
    mailpush_core::format_time(ms).chars().take(10).collect()
}

/// The account's sender addresses and templates (`{id, name}`), for the forms that send.
pub(crate) async fn senders_and_templates(
    core: &mailpush_core::Mailpush,
    account: &mailpush_core::AccountContext,
) -> Result<(Vec<String>, Vec<serde_json::Value>), ConsoleError> {
    let senders = core
        .list_senders(account)
        .await?
        .into_iter()
        .map(|s| s.address)
        .collect();
    let templates = core
        .list_templates(account, 0, 100)
        .await?
        .templates
        .into_iter()
        .map(|t| serde_json::json!({ "id": t.id, "name": t.name }))
        .collect();
    Ok((senders, templates))
}
