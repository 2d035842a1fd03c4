//! The HTTP front end: Tencent Cloud SES API 2020-10-02 on `POST /` (action in `X-TC-Action`, TC3-HMAC-SHA256
//! auth), plus `/healthz`, `/livez`, `/readyz` and `/metrics`. It decodes the wire format (JSON types, base64) and leaves every
//! business rule to `mailpush_core`, so SMTP and HTTP refuse the same things.

#![warn(missing_docs)]

mod actions;
mod dev;
mod json;
pub mod node;
mod public;
pub mod server;
pub mod tc3;
mod telemetry;
pub mod tls;

pub use server::{HttpLimits, serve_router, serve_router_tls};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailpush_core::Mailpush;
use mailpush_model::{ApiError, ErrorCode};
use std::pin::Pin;
use std::time::Duration;

/// The API version mailpush speaks.
pub const API_VERSION: &str = "2020-10-02";
/// Largest request body accepted (Tencent's limit).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most bytes of an oversize request body read (and discarded) before it is refused.
///
/// HTTP clients such as the Tencent SDKs write the whole request before they read the reply. A server that
/// answers after 8 MB and closes while the rest is still arriving has unread data in its socket, so the
/// kernel resets the connection and the client typically reports a network error instead of
/// `RequestSizeLimitExceeded`. Reading the rest first (what nginx and Apache call a lingering close) lets
/// the client read the reply; the bound, and [`DRAIN_TIMEOUT`], keep a client from making the server read
/// without end: past it, or when `Content-Length` already says more, the reply is sent at once and the
/// connection closed.
pub const MAX_DRAIN_BYTES: usize = 2 * MAX_BODY_BYTES;
/// How long draining an oversize body may take (see [`MAX_DRAIN_BYTES`]).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    core: Mailpush,
    /// [`HttpLimits::body_timeout`].
    body_timeout: Duration,
}

/// The full router: the Tencent action API, the AWS SES v2 API, health and metrics.
pub fn router(core: Mailpush) -> Router {
    probe_routes()
        .route("/", post(action))
        .merge(public::routes())
        .with_state(AppState::new(core.clone()))
        // The AWS SES v2 front end (`/v2/email/…`) beside the Tencent action API.
        .merge(mailpush_sesv2::router(core.clone()))
        // `mailpush serve --dev` only: the dev mailbox as JSON.
        .merge(dev::routes(&core))
        // The web console: its own pages and state, the same core.
        .merge(mailpush_console::mounted(core))
}

/// The admin router of the nodes that serve no API (`mailpush-worker`, `mailpush-smtp`, on `admin_listen`):
/// liveness, readiness, health and metrics, answered as on the API listener.
pub fn admin_router(core: Mailpush) -> Router {
    probe_routes().with_state(AppState::new(core))
}

/// Liveness, readiness, health and metrics: the routes every node serves.
fn probe_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/livez", get(live))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

impl AppState {
    fn new(core: Mailpush) -> AppState {
        AppState {
            body_timeout: HttpLimits::from_settings(core.settings()).body_timeout,
            core,
        }
    }
}

/// Serves [`admin_router`] on an already bound listener until `shutdown` resolves, with the API's connection
/// limits.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    core: Mailpush,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = HttpLimits::from_settings(core.settings());
    let refresher = core.start_metrics_refresher();
    let served = serve_router(listener, admin_router(core), limits, shutdown).await;
    refresher.shutdown().await;
    served
}

/// Serves `router` on an already bound listener until `shutdown` resolves, with the connection limits of
/// the settings (`api_max_connections`, `api_header_timeout_secs`, `api_idle_timeout_secs`; see [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Mailpush,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = HttpLimits::from_settings(core.settings());
    let tls = tls::ApiTls::from_settings(core.settings()).map_err(std::io::Error::other)?;
    let refresher = core.start_metrics_refresher();
    let served = serve_router_tls(listener, router(core), limits, tls, shutdown).await;
    refresher.shutdown().await;
    served
}

fn json_response(value: serde_json::Value) -> Response {
    // The SDK only parses replies whose Content-Type is exactly `application/json`, and expects HTTP 200 even for errors.
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn error_response(err: &ApiError, request_id: &str) -> Response {
    json_response(serde_json::json!({
        "Response": { "Error": { "Code": err.code.as_str(), "Message": err.message }, "RequestId": request_id }
    }))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Why a request body could not be read.
#[derive(Debug)]
enum BodyError {
    /// More than [`MAX_BODY_BYTES`].
    TooLarge,
    /// The connection failed mid-body (usually the client went away).
    Read(axum::Error),
}

/// The next data chunk of `body` (`None` at its end); trailers are skipped.
async fn next_chunk(body: &mut Body) -> Option<Result<axum::body::Bytes, axum::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Reads and discards `body` until its end, [`MAX_DRAIN_BYTES`] in all (`already` counted) or
/// [`DRAIN_TIMEOUT`], whichever comes first. Best effort: any failure just ends it.
async fn drain(mut body: Body, already: usize) {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut total = already;
        while let Some(Ok(chunk)) = next_chunk(&mut body).await {
            total = total.saturating_add(chunk.len());
            if total > MAX_DRAIN_BYTES {
                return false;
            }
        }
        true
    })
    .await;
    if !matches!(drained, Ok(true)) {
        tracing::debug!("oversize request body not read to its end; the connection will be closed");
    }
}

/// The request body, at most [`MAX_BODY_BYTES`]. An oversize body is drained (within bounds) before the
/// refusal so that the client can read it; see [`MAX_DRAIN_BYTES`].
async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, BodyError> {
    let declared = header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > MAX_BODY_BYTES as u64) {
        // Too large before a byte is read. Drain only what the bound allows; beyond it, answer now.
        if len <= MAX_DRAIN_BYTES as u64 {
            drain(body, 0).await;
        }
        return Err(BodyError::TooLarge);
    }
    // Trust the declared length for the first allocation only up to a point: declaring 8 MB costs the
    // client nothing.
    let capacity = declared.map_or(0, |len| len as usize).min(256 * 1024);
    let mut out = Vec::with_capacity(capacity);
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            // Chunked (or lying about its length): learnt only while reading.
            drain(body, out.len() + chunk.len()).await;
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn action(State(state): State<AppState>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let name = header_str(req.headers(), "x-tc-action").map(str::to_owned);
    let request_id = mailpush_model::ids::request_id();
    let mut account = None;
    let (response, code) = answer(state, req, &request_id, &mut account).await;
    telemetry::request(name.as_deref(), code, started);
    // One record per request, with the RequestId the client got.
    tracing::info!(
        target: "mailpush::api",
        action = telemetry::action_label(name.as_deref()),
        account = account.as_deref().unwrap_or("-"),
        request_id = %request_id,
        code = code.map_or("Success", ErrorCode::as_str),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "api request"
    );
    response
}

/// The reply to an action request, and its error code (`None` = success) for the metrics; `account` gets the
/// authenticated account's name.
async fn answer(
    state: AppState,
    req: Request,
    request_id: &str,
    account: &mut Option<String>,
) -> (Response, Option<ErrorCode>) {
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(state.body_timeout, read_body(&parts.headers, body)).await {
        Ok(Ok(b)) => b,
        Err(_) => {
            // A body trickling in must not hold the connection: refuse, and close after the reply.
            tracing::debug!("request body not complete in time");
            let e = ApiError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "the request body did not arrive within {} s",
                    state.body_timeout.as_secs()
                ),
            );
            let mut response = error_response(&e, request_id);
            response
                .headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return (response, Some(e.code));
        }
        Ok(Err(BodyError::TooLarge)) => {
            let e = ApiError::new(
                ErrorCode::RequestSizeLimitExceeded,
                "the request body is larger than 8 MB",
            );
            return (error_response(&e, request_id), Some(e.code));
        }
        Ok(Err(BodyError::Read(err))) => {
            // Almost always a client that went away: the reply is likely never read, but is still well-formed.
            tracing::debug!(error = %err, "reading the request body failed");
            let e = ApiError::new(
                ErrorCode::InvalidParameter,
                format!("the request body could not be read: {err}"),
            );
            return (error_response(&e, request_id), Some(e.code));
        }
    };
    let result = handle(&state.core, &parts.method, &parts.uri, &parts.headers, &body, account).await;
    match result {
        Ok(mut value) => {
            if let Some(obj) = value.as_object_mut() {
                obj.insert("RequestId".into(), request_id.into());
            }
            (json_response(serde_json::json!({ "Response": value })), None)
        }
        Err(e) => (error_response(&e, request_id), Some(e.code)),
    }
}

async fn handle(
    core: &Mailpush,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    account: &mut Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let ctx = authenticate(core, method, uri, headers, body).await?;
    *account = Some(ctx.name.clone());
    let version = header_str(headers, "x-tc-version")
        .ok_or_else(|| ApiError::new(ErrorCode::MissingParameter, "X-TC-Version is required"))?;
    if version != API_VERSION {
        return Err(ApiError::new(
            ErrorCode::NoSuchVersion,
            format!("version {version} is not supported; use {API_VERSION}"),
        ));
    }
    let action = header_str(headers, "x-tc-action")
        .ok_or_else(|| ApiError::new(ErrorCode::MissingParameter, "X-TC-Action is required"))?;
    let params: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        json::parse_strict(body).map_err(|e| match e {
            json::JsonError::DuplicateKey(key) => ApiError::new(
                ErrorCode::InvalidParameter,
                format!("the request body names the parameter {key} more than once"),
            ),
            json::JsonError::Syntax(e) => ApiError::new(
                ErrorCode::InvalidParameter,
                format!("the request body is not valid JSON: {e}"),
            ),
        })?
    };
    if !params.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "the request body must be a JSON object",
        ));
    }
    actions::dispatch(core, &ctx, action, params).await
}

async fn authenticate(
    core: &Mailpush,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<mailpush_core::AccountContext, ApiError> {
    use tc3::SignatureError;
    let auth_header = header_str(headers, "authorization").ok_or_else(|| {
        ApiError::new(
            ErrorCode::AuthFailureSignatureFailure,
            "the Authorization header is missing",
        )
    })?;
    let auth = tc3::Authorization::parse(auth_header)
        .map_err(|e| ApiError::new(ErrorCode::AuthFailureInvalidAuthorization, e.to_string()))?;
    let timestamp: i64 = header_str(headers, "x-tc-timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::AuthFailureSignatureFailure,
                SignatureError::BadTimestamp.to_string(),
            )
        })?;
    let now = core.now_ms() / 1000;
    let skew = core.settings().api_clock_skew_secs;
    if (now - timestamp).abs() > skew {
        let e = SignatureError::Expired { timestamp, now, skew };
        return Err(ApiError::new(ErrorCode::AuthFailureSignatureExpire, e.to_string()));
    }
    if auth.date != tc3::scope_date(timestamp) {
        return Err(ApiError::new(
            ErrorCode::AuthFailureSignatureFailure,
            "the credential date does not match X-TC-Timestamp (UTC)",
        ));
    }
    let (ctx, secret_key) = match core.credential(&auth.secret_id).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Err(ApiError::new(
                ErrorCode::AuthFailureSecretIdNotFound,
                "the SecretId does not exist",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "loading credentials failed");
            return Err(e.to_api());
        }
    };
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = header_str(headers, name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::AuthFailureSignatureFailure,
                format!("signed header {name} is missing"),
            )
        })?;
        signed.push((name.clone(), value.to_string()));
    }
    let unsigned = header_str(headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD");
    let req = tc3::SignedRequest {
        method: method.as_str(),
        uri: uri.path(),
        query: if method == axum::http::Method::GET {
            uri.query().unwrap_or("")
        } else {
            ""
        },
        headers: signed,
        payload: if unsigned { None } else { Some(body) },
        timestamp,
        date: &auth.date,
        service: &auth.service,
    };
    let mut outcome = tc3::verify(&req, &auth, &secret_key, now, skew);
    if matches!(outcome, Err(SignatureError::Mismatch)) {
        // The official Node.js SDK signs `host:` with the URL's host name without its port (Tencent's endpoints
        // use the default port), while its Host header carries the port: accept that signature too.
        let mut portless = req.clone();
        let mut changed = false;
        for (name, value) in &mut portless.headers {
            if name == "host"
                && let Some((hostname, port)) = value.rsplit_once(':')
                && !hostname.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
            {
                *value = hostname.to_string();
                changed = true;
            }
        }
        if changed {
            outcome = tc3::verify(&portless, &auth, &secret_key, now, skew);
        }
    }
    outcome.map_err(|e| match e {
        SignatureError::Expired { .. } => ApiError::new(ErrorCode::AuthFailureSignatureExpire, e.to_string()),
        _ => ApiError::new(ErrorCode::AuthFailureSignatureFailure, e.to_string()),
    })?;
    Ok(ctx)
}

/// `/healthz`: readiness under its historical name (`{"status":"ok"}` or 503 with what failed).
async fn health(State(state): State<AppState>) -> Response {
    ready(State(state)).await
}

/// `/livez`: the process answers (no database involved), so a supervisor restarts only a hung process.
async fn live() -> Response {
    json_response(serde_json::json!({ "status": "ok" }))
}

/// `/readyz`: 200 when the database is reachable and writable, the disk is not full and the process is not
/// shutting down; 503 with the failed checks otherwise. Bounded by the probe timeout, never the network's.
async fn ready(State(state): State<AppState>) -> Response {
    let r = state.core.readiness().await;
    let status = if r.ready { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "status": status,
        "checks": { "database": r.database, "write": r.write, "disk": r.disk, "process": r.process },
    });
    if r.ready {
        json_response(body)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// `/metrics`: the process's recorder, then screening's counters. Database gauges come from core's refresher
/// (`metrics_refresh_secs`), so a scrape never queries the database.
async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = mailpush_telemetry::render();
    text.push_str(&state.core.screening_metrics());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}
