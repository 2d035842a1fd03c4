//! Per-account content screening settings (`account_screening`, migration 0024).

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::account::ScreeningPolicy;

/// The view of per-account screening settings.
#[derive(Clone, Copy)]
pub struct Screening<'a> {
    store: &'a Store,
}

impl Store {
    /// Per-account screening settings.
    pub fn screening(&self) -> Screening<'_> {
        Screening { store: self }
    }
}

impl Screening<'_> {
    /// The account's screening settings (the default when it has none).
    pub async fn screening_policy(self, account: AccountId) -> Result<ScreeningPolicy, StoreError> {
        query("SELECT min_score, review_content FROM account_screening WHERE account_id = $1")
            .bind(account)
            .fetch_optional(self.store.guarded_reader())
            .await
            .map(Option::unwrap_or_default)
    }

    /// Replaces the account's screening settings.
    pub async fn set_screening_policy(self, account: AccountId, policy: ScreeningPolicy) -> Result<(), StoreError> {
        query(
            "INSERT INTO account_screening (account_id, min_score, review_content) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET min_score = $2, review_content = $3",
        )
        .bind(account)
        .bind(policy.min_score)
        .bind(policy.review_content)
        .execute(self.store.guarded_writer())
        .await
        .map(drop)
    }
}
