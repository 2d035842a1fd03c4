//! Public engagement endpoints (no TC3 auth: the token is the credential): the open pixel `GET /t/o/{token}`,
//! click redirects `GET /t/c/{token}` and unsubscribe `GET /u/{token}` (confirmation page) /
//! `POST /u/{token}` (RFC 8058 one-click, and the page's button). A forged, tampered or foreign token → 404,
//! never a redirect to a URL mailpush did not sign.

use crate::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// A transparent 1×1 GIF.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe_post))
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "not found\n",
    )
        .into_response()
}

fn server_error(e: mailpush_core::CoreError) -> Response {
    tracing::error!(error = %e, "tracking endpoint failed");
    (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response()
}

fn no_store() -> (header::HeaderName, &'static str) {
    (header::CACHE_CONTROL, "no-store, private")
}

async fn open(State(s): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    match s.core.track_open(&token, user_agent(&headers)).await {
        Ok(true) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/gif"), no_store()],
            PIXEL_GIF,
        )
            .into_response(),
        Ok(false) => not_found(),
        Err(e) => server_error(e),
    }
}

async fn click(State(s): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    match s.core.track_click(&token, user_agent(&headers)).await {
        Ok(Some(url)) => (StatusCode::FOUND, [(header::LOCATION, url.as_str()), no_store()]).into_response(),
        Ok(None) => not_found(),
        Err(e) => server_error(e),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), no_store()],
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
             <title>Unsubscribe</title></head><body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\">\
             {body}</body></html>"
        ),
    )
        .into_response()
}

async fn unsubscribe_page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    // GET never unsubscribes: link scanners and prefetchers follow links.
    match s.core.unsubscribe_info(&token) {
        Some(info) => page(format!(
            "<p>Unsubscribe <b>{}</b> from mail sent by <b>{}</b>?</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape(&info.recipient),
            escape(&info.domain)
        )),
        None => not_found(),
    }
}

async fn unsubscribe_post(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match s.core.unsubscribe(&token).await {
        Ok(Some(info)) => page(format!(
            "<p><b>{}</b> will no longer receive mail sent by <b>{}</b>.</p>",
            escape(&info.recipient),
            escape(&info.domain)
        )),
        Ok(None) => not_found(),
        Err(e) => server_error(e),
    }
}
