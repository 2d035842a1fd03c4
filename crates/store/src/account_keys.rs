//! An account's API keys: SecretId and sealed SecretKey pairs, up to a few active at once so a key can be
//! replaced without downtime (create the new one, move clients over, revoke the old one). Authentication
//! ([`crate::Accounts::account_by_secret_id`]) finds active keys only.

use sqlx::AssertSqlSafe;

use crate::accounts::lock_account;
use crate::sql::{Conn, Tx, query};
use crate::{AccountId, Store, StoreError};

/// One API key of an account, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    /// Row id.
    pub id: i64,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The public half (unique across accounts).
    pub secret_id: String,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// UTC day (days since the Unix epoch) a request last presented this key (recorded when a process first looks it up
    /// after its credential cache entry expired), if any.
    pub last_used_day: Option<i64>,
    /// When it was revoked, Unix ms; `None` while it is active.
    pub revoked_ms: Option<i64>,
}

impl ApiKey {
    /// Whether the key still authenticates.
    pub fn is_active(&self) -> bool {
        self.revoked_ms.is_none()
    }
}

/// What [`AccountKeys::revoke_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The key is revoked.
    Revoked,
    /// The account has no active key with this SecretId.
    NotFound,
    /// It is the account's last active key; it stays, so the account cannot lock itself out.
    LastKey,
}

/// An account's API keys ([`Store::account_keys`]).
#[derive(Clone, Copy)]
pub struct AccountKeys<'a> {
    store: &'a Store,
}

impl Store {
    /// An account's API keys: list, add, revoke, rotate.
    pub fn account_keys(&self) -> AccountKeys<'_> {
        AccountKeys { store: self }
    }
}

const KEY_COLUMNS: &str = "id, account_id, secret_id, created_ms, last_used_day, revoked_ms";

impl AccountKeys<'_> {
    /// A write transaction holding the account's row lock ([`lock_account`]), so concurrent key changes of one
    /// account are serialised. [`StoreError::NotFound`] if the account is absent.
    async fn locked(self, account: AccountId) -> Result<Tx, StoreError> {
        let mut tx = self.store.writer().begin_write().await?;
        if !lock_account(&mut tx.conn(), account).await? {
            return Err(StoreError::NotFound);
        }
        Ok(tx)
    }

    /// The account's keys, active and revoked, oldest first.
    pub async fn list_keys(self, account: AccountId) -> Result<Vec<ApiKey>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM account_api_keys WHERE account_id = $1 ORDER BY id"
        )))
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Adds an active key unless the account already has `max_active` active keys
    /// ([`StoreError::LimitReached`]). [`StoreError::NotFound`] for an unknown account, [`StoreError::Conflict`]
    /// if the SecretId is taken.
    pub async fn add_key(
        self,
        account: AccountId,
        secret_id: &str,
        secret_key_sealed: &[u8],
        now_ms: i64,
        max_active: i64,
    ) -> Result<ApiKey, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.locked(account).await?;
                let mut conn = tx.conn();
                let active: i64 =
                    query("SELECT COUNT(*) FROM account_api_keys WHERE account_id = $1 AND revoked_ms IS NULL")
                        .bind(account)
                        .scalar(&mut conn)
                        .await?;
                if active >= max_active {
                    return Err(StoreError::LimitReached(format!(
                        "the account has {active} active API keys already"
                    )));
                }
                let key = insert_key(&mut conn, account, secret_id, secret_key_sealed, now_ms).await?;
                tx.commit().await?;
                Ok(key)
            })
            .await
    }

    /// Revokes one active key of the account, unless it is the last one.
    pub async fn revoke_key(
        self,
        account: AccountId,
        secret_id: &str,
        now_ms: i64,
    ) -> Result<RevokeOutcome, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.locked(account).await?;
                let mut conn = tx.conn();
                let active: Vec<String> = query(
                    "SELECT secret_id FROM account_api_keys WHERE account_id = $1 AND revoked_ms IS NULL ORDER BY id",
                )
                .bind(account)
                .scalars(&mut conn)
                .await?;
                if !active.iter().any(|s| s == secret_id) {
                    return Ok(RevokeOutcome::NotFound);
                }
                if active.len() < 2 {
                    return Ok(RevokeOutcome::LastKey);
                }
                query("UPDATE account_api_keys SET revoked_ms = $1 WHERE account_id = $2 AND secret_id = $3")
                    .bind(now_ms)
                    .bind(account)
                    .bind(secret_id)
                    .execute(&mut conn)
                    .await?;
                tx.commit().await?;
                Ok(RevokeOutcome::Revoked)
            })
            .await
    }

    /// Replaces every active key of the account by this one, in one transaction (`mailpush account
    /// rotate-key`). [`StoreError::NotFound`] for an unknown account, [`StoreError::Conflict`] if the SecretId
    /// is taken.
    pub async fn rotate_key(
        self,
        account: AccountId,
        secret_id: &str,
        secret_key_sealed: &[u8],
        now_ms: i64,
    ) -> Result<ApiKey, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.locked(account).await?;
                let mut conn = tx.conn();
                query("UPDATE account_api_keys SET revoked_ms = $1 WHERE account_id = $2 AND revoked_ms IS NULL")
                    .bind(now_ms)
                    .bind(account)
                    .execute(&mut conn)
                    .await?;
                let key = insert_key(&mut conn, account, secret_id, secret_key_sealed, now_ms).await?;
                tx.commit().await?;
                Ok(key)
            })
            .await
    }

    /// Records that the key authenticated on `day` (UTC days since the epoch); writes only when the day changes.
    pub async fn touch_key(self, secret_id: &str, day: i64) -> Result<(), StoreError> {
        query(
            "UPDATE account_api_keys SET last_used_day = $1 \
             WHERE secret_id = $2 AND (last_used_day IS NULL OR last_used_day < $1)",
        )
        .bind(day)
        .bind(secret_id)
        .execute(self.store.guarded_writer())
        .await?;
        Ok(())
    }
}

/// Inserts an active key.
pub(crate) async fn insert_key(
    conn: &mut Conn<'_>,
    account: AccountId,
    secret_id: &str,
    secret_key_sealed: &[u8],
    now_ms: i64,
) -> Result<ApiKey, StoreError> {
    let id: i64 = query(
        "INSERT INTO account_api_keys (account_id, secret_id, secret_key_sealed, created_ms) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(account)
    .bind(secret_id)
    .bind(secret_key_sealed)
    .bind(now_ms)
    .scalar(conn)
    .await?;
    Ok(ApiKey {
        id,
        account_id: account,
        secret_id: secret_id.to_string(),
        created_ms: now_ms,
        last_used_day: None,
        revoked_ms: None,
    })
}
