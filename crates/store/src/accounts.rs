//! Accounts: who may send (API SecretId, sealed SecretKey), and whether they are suspended.

use sqlx::AssertSqlSafe;

use crate::sql::{Pool, query};
use crate::{Store, StoreError};

/// An account's row id.
pub type AccountId = i64;

/// A new account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Unique account name.
    pub name: String,
    /// Tencent-style AppId.
    pub app_id: i64,
    /// Unique API SecretId of the account's first key.
    pub secret_id: String,
    /// The SecretKey, sealed by the caller (the store never sees it in clear).
    pub secret_key_sealed: Vec<u8>,
    /// Creation time, Unix ms.
    pub created_ms: i64,
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    /// Row id.
    pub id: AccountId,
    /// Unique account name.
    pub name: String,
    /// Tencent-style AppId.
    pub app_id: i64,
    /// The account's first API SecretId (looked up by SecretId: the matching key's). Keys live in
    /// [`crate::AccountKeys`].
    pub secret_id: String,
    /// The sealed SecretKey matching `secret_id`.
    pub secret_key_sealed: Vec<u8>,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// A suspended account may not send.
    pub suspended: bool,
}

/// The accounts ([`Store::accounts`]).
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Accounts: create, look up, suspend.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }
}

impl Accounts<'_> {
    // ---- accounts ----

    /// Creates an account. A taken name or SecretId is [`StoreError::Conflict`].
    pub async fn create_account(self, a: NewAccount) -> Result<Account, StoreError> {
        self.store.guarded(create_account(self.store.writer(), a)).await
    }

    /// The account with this SecretId among its active API keys ([`crate::AccountKeys`]); `secret_id` and
    /// `secret_key_sealed` of the result are that key's.
    pub async fn account_by_secret_id(self, secret_id: &str) -> Result<Option<Account>, StoreError> {
        self.store
            .guarded(account_by_secret_id(self.store.reader(), secret_id))
            .await
    }

    /// The account with this name.
    pub async fn account_by_name(self, name: &str) -> Result<Option<Account>, StoreError> {
        self.store.guarded(account_by_name(self.store.reader(), name)).await
    }

    /// The account with this id.
    pub async fn account(self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.store.guarded(account(self.store.reader(), id)).await
    }

    /// All accounts, by id.
    pub async fn list_accounts(self) -> Result<Vec<Account>, StoreError> {
        self.store.guarded(list_accounts(self.store.reader())).await
    }

    /// Suspends or reinstates an account; [`StoreError::NotFound`] if there is none with this id.
    pub async fn set_account_suspended(self, id: AccountId, suspended: bool) -> Result<(), StoreError> {
        self.store
            .guarded(set_account_suspended(self.store.writer(), id, suspended))
            .await
    }
}

const ACCOUNT_COLUMNS: &str = "id, name, app_id, secret_id, secret_key_sealed, created_ms, suspended";

pub(crate) async fn create_account(pool: Pool<'_>, a: NewAccount) -> Result<Account, StoreError> {
    let mut tx = pool.begin_write().await?;
    let mut conn = tx.conn();
    let id: i64 = query(
        "INSERT INTO accounts (name, app_id, secret_id, secret_key_sealed, created_ms, suspended) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&a.name)
    .bind(a.app_id)
    .bind(&a.secret_id)
    .bind(&a.secret_key_sealed)
    .bind(a.created_ms)
    .bind(false)
    .scalar(&mut conn)
    .await?;
    crate::account_keys::insert_key(&mut conn, id, &a.secret_id, &a.secret_key_sealed, a.created_ms).await?;
    tx.commit().await?;
    Ok(Account {
        id,
        name: a.name,
        app_id: a.app_id,
        secret_id: a.secret_id,
        secret_key_sealed: a.secret_key_sealed,
        created_ms: a.created_ms,
        suspended: false,
    })
}

pub(crate) async fn account_by_secret_id(pool: Pool<'_>, secret_id: &str) -> Result<Option<Account>, StoreError> {
    query(
        "SELECT a.id, a.name, a.app_id, k.secret_id, k.secret_key_sealed, a.created_ms, a.suspended \
         FROM account_api_keys k JOIN accounts a ON a.id = k.account_id \
         WHERE k.secret_id = $1 AND k.revoked_ms IS NULL",
    )
    .bind(secret_id)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn account_by_name(pool: Pool<'_>, name: &str) -> Result<Option<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn account(pool: Pool<'_>, id: AccountId) -> Result<Option<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn list_accounts(pool: Pool<'_>) -> Result<Vec<Account>, StoreError> {
    query(AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
    )))
    .fetch_all(pool)
    .await
}

pub(crate) async fn set_account_suspended(pool: Pool<'_>, id: AccountId, suspended: bool) -> Result<(), StoreError> {
    query("UPDATE accounts SET suspended = $1 WHERE id = $2")
        .bind(suspended)
        .bind(id)
        .execute_found(pool)
        .await
}
