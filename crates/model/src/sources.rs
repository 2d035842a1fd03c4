//! Source-IP pools: the pool each sending domain is assigned to.

use crate::ids::AccountId;

/// A sending domain's pool assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct DomainSourcePool {
    /// The account owning the domain.
    pub account_id: AccountId,
    /// The sending domain.
    pub domain: String,
    /// The pool name.
    pub pool: String,
}
