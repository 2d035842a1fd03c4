//! AWS-style errors: HTTP status, the `x-amzn-ErrorType` header and `{"message": …}`, as the AWS SDKs parse
//! them for the REST+JSON protocol. Core's refusals (Tencent error codes) are translated in one place
//! ([`AwsError::from_core`]).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mailpush_model::{ApiError, ErrorCode};

/// An SES v2 error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct AwsError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error type (`BadRequestException`, `NotFoundException`, …).
    pub kind: &'static str,
    /// For a person.
    pub message: String,
}

impl AwsError {
    /// An error of `kind` with `status`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// `BadRequestException` (400).
    pub fn bad_request(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    /// `NotFoundException` (404).
    pub fn not_found(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::NOT_FOUND, "NotFoundException", message)
    }

    /// A signature refusal (403); `kind` is `SignatureDoesNotMatch`, `UnrecognizedClientException`, ….
    pub fn forbidden(kind: &'static str, message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::FORBIDDEN, kind, message)
    }

    /// The AWS error of a core refusal, by its Tencent code: one table for every operation.
    pub fn from_api(e: &ApiError) -> AwsError {
        let code = e.code.as_str();
        let message = e.message.clone();
        let (status, kind) = match e.code {
            ErrorCode::FailedOperationHighRejectionRate => (StatusCode::BAD_REQUEST, "SendingPausedException"),
            // Content screening (virus, content review, spam score): a refused message, not a conflict.
            ErrorCode::OperationDenied => (StatusCode::BAD_REQUEST, "MessageRejected"),
            _ if code.contains("NotExist") || code.contains("NotFound") => (StatusCode::NOT_FOUND, "NotFoundException"),
            _ if code.contains("Repeat") || code.contains("CreatedByOther") || code.contains("AlreadyExist") => {
                (StatusCode::BAD_REQUEST, "AlreadyExistsException")
            }
            _ if code.starts_with("LimitExceeded")
                || code.contains("FrequencyLimit")
                || code.contains("ExceedSendLimit")
                || code.contains("TooManyRequests") =>
            {
                (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException")
            }
            _ if code.contains("Exceed") => (StatusCode::BAD_REQUEST, "LimitExceededException"),
            _ if code.starts_with("OperationDenied") => (StatusCode::CONFLICT, "ConflictException"),
            _ if code.starts_with("InternalError") => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
            _ if code.starts_with("FailedOperation") => (StatusCode::BAD_REQUEST, "MessageRejected"),
            _ => (StatusCode::BAD_REQUEST, "BadRequestException"),
        };
        AwsError::new(status, kind, format!("{message} ({code})"))
    }

    /// The AWS error of a core failure.
    pub fn from_core(e: mailpush_core::CoreError) -> AwsError {
        if !e.is_refusal() {
            tracing::error!(error = %e, "SES v2 request failed");
        }
        AwsError::from_api(&e.to_api())
    }
}

impl From<mailpush_core::CoreError> for AwsError {
    fn from(e: mailpush_core::CoreError) -> Self {
        AwsError::from_core(e)
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message }).to_string();
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_codes_map_to_aws_types() {
        let t = |code| AwsError::from_api(&ApiError::new(code, "x")).kind;
        assert_eq!(t(ErrorCode::InvalidParameterValueNotExistDomain), "NotFoundException");
        assert_eq!(
            t(ErrorCode::InvalidParameterValueRepeatCreation),
            "AlreadyExistsException"
        );
        assert_eq!(t(ErrorCode::FailedOperationHighRejectionRate), "SendingPausedException");
        assert_eq!(t(ErrorCode::InvalidParameterValue), "BadRequestException");
        assert_eq!(t(ErrorCode::OperationDenied), "MessageRejected");
        assert_eq!(
            t(ErrorCode::OperationDeniedSenderWithDomainIsNotEmpty),
            "ConflictException"
        );
        let e = AwsError::not_found("no such identity");
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()["x-amzn-errortype"], "NotFoundException");
    }
}
