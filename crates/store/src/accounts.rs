//! Accounts: who may send (API SecretId, sealed SecretKey), and whether they are suspended.

use sqlx::AssertSqlSafe;

use crate::sql::{Conn, query};
use crate::{Store, StoreError};

pub use mailpush_model::AccountId;

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

const ACCOUNT_COLUMNS: &str = "id, name, app_id, secret_id, secret_key_sealed, created_ms, suspended";

impl Accounts<'_> {
    /// Creates an account. A taken name or SecretId is [`StoreError::Conflict`].
    pub async fn create_account(self, a: NewAccount) -> Result<Account, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
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
                crate::account_keys::insert_key(&mut conn, id, &a.secret_id, &a.secret_key_sealed, a.created_ms)
                    .await?;
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
            })
            .await
    }

    /// The account with this SecretId among its active API keys ([`crate::AccountKeys`]); `secret_id` and
    /// `secret_key_sealed` of the result are that key's.
    pub async fn account_by_secret_id(self, secret_id: &str) -> Result<Option<Account>, StoreError> {
        query(
            "SELECT a.id, a.name, a.app_id, k.secret_id, k.secret_key_sealed, a.created_ms, a.suspended \
             FROM account_api_keys k JOIN accounts a ON a.id = k.account_id \
             WHERE k.secret_id = $1 AND k.revoked_ms IS NULL",
        )
        .bind(secret_id)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// The account with this name.
    pub async fn account_by_name(self, name: &str) -> Result<Option<Account>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// The account with this id.
    pub async fn account(self, id: AccountId) -> Result<Option<Account>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// All accounts, by id.
    pub async fn list_accounts(self) -> Result<Vec<Account>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
        )))
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Suspends or reinstates an account; [`StoreError::NotFound`] if there is none with this id.
    pub async fn set_account_suspended(self, id: AccountId, suspended: bool) -> Result<(), StoreError> {
        query("UPDATE accounts SET suspended = $1 WHERE id = $2")
            .bind(suspended)
            .bind(id)
            .execute_found(self.store.guarded_writer())
            .await
    }
}

/// Locks the account's row until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite: the write transaction
/// already excludes other writers), so that what one account creates under a limit is checked and written by one
/// transaction at a time. Whether the account exists.
pub(crate) async fn lock_account(conn: &mut Conn<'_>, account: AccountId) -> Result<bool, StoreError> {
    let lock = format!("SELECT id FROM accounts WHERE id = $1{}", conn.lock_rows());
    let found: Option<i64> = query(AssertSqlSafe(lock)).bind(account).scalar_optional(conn).await?;
    Ok(found.is_some())
}

/// [`lock_account`] for a write that creates something of the account: an unknown account is
/// [`StoreError::Invalid`].
pub(crate) async fn lock_known_account(conn: &mut Conn<'_>, account: AccountId) -> Result<(), StoreError> {
    if lock_account(conn, account).await? {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("no account {account}")))
    }
}
