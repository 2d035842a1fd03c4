//! The mailpush web console: server-rendered pages for tenants (their console users) and the operator, served
//! by the API process under `/console/`. Every page acts through the same [`Mailpush`] methods as the API, so no
//! rule lives here; this crate only turns forms into calls and results into HTML (minijinja templates and one
//! CSS and one JS file, all embedded in the binary).
//!
//! Security: sessions are random cookies (HttpOnly, SameSite=Strict, Secure behind TLS) stored hashed by the
//! core; every POST carries the session's CSRF token (the sign-in form a double-submit cookie) or is refused
//! with 403 before any handler runs; failed sign-ins are throttled per client address and username.

#![warn(missing_docs)]

mod auth;
mod chart;
pub mod i18n;
mod pages;
mod view;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailpush_core::{CoreError, Mailpush};
use std::sync::Arc;

/// The path the console is mounted at.
pub const MOUNT: &str = "/console";

/// Largest form the console accepts (a pasted or uploaded recipient list).
pub const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;

/// The page of an object that does not exist for this user (both languages: the error carries no request).
const NOT_FOUND_PAGE: &str = concat!(
    r#"<!doctype html><html><head><meta charset="utf-8"><title>404 · mailpush</title>"#,
    r#"<link rel="stylesheet" href="/console/assets/console.css"></head><body class="center"><div class="card">"#,
    r#"<h1>404</h1><p id="not-found">not found · 未找到</p><a href="/console">mailpush</a></div></body></html>"#
);

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) core: Mailpush,
    pub(crate) views: Arc<view::Views>,
    pub(crate) limiter: Arc<auth::SignInLimiter>,
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The core refused or failed.
    #[error("{0}")]
    Core(#[from] CoreError),
    /// A template failed to render (a bug).
    #[error("rendering: {0}")]
    Render(#[from] minijinja::Error),
    /// Not signed in (or the session ended).
    #[error("sign in first")]
    SignIn,
    /// The page or object does not exist for this user.
    #[error("not found")]
    NotFound,
    /// An operator who has not chosen an account opened an account's page.
    #[error("choose an account")]
    NoAccount,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignIn => auth::to_sign_in(),
            ConsoleError::NotFound => (StatusCode::NOT_FOUND, axum::response::Html(NOT_FOUND_PAGE)).into_response(),
            ConsoleError::NoAccount => axum::response::Redirect::to(&format!("{MOUNT}/review")).into_response(),
            ConsoleError::Core(e) => {
                tracing::warn!(error = %e, "console request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, e.to_api().message).into_response()
            }
            ConsoleError::Render(e) => {
                tracing::error!(error = %e, "console template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
            }
        }
    }
}

/// The console mounted at [`MOUNT`] (`/console` and `/console/` both open it), to be merged into the API router.
pub fn mounted(core: Mailpush) -> Router {
    let start = || async { axum::response::Redirect::to(&format!("{MOUNT}/domains")) };
    Router::new()
        .nest(MOUNT, router(core))
        .route(MOUNT, get(start))
        .route(&format!("{MOUNT}/"), get(start))
}

/// The console's routes, relative to [`MOUNT`].
pub fn router(core: Mailpush) -> Router {
    let app = App {
        core,
        views: Arc::new(view::Views::new()),
        limiter: Arc::new(auth::SignInLimiter::default()),
    };
    Router::new()
        .route("/assets/console.css", get(view::css))
        .route("/assets/console.js", get(view::js))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/act-as", post(auth::act_as))
        .route("/domains", get(pages::domains::list).post(pages::domains::add))
        .route("/domains/{domain}", get(pages::domains::show))
        .route("/domains/{domain}/verify", post(pages::domains::verify))
        .route("/domains/{domain}/delete", post(pages::domains::delete))
        .route("/senders", post(pages::domains::add_sender))
        .route("/senders/password", post(pages::domains::sender_password))
        .route("/senders/delete", post(pages::domains::delete_sender))
        .route("/templates", get(pages::templates::list).post(pages::templates::create))
        .route("/templates/new", get(pages::templates::new_form))
        .route("/templates/preview", post(pages::templates::preview))
        .route(
            "/templates/{id}",
            get(pages::templates::edit).post(pages::templates::update),
        )
        .route("/templates/{id}/delete", post(pages::templates::delete))
        .route("/review", get(pages::templates::review_queue))
        .route("/review/{id}", post(pages::templates::review))
        .route("/send", get(pages::messages::send_form).post(pages::messages::send))
        .route("/check", get(pages::check::form).post(pages::check::check))
        .route("/messages", get(pages::messages::search))
        .route("/messages/{id}", get(pages::messages::timeline))
        .route("/lists", get(pages::batch::lists).post(pages::batch::upload))
        .route("/tasks", get(pages::batch::tasks).post(pages::batch::create_task))
        .route("/tasks/progress", get(pages::batch::progress))
        .route("/tasks/{id}/{action}", post(pages::batch::control))
        .route("/stats", get(pages::stats::show))
        .route(
            "/suppression",
            get(pages::settings::suppression).post(pages::settings::suppression_change),
        )
        .route("/settings", get(pages::settings::show).post(pages::settings::change))
        .route("/settings/keys", get(pages::keys::show).post(pages::keys::change))
        .route("/settings/unsubscribe", post(pages::keys::unsubscribe))
        .route("/mailbox", get(pages::mailbox::list))
        .route("/mailbox/{id}", get(pages::mailbox::show))
        .layer(axum::middleware::from_fn_with_state(app.clone(), auth::csrf_guard))
        .with_state(app)
}
