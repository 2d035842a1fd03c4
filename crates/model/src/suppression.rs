//! Suppression lists as listed: the global bounce blacklist and the accounts' custom blacklists.

/// One row of the global bounce blacklist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct BounceBlacklistEntry {
    /// The address (normalized).
    pub address: String,
    /// When it (last) hard-bounced, Unix ms.
    pub created_ms: i64,
    /// The remote reply or DSN diagnostic.
    pub reason: String,
}

/// One row of an account's custom blacklist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct CustomBlacklistEntry {
    /// Row id (`Id` in the API).
    pub id: i64,
    /// The address (normalized).
    pub address: String,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Blocks until this time, Unix ms; `None` = forever.
    pub expire_ms: Option<i64>,
}
