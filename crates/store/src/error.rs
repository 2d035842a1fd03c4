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
    // SQLite's extended code is the primary code in its low byte (only for SQLite: PostgreSQL's SQLSTATEs
    // may be digits too).
    let sqlite_full = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && code.parse::<i32>().is_ok_and(|c| (c & 0xff).to_string() == SQLITE_FULL);
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
    use std::borrow::Cow;

    /// A database error with a chosen code and message, as a backend would report it.
    #[derive(Debug)]
    struct Fake(&'static str, &'static str);

    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl std::error::Error for Fake {}

    impl sqlx::error::DatabaseError for Fake {
        fn message(&self) -> &str {
            self.1
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn from_db(code: &'static str, message: &'static str) -> StoreError {
        StoreError::from(sqlx::Error::Database(Box::new(Fake(code, message))))
    }

    #[test]
    fn disk_full_on_both_backends() {
        // PostgreSQL SQLSTATE 53100 and SQLite's message (its code is checked on real SQLite errors:
        // `sqlite_full_database_is_disk_full_and_counted`).
        assert!(from_db("53100", "could not extend file: No space left on device").is_disk_full());
        assert!(from_db("", "database or disk is full").is_disk_full());
        // A numeric code from another backend is not read as SQLite's.
        assert!(!from_db("13", "something else").is_disk_full());
        // statement_timeout cancels with 57014: the database is unavailable, not the request wrong.
        assert!(matches!(
            from_db("57014", "canceling statement due to statement timeout"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(from_db("42601", "syntax error"), StoreError::Database(_)));
    }

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
