//! Core's error type, and the one place where internal failures become Tencent error codes.

use mailpush_model::{ApiError, ErrorCode};
use mailpush_store::StoreError;

/// Anything that can go wrong in the facade.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The request was refused for a reason the caller can act on; carries the Tencent code.
    #[error(transparent)]
    Refused(#[from] ApiError),
    /// The database failed.
    #[error("storage: {0}")]
    Store(StorageError),
    /// A sealed secret could not be used.
    #[error("secrets: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    /// The message could not be built.
    #[error("building the message: {0}")]
    Mime(#[from] mailpush_delivery::MimeError),
    /// Configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// DKIM keys, password hashing or the DNS checker failed.
    #[error("identity: {0}")]
    Identity(#[from] mailpush_identity::IdentityError),
}

/// A database failure as the store reported it. Opaque: the facade maps it to API errors ([`CoreError::to_api`]);
/// its text, which may name hosts, files or SQL, is for logs.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StorageError(pub(crate) StoreError);

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> CoreError {
        CoreError::Store(StorageError(e))
    }
}

/// `?` in a front end that answers with API errors: the error as [`CoreError::to_api`] reports it, an internal
/// failure logged first (its details stay in the log).
impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        if !e.is_refusal() {
            tracing::error!(error = %e, "request failed");
        }
        e.to_api()
    }
}

impl CoreError {
    /// A refusal with a code and message.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        CoreError::Refused(ApiError::new(code, message))
    }

    /// The error as the API reports it. Internal failures are logged by the caller and reported without
    /// their details, which may name hosts, files or SQL.
    pub fn to_api(&self) -> ApiError {
        match self {
            CoreError::Refused(e) => e.clone(),
            CoreError::Store(StorageError(StoreError::Limit(r))) => crate::limits::refusal_to_api(r),
            CoreError::Store(StorageError(StoreError::Conflict(what))) => ApiError::new(
                ErrorCode::InvalidParameterValueRepeatCreation,
                format!("{what} already exists"),
            ),
            // A specific answer, so that clients and operators see what to fix (and what retrying cannot).
            CoreError::Store(StorageError(StoreError::DiskFull(_))) => ApiError::new(
                ErrorCode::ResourceInsufficient,
                "the database disk is full: mail cannot be accepted until space is freed",
            ),
            CoreError::Store(StorageError(StoreError::Unavailable(_))) => ApiError::new(
                ErrorCode::FailedOperationServiceNotAvailable,
                "the database is unavailable (no answer in time); try again later",
            ),
            CoreError::Store(_) => {
                ApiError::new(ErrorCode::InternalErrorQueryDataBaseFailed, "database error; try again")
            }
            CoreError::Mime(e) => ApiError::new(ErrorCode::InvalidParameterValueEmailContentIsWrong, e.to_string()),
            CoreError::Secret(_) | CoreError::Config(_) | CoreError::Identity(_) => {
                ApiError::new(ErrorCode::InternalError, "internal error")
            }
        }
    }
}

/// Checks a page request: `Limit` 1 to `max` (`FailedOperation.InvalidLimit`), `Offset` not negative.
pub(crate) fn check_page(offset: i64, limit: i64, max: i64) -> Result<(), CoreError> {
    if !(1..=max).contains(&limit) {
        return Err(CoreError::refused(
            ErrorCode::FailedOperationInvalidLimit,
            format!("Limit must be between 1 and {max}"),
        ));
    }
    if offset < 0 {
        return Err(CoreError::refused(
            ErrorCode::InvalidParameterValue,
            "Offset must not be negative",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_and_unavailable_have_their_own_codes() {
        let full = CoreError::from(StoreError::DiskFull("database or disk is full".into())).to_api();
        assert_eq!(full.code, ErrorCode::ResourceInsufficient);
        assert!(full.message.contains("the database disk is full"), "{}", full.message);
        let down = CoreError::from(StoreError::Unavailable("timeout".into())).to_api();
        assert_eq!(down.code, ErrorCode::FailedOperationServiceNotAvailable);
    }
}
