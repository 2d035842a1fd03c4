//! The AWS SES v2 API (`/v2/email/…`, REST+JSON) in front of the same core as the Tencent API: the AWS SDKs,
//! the AWS CLI and boto3 work against mailpush by changing only their endpoint URL.
//!
//! Requests are authenticated with Signature Version 4 (`sigv4`): an account's SecretId / SecretKey pair is its
//! access key id / secret access key, any region, service `ses`. Errors are AWS-shaped (`error`). Every rule of
//! admission (verified identity, reviewed templates, suppression, limits, quotas) is core's: the operations here
//! only translate the wire format.

#![warn(missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use mailpush_core::{AccountContext, Mailpush};

mod account;
mod configuration_sets;
mod contacts;
pub mod error;
mod identities;
mod send;
pub mod sigv4;
mod suppression;
mod templates;

pub use error::AwsError;

/// Largest request body (a raw message of 10 MB in base64, with room).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Shared by every operation.
#[derive(Clone)]
pub(crate) struct AppState {
    core: Mailpush,
}

/// The SES v2 routes (`/v2/email/…`), to merge beside the Tencent API's.
pub fn router(core: Mailpush) -> Router {
    Router::new()
        .route("/v2/email/outbound-emails", post(send::send_email))
        .route("/v2/email/outbound-bulk-emails", post(send::send_bulk_email))
        .route("/v2/email/identities", post(identities::create).get(identities::list))
        .route(
            "/v2/email/identities/{identity}",
            get(identities::get).delete(identities::delete),
        )
        .route(
            "/v2/email/identities/{identity}/mail-from",
            put(identities::put_mail_from),
        )
        .route("/v2/email/templates", post(templates::create).get(templates::list))
        .route(
            "/v2/email/templates/{name}",
            get(templates::get).put(templates::update).delete(templates::delete),
        )
        .route("/v2/email/templates/{name}/render", post(templates::test_render))
        .route(
            "/v2/email/suppression/addresses",
            put(suppression::put).get(suppression::list),
        )
        .route(
            "/v2/email/suppression/addresses/{address}",
            get(suppression::get).delete(suppression::delete),
        )
        .route("/v2/email/account", get(account::get_account))
        .route(
            "/v2/email/configuration-sets",
            post(configuration_sets::create).get(configuration_sets::list),
        )
        .route(
            "/v2/email/configuration-sets/{name}",
            get(configuration_sets::get).delete(configuration_sets::delete),
        )
        .route(
            "/v2/email/configuration-sets/{name}/tracking-options",
            put(configuration_sets::put_tracking),
        )
        .route(
            "/v2/email/configuration-sets/{name}/delivery-options",
            put(configuration_sets::put_delivery),
        )
        .route(
            "/v2/email/configuration-sets/{name}/reputation-options",
            put(configuration_sets::put_reputation),
        )
        .route(
            "/v2/email/configuration-sets/{name}/sending",
            put(configuration_sets::put_sending),
        )
        .route(
            "/v2/email/configuration-sets/{name}/suppression-options",
            put(configuration_sets::put_suppression),
        )
        .route(
            "/v2/email/configuration-sets/{name}/event-destinations",
            post(configuration_sets::create_destination).get(configuration_sets::get_destinations),
        )
        .route(
            "/v2/email/configuration-sets/{name}/event-destinations/{dest}",
            put(configuration_sets::update_destination).delete(configuration_sets::delete_destination),
        )
        .route(
            "/v2/email/contact-lists",
            post(contacts::create_list).get(contacts::list_lists),
        )
        .route(
            "/v2/email/contact-lists/{name}",
            get(contacts::get_list)
                .put(contacts::update_list)
                .delete(contacts::delete_list),
        )
        .route(
            "/v2/email/contact-lists/{name}/contacts",
            post(contacts::create_contact),
        )
        .route(
            "/v2/email/contact-lists/{name}/contacts/list",
            get(contacts::list_contacts).post(contacts::list_contacts),
        )
        .route(
            "/v2/email/contact-lists/{name}/contacts/{email}",
            get(contacts::get_contact)
                .put(contacts::update_contact)
                .delete(contacts::delete_contact),
        )
        .route(
            "/v2/email/list-unsubscribe/{token}",
            get(contacts::unsubscribe_page).post(contacts::unsubscribe),
        )
        .route("/v2/email/{*rest}", any(unsupported))
        .with_state(AppState { core })
}

/// An SES v2 path mailpush does not serve (dedicated IPs, deliverability dashboard, import/export jobs, …).
async fn unsupported(uri: axum::http::Uri) -> AwsError {
    AwsError::new(
        axum::http::StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("mailpush does not support the SES v2 operation at {}", uri.path()),
    )
}

/// A request whose SigV4 signature verified: the core to act through, the account and the body.
pub(crate) struct Signed {
    core: Mailpush,
    ctx: AccountContext,
    body: Bytes,
}

impl Signed {
    /// The body as JSON of `T` (an empty body is `{}`).
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, AwsError> {
        let body: &[u8] = if self.body.is_empty() { b"{}" } else { &self.body };
        serde_json::from_slice(body).map_err(|e| AwsError::bad_request(format!("the request body is not valid: {e}")))
    }
}

impl FromRequest<AppState> for Signed {
    type Rejection = AwsError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
            AwsError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "BadRequestException",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes or was cut short"),
            )
        })?;
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AwsError::forbidden("MissingAuthenticationTokenException", "the request is not signed"))?;
        let auth = sigv4::Authorization::parse(header)
            .map_err(|e| AwsError::forbidden("IncompleteSignatureException", e.to_string()))?;
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect();
        let amz_date = headers
            .iter()
            .find(|(n, _)| n == "x-amz-date")
            .and_then(|(_, v)| sigv4::parse_amz_date(v));
        let core = &state.core;
        let now = core.now_ms() / 1000;
        let skew = core.settings().api_clock_skew_secs;
        match amz_date {
            Some(t) if (now - t).abs() <= skew => {}
            _ => {
                return Err(AwsError::forbidden(
                    "InvalidSignatureException",
                    format!(
                        "Signature expired or X-Amz-Date missing: the request time must be within {skew} s of the server's"
                    ),
                ));
            }
        }
        let (ctx, secret) = match core.credential(&auth.access_key_id).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(AwsError::forbidden(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid (unknown access key id)",
                ));
            }
            Err(e) => return Err(AwsError::from_core(e)),
        };
        let signed = sigv4::SignedRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or(""),
            headers,
            body: &body,
        };
        sigv4::verify(&signed, &auth, &secret)
            .map_err(|e| AwsError::forbidden("SignatureDoesNotMatch", e.to_string()))?;
        Ok(Signed {
            core: core.clone(),
            ctx,
            body,
        })
    }
}

/// A signed request on one named resource (`…/{name}`): the resource's name, percent-decoded, and the request.
pub(crate) struct Named {
    name: String,
    signed: Signed,
}

impl std::ops::Deref for Named {
    type Target = Signed;

    fn deref(&self) -> &Signed {
        &self.signed
    }
}

impl FromRequest<AppState> for Named {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Path(raw) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let signed = Signed::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Named {
            name: decode_component(&raw),
            signed,
        })
    }
}

/// Percent-decodes a path or query component (`+` is a space in queries only, never here).
pub(crate) fn decode_component(raw: &str) -> String {
    String::from_utf8_lossy(&sigv4::percent_decode(raw)).into_owned()
}

/// The values of `name` in a raw query string, decoded (`+` = space).
pub(crate) fn query_values(raw: Option<&str>, name: &str) -> Vec<String> {
    raw.unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .filter(|(k, _)| decode_component(k) == name)
        .map(|(_, v)| decode_component(&v.replace('+', " ")))
        .collect()
}

/// `NextToken` / `PageSize` paging over an in-memory list: the token is the decimal offset.
pub(crate) fn page<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    page_size: Option<&str>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let offset: usize = match next_token.filter(|t| !t.is_empty()) {
        Some(t) => t.parse().map_err(|_| AwsError::bad_request("NextToken is not valid"))?,
        None => 0,
    };
    let size: usize = match page_size.filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| AwsError::bad_request("PageSize must be between 1 and 1000"))?,
        None => 100,
    };
    let total = items.len();
    let list: Vec<T> = items.into_iter().skip(offset).take(size).collect();
    let next = (offset + size < total).then(|| (offset + size).to_string());
    Ok((list, next))
}

/// The reply of a `List*` operation: `items` paged by the query's `NextToken` / `PageSize` under `key`, with the
/// next token when more follow.
pub(crate) fn paged_reply(
    key: &str,
    items: Vec<serde_json::Value>,
    query: Option<&str>,
) -> Result<serde_json::Value, AwsError> {
    let token = query_values(query, "NextToken").pop();
    let size = query_values(query, "PageSize").pop();
    let (list, next) = page(items, token.as_deref(), size.as_deref())?;
    let mut reply = serde_json::json!({ key: list });
    if let Some(next) = next {
        reply["NextToken"] = serde_json::json!(next);
    }
    Ok(reply)
}

/// Seconds since the epoch as JSON (AWS timestamps in REST+JSON bodies).
pub(crate) fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
