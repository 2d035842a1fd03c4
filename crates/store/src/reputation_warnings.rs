//! Reputation warnings (`reputation_warnings`, migration 0011): a partial unique index keeps one open warning per
//! account and kind, so monitors on several nodes raise it once.

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::reputation::WarningRow;

/// A warning to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWarning {
    /// The account.
    pub account_id: AccountId,
    /// What it is about (`bounce_rate`).
    pub kind: String,
    /// Now, Unix ms.
    pub at_ms: i64,
    /// The measured rate, percent.
    pub rate: f64,
    /// The threshold, percent.
    pub threshold: f64,
    /// Delivered mail in the window.
    pub delivered: i64,
    /// Bounced mail in the window.
    pub bounced: i64,
}

/// Bounce-rate and complaint warnings ([`Store::reputation_warnings`]).
#[derive(Debug, Clone, Copy)]
pub struct ReputationWarnings<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Reputation warnings: raise, clear, list.
    pub fn reputation_warnings(&self) -> ReputationWarnings<'_> {
        ReputationWarnings { store: self }
    }
}

impl ReputationWarnings<'_> {
    /// Raises a warning unless one of its kind is already in force for the account; `true` if raised now.
    pub async fn raise_warning(self, w: &NewWarning) -> Result<bool, StoreError> {
        query(
            "INSERT INTO reputation_warnings (account_id, kind, raised_ms, rate, threshold, delivered, bounced) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(w.account_id)
        .bind(&w.kind)
        .bind(w.at_ms)
        .bind(w.rate)
        .bind(w.threshold)
        .bind(w.delivered)
        .bind(w.bounced)
        .execute_changed(self.store.guarded_writer())
        .await
    }

    /// Clears the account's warning of `kind` in force, if any; `true` if one was cleared.
    pub async fn clear_warning(self, account: AccountId, kind: &str, at_ms: i64) -> Result<bool, StoreError> {
        query(
            "UPDATE reputation_warnings SET cleared_ms = $1 \
             WHERE account_id = $2 AND kind = $3 AND cleared_ms IS NULL",
        )
        .bind(at_ms)
        .bind(account)
        .bind(kind)
        .execute_changed(self.store.guarded_writer())
        .await
    }

    /// The account's most recent warnings, newest first.
    pub async fn warnings(self, account: AccountId, limit: i64) -> Result<Vec<WarningRow>, StoreError> {
        query(
            "SELECT id, account_id, kind, raised_ms, cleared_ms, rate, threshold, delivered, bounced \
             FROM reputation_warnings WHERE account_id = $1 ORDER BY raised_ms DESC, id DESC LIMIT $2",
        )
        .bind(account)
        .bind(limit)
        .fetch_all(self.store.guarded_reader())
        .await
    }
}
