//! The per-sender-address unsubscribe defaults (`address_unsubscribe_configs`, migration 0011).

use sqlx::AssertSqlSafe;

use crate::sql::{page, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::account::UnsubscribeConfigRow;

/// The per-sender-address unsubscribe defaults ([`Store::unsubscribe_configs`]).
#[derive(Debug, Clone, Copy)]
pub struct UnsubscribeConfigs<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Unsubscribe defaults per sender address.
    pub fn unsubscribe_configs(&self) -> UnsubscribeConfigs<'_> {
        UnsubscribeConfigs { store: self }
    }
}

/// The columns of [`UnsubscribeConfigRow`].
const CONFIG_COLUMNS: &str = "address, unsubscribe_config, status, created_ms";

impl UnsubscribeConfigs<'_> {
    /// Creates a sender address's unsubscribe default; [`StoreError::Conflict`] if it has one.
    pub async fn create_unsubscribe_config(
        self,
        account: AccountId,
        c: &UnsubscribeConfigRow,
    ) -> Result<(), StoreError> {
        query(
            "INSERT INTO address_unsubscribe_configs (account_id, address, unsubscribe_config, status, \
             created_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(account)
        .bind(&c.address)
        .bind(&c.unsubscribe_config)
        .bind(c.status)
        .bind(c.created_ms)
        .execute_new(
            self.store.guarded_writer(),
            format!("{} already has an unsubscribe config", c.address),
        )
        .await
    }

    /// Changes a sender address's unsubscribe default; [`StoreError::NotFound`] if it has none.
    pub async fn update_unsubscribe_config(
        self,
        account: AccountId,
        address: &str,
        config: &str,
        status: i32,
    ) -> Result<(), StoreError> {
        query(
            "UPDATE address_unsubscribe_configs SET unsubscribe_config = $1, status = $2 \
             WHERE account_id = $3 AND address = $4",
        )
        .bind(config)
        .bind(status)
        .bind(account)
        .bind(address)
        .execute_found(self.store.guarded_writer())
        .await
    }

    /// Deletes a sender address's unsubscribe default; [`StoreError::NotFound`] if it has none.
    pub async fn delete_unsubscribe_config(self, account: AccountId, address: &str) -> Result<(), StoreError> {
        query("DELETE FROM address_unsubscribe_configs WHERE account_id = $1 AND address = $2")
            .bind(account)
            .bind(address)
            .execute_found(self.store.guarded_writer())
            .await
    }

    /// One page of the account's unsubscribe defaults, by address; and their total.
    pub async fn list_unsubscribe_configs(
        self,
        account: AccountId,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<UnsubscribeConfigRow>, i64), StoreError> {
        self.store
            .guarded(page(
                self.store.reader(),
                CONFIG_COLUMNS,
                "FROM address_unsubscribe_configs WHERE account_id = $1",
                &[account.into()],
                "ORDER BY address",
                limit,
                offset,
            ))
            .await
    }

    /// The unsubscribe default of one sender address (lowercase), if any.
    pub async fn unsubscribe_config(
        self,
        account: AccountId,
        address: &str,
    ) -> Result<Option<UnsubscribeConfigRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {CONFIG_COLUMNS} FROM address_unsubscribe_configs WHERE account_id = $1 AND address = $2"
        )))
        .bind(account)
        .bind(address)
        .fetch_optional(self.store.guarded_reader())
        .await
    }
}
