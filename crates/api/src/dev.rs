//! The dev mailbox's JSON API (`/dev/mailbox/…`), served only by `mailpush serve --dev`.

use axum::Router;
use mailpush_core::Mailpush;
use std::sync::Arc;

/// The dev routes in dev mode; no route otherwise.
pub(crate) fn routes(core: &Mailpush) -> Router {
    let s = core.settings();
    if !s.dev_mode {
        return Router::new();
    }
    let mailbox = mailpush_devmail::Mailbox::open(s.data_dir.join("mailbox"));
    let dkim = mailpush_devmail::DkimChecker::new(&s.dns_servers);
    match (mailbox, dkim) {
        (Ok(mailbox), Ok(dkim)) => mailpush_devmail::router(mailbox, Arc::new(dkim)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "the dev mailbox API is not served");
            Router::new()
        }
    }
}
