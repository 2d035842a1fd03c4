//! "TLS required" of accounts and sender addresses (`accounts.require_tls`, `email_senders.require_tls`, migration
//! 0036): their mail is accepted with `TlsRequirement::Verified` on the message and delivered only over verified
//! TLS.

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::account::TlsRequiredSettings;

/// The view of the accounts' and sender addresses' "TLS required".
#[derive(Clone, Copy)]
pub struct TlsRequired<'a> {
    store: &'a Store,
}

impl Store {
    /// "TLS required" per account and per sender address.
    pub fn tls_required(&self) -> TlsRequired<'_> {
        TlsRequired { store: self }
    }
}

impl TlsRequired<'_> {
    /// Whether mail of the account, sent from `sender`, requires TLS: the account's setting or, when `sender` is
    /// one of its sender addresses, that address's. An account that does not exist requires nothing.
    pub async fn required_for(self, account: AccountId, sender: &str) -> Result<bool, StoreError> {
        self.store
            .guarded(async {
                let row: Option<(bool, Option<bool>)> = query(
                    "SELECT a.require_tls, s.require_tls FROM accounts a \
                     LEFT JOIN email_senders s ON s.account_id = a.id AND s.address = $2 WHERE a.id = $1",
                )
                .bind(account)
                .bind(sender)
                .fetch_optional(self.store.reader())
                .await?;
                Ok(row.is_some_and(|(account, sender)| account || sender == Some(true)))
            })
            .await
    }

    /// The account's setting and its sender addresses that require TLS.
    pub async fn settings(self, account: AccountId) -> Result<TlsRequiredSettings, StoreError> {
        self.store
            .guarded(async {
                let account_required: Option<bool> = query("SELECT require_tls FROM accounts WHERE id = $1")
                    .bind(account)
                    .scalar_optional(self.store.reader())
                    .await?;
                let senders: Vec<String> = query(
                    "SELECT address FROM email_senders WHERE account_id = $1 AND require_tls = $2 ORDER BY address",
                )
                .bind(account)
                .bind(true)
                .scalars(self.store.reader())
                .await?;
                Ok(TlsRequiredSettings {
                    account: account_required.ok_or(StoreError::NotFound)?,
                    senders,
                })
            })
            .await
    }

    /// Sets whether every mail of the account requires TLS; [`StoreError::NotFound`] if there is no such account.
    pub async fn set_account(self, account: AccountId, required: bool) -> Result<(), StoreError> {
        self.store
            .guarded(
                query("UPDATE accounts SET require_tls = $1 WHERE id = $2")
                    .bind(required)
                    .bind(account)
                    .execute_found(self.store.writer()),
            )
            .await
    }

    /// Sets whether mail from the account's sender address `address` requires TLS; [`StoreError::NotFound`] if
    /// the account has no such sender address.
    pub async fn set_sender(self, account: AccountId, address: &str, required: bool) -> Result<(), StoreError> {
        self.store
            .guarded(
                query("UPDATE email_senders SET require_tls = $1 WHERE account_id = $2 AND address = $3")
                    .bind(required)
                    .bind(account)
                    .bind(address)
                    .execute_found(self.store.writer()),
            )
            .await
    }
}
