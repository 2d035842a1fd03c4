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
    /// A write was refused for lack of space (SQLite `SQLITE_FULL`, PostgreSQL SQLSTATE 53100 `disk_full`).
    #[error("the database disk is full: {0}")]
    DiskFull(String),
    /// The database is out of reach: no connection within the acquire timeout, a broken connection, a
    /// statement cancelled by `statement_timeout`, or an operation past the client-side deadline (a frozen
    /// connection).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether this error says the database is out of space.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::DiskFull(_))
    }
}

/// SQLite's primary result code `SQLITE_FULL` (no extended codes exist for it).
const SQLITE_FULL: &str = "13";
/// PostgreSQL SQLSTATE `disk_full`.
const PG_DISK_FULL: &str = "53100";
/// PostgreSQL SQLSTATE `query_canceled`: what `statement_timeout` raises.
const PG_QUERY_CANCELED: &str = "57014";

/// Whether a database error is a refusal for lack of space, on either backend.
fn disk_full(db: &dyn sqlx::error::DatabaseError) -> bool {
    let code = db.code();
    let code = code.as_deref().unwrap_or("");
    // SQLite's extended code is the primary code in its low byte.
    let sqlite_full = code.parse::<i32>().is_ok_and(|c| (c & 0xff).to_string() == SQLITE_FULL);
    sqlite_full || code == PG_DISK_FULL || db.message().contains("database or disk is full")
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolClosed => StoreError::Closed,
            sqlx::Error::PoolTimedOut => {
                StoreError::Unavailable("no database connection became free within the acquire timeout".into())
            }
            // The connection broke (reset, closed, TLS cut): the database is out of reach, not the query wrong.
            sqlx::Error::Io(e) => StoreError::Unavailable(format!("connection to the database failed: {e}")),
            sqlx::Error::Tls(e) => StoreError::Unavailable(format!("connection to the database failed: {e}")),
            sqlx::Error::Database(db) if disk_full(db.as_ref()) => StoreError::DiskFull(db.message().to_string()),
            sqlx::Error::Database(db) if db.code().as_deref() == Some(PG_QUERY_CANCELED) => {
                StoreError::Unavailable(format!("statement cancelled: {}", db.message()))
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Invalid(format!("refers to a missing row: {}", db.message()))
            }
            other => StoreError::Database(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeout_and_broken_connections_are_unavailable() {
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(reset)),
            StoreError::Unavailable(_)
        ));
    }
}
