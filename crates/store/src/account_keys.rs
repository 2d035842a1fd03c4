//! Rotating an account's API credential (`mailpush account rotate-key`).

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

/// Replacing an account's API credential.
#[derive(Clone, Copy)]
pub struct AccountKeys<'a> {
    store: &'a Store,
}

impl Store {
    /// Replacing an account's API credential.
    pub fn account_keys(&self) -> AccountKeys<'_> {
        AccountKeys { store: self }
    }
}

impl AccountKeys<'_> {
    /// Replaces the account's SecretId and sealed SecretKey (the AppId stays). [`StoreError::NotFound`] for an
    /// unknown account, [`StoreError::Conflict`] if the new SecretId is taken.
    pub async fn replace_account_secret(
        self,
        id: AccountId,
        secret_id: &str,
        secret_key_sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                let changed = query("UPDATE accounts SET secret_id = $1, secret_key_sealed = $2 WHERE id = $3")
                    .bind(secret_id)
                    .bind(secret_key_sealed)
                    .bind(id)
                    .execute(self.store.writer())
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }
}
