//! The dev mailbox (`mailpush serve --dev` only): every mail delivered in dev mode, as received, with the DKIM
//! verdict computed against the dev DNS. Not found outside dev mode.

use crate::ConsoleError;
use crate::auth::Page;
use axum::extract::{Path, Query};
use axum::response::Response;
use mailpush_devmail::{DkimChecker, Mailbox};
use serde::Deserialize;
use serde_json::json;

/// The dev mailbox, when this process runs in dev mode.
fn mailbox(page: &Page) -> Result<Mailbox, ConsoleError> {
    let s = page.core().settings();
    if !s.dev_mode {
        return Err(ConsoleError::NotFound);
    }
    Mailbox::open(s.data_dir.join("mailbox")).map_err(|e| {
        tracing::warn!(error = %e, "dev mailbox unavailable");
        ConsoleError::NotFound
    })
}

/// The newest messages.
pub(crate) async fn list(page: Page) -> Result<Response, ConsoleError> {
    let mb = mailbox(&page)?;
    let (messages, error) = match mb.list(200).await {
        Ok(m) => (m, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    page.render(
        "mailbox.html",
        "mailbox",
        json!({ "messages": messages, "error": error }),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct ViewQuery {
    view: Option<String>,
}

/// One message: HTML, text, raw or headers, and its DKIM verdicts.
pub(crate) async fn show(
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, ConsoleError> {
    let mb = mailbox(&page)?;
    let dkim = DkimChecker::new(&page.core().settings().dns_servers).map_err(|e| {
        tracing::warn!(error = %e, "dev mailbox: no DKIM resolver");
        ConsoleError::NotFound
    })?;
    let m = mb.detail(&id, &dkim).await.map_err(|_| ConsoleError::NotFound)?;
    let view = match q.view.as_deref() {
        Some(v @ ("text" | "raw" | "headers")) => v,
        _ if m.html.is_empty() => "text",
        _ => "html",
    };
    page.render("mailbox_message.html", "mailbox", json!({ "m": m, "view": view }))
        .await
}
