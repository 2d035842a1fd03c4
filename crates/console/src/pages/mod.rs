//! The pages: each handler reads a form or query, calls the core, and renders a template or redirects with a
//! one-shot message.

pub(crate) mod batch;
pub(crate) mod domains;
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
    mailpush_core::batch::format_time(ms).chars().take(10).collect()
}
