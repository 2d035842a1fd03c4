//! Sending domains as stored (with the outcome of their last DNS check) and their tags.

use crate::ids::AccountId;

/// A stored domain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct IdentityRow {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub account_id: AccountId,
    /// Domain.
    pub domain: String,
    /// `DKIMOption`.
    pub dkim_option: i64,
    /// Whether the last check passed every required record (the domain may send).
    pub verified: bool,
    /// The last check, record by record (JSON written by core; empty before the first check).
    pub checks: String,
    /// Why the domain may not send ('' when verified).
    pub reason: String,
    /// When it was last checked, Unix ms (0 = never).
    pub checked_ms: i64,
    /// Unix ms.
    pub created_ms: i64,
    /// The return-path (custom MAIL FROM) domain; empty = `bounce.<domain>`.
    pub mail_from_domain: String,
}

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdentityTag {
    /// `TagKey`.
    pub key: String,
    /// `TagValue`.
    pub value: String,
}
