//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (account name or SecretId, MessageId).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row the operation refers to does not exist.
    #[error("not found")]
    NotFound,
    /// The request is malformed for the store (unknown lane, no recipients, unknown account…).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A stored value cannot be read back (e.g. an unknown status code): the database was changed behind our back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Database(sqlx::Error),
    /// Applying migrations at open failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A per-account or per-domain count limit would be exceeded (checked atomically with the insert).
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// An admission limit refused the message (rate, per-recipient hour, daily quota); nothing was stored.
    #[error("admission limit: {0}")]
    Limit(#[from] crate::limits::LimitRefusal),
    /// The store was closed (or its committer task is gone).
    #[error("the store is closed")]
    Closed,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolClosed => StoreError::Closed,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Invalid(format!("refers to a missing row: {}", db.message()))
            }
            other => StoreError::Database(other),
        }
    }
}
