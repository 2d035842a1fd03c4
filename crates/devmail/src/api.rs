//! The mailbox as JSON: `GET /dev/mailbox/messages` (newest first, `?limit=`) and
//! `GET /dev/mailbox/messages/{id}` (headers, text, HTML, raw and the DKIM verdicts).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::{DevMailError, DkimChecker, Mailbox, MessageDetail, MessageSummary};

/// Where the JSON API is mounted.
pub const ROUTE_PREFIX: &str = "/dev/mailbox";

/// Most messages one listing returns.
const MAX_LIST: usize = 1000;

#[derive(Clone)]
struct DevState {
    mailbox: Mailbox,
    dkim: Arc<DkimChecker>,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Listing {
    messages: Vec<MessageSummary>,
}

struct ApiError(DevMailError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            DevMailError::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(serde_json::json!({ "error": self.0.to_string() }))).into_response()
    }
}

/// The JSON API over `mailbox`, verifying DKIM with `dkim`; routes start with [`ROUTE_PREFIX`].
pub fn router<S: Clone + Send + Sync + 'static>(mailbox: Mailbox, dkim: Arc<DkimChecker>) -> Router<S> {
    Router::new()
        .route(&format!("{ROUTE_PREFIX}/messages"), get(list))
        .route(&format!("{ROUTE_PREFIX}/messages/{{id}}"), get(one))
        .with_state(DevState { mailbox, dkim })
}

async fn list(State(s): State<DevState>, Query(q): Query<ListQuery>) -> Result<Json<Listing>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let messages = s.mailbox.list(limit).await.map_err(ApiError)?;
    Ok(Json(Listing { messages }))
}

async fn one(State(s): State<DevState>, Path(id): Path<String>) -> Result<Json<MessageDetail>, ApiError> {
    Ok(Json(s.mailbox.detail(&id, &s.dkim).await.map_err(ApiError)?))
}
