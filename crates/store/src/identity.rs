//! Sending identities: domains with their DKIM keys, and sender addresses.
//!
//! Every query an account can trigger is scoped by its account id. Three lookups are deliberately not:
//! [`Identities::identity_owner`] (to tell "created by another account" from "not created"),
//! [`Identities::identities_to_recheck`] (the background DNS re-check) and [`Identities::sender_for_login`]
//! (SMTP AUTH names an address, not an account); plus [`Identities::identity_for_admin`] for the operator's CLI.

use sqlx::AssertSqlSafe;

use crate::accounts::lock_known_account;
use crate::sql::{Conn, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::identity::IdentityRow;

/// A new domain with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    /// Owner.
    pub account_id: AccountId,
    /// Normalized domain (lower-case ASCII).
    pub domain: String,
    /// `DKIMOption` the keys were generated for.
    pub dkim_option: i64,
    /// Unix ms.
    pub created_ms: i64,
    /// Its DKIM keys.
    pub keys: Vec<NewDkimKey>,
    /// Most domains the account may hold: checked inside the creating transaction, under a per-account lock,
    /// so concurrent creates cannot overshoot ([`StoreError::LimitReached`]).
    pub max_per_account: i64,
}

/// A DKIM key to store.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NewDkimKey {
    /// Selector.
    pub selector: String,
    /// Algorithm name (`rsa-1024`, `rsa-2048`, `ed25519`).
    pub algorithm: String,
    /// The published `p=` value.
    pub public_key: String,
    /// The private key, sealed by the caller.
    pub private_key_sealed: Vec<u8>,
}

/// A stored DKIM key.
pub type DkimKeyRow = NewDkimKey;

/// The outcome of one DNS check, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCheck {
    /// Every required record passed.
    pub verified: bool,
    /// Record-by-record JSON.
    pub checks: String,
    /// Why not sendable ('' when verified).
    pub reason: String,
    /// Unix ms.
    pub checked_ms: i64,
}

/// A new sender address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSender {
    /// Owner.
    pub account_id: AccountId,
    /// The domain it belongs to.
    pub identity_id: i64,
    /// The address (normalized domain).
    pub address: String,
    /// `EmailSenderName`.
    pub sender_name: String,
    /// Unix ms.
    pub created_ms: i64,
    /// Most sender addresses the domain may have: checked inside the creating transaction, under a lock on
    /// the domain's row ([`StoreError::LimitReached`]).
    pub max_per_domain: i64,
}

/// A stored sender address.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SenderRow {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub account_id: AccountId,
    /// Its domain.
    pub identity_id: i64,
    /// The address.
    pub address: String,
    /// `EmailSenderName`.
    pub sender_name: String,
    /// argon2 PHC string; `None` until an SMTP password is set.
    pub smtp_password_hash: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
}

const IDENTITY_COLUMNS: &str =
    "id, account_id, domain, dkim_option, verified, checks, reason, checked_ms, created_ms, mail_from_domain";
const SENDER_COLUMNS: &str = "id, account_id, identity_id, address, sender_name, smtp_password_hash, created_ms";

async fn insert_keys(
    conn: &mut Conn<'_>,
    identity_id: i64,
    keys: &[NewDkimKey],
    created_ms: i64,
) -> Result<(), StoreError> {
    for k in keys {
        query(
            "INSERT INTO dkim_keys (identity_id, selector, algorithm, public_key, private_key_sealed, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(identity_id)
        .bind(&k.selector)
        .bind(&k.algorithm)
        .bind(&k.public_key)
        .bind(&k.private_key_sealed)
        .bind(created_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Sending domains, DKIM keys and sender addresses ([`Store::identities`]).
#[derive(Debug, Clone, Copy)]
pub struct Identities<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Identities: sending domains, DKIM keys, sender addresses.
    pub fn identities(&self) -> Identities<'_> {
        Identities { store: self }
    }
}

impl Identities<'_> {
    /// Creates a domain and its keys in one transaction. A domain already present (for any account) is
    /// [`StoreError::Conflict`].
    pub async fn create_identity(self, n: NewIdentity) -> Result<IdentityRow, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                // Serialises creates per account (SQLite: the write transaction already does).
                lock_known_account(&mut conn, n.account_id).await?;
                let held: i64 = query("SELECT COUNT(*) FROM email_identities WHERE account_id = $1")
                    .bind(n.account_id)
                    .scalar(&mut conn)
                    .await?;
                if held >= n.max_per_account {
                    return Err(StoreError::LimitReached(format!(
                        "{} sending domains",
                        n.max_per_account
                    )));
                }
                let id: i64 = query(
                    "INSERT INTO email_identities (account_id, domain, dkim_option, verified, checks, reason, \
                     checked_ms, created_ms) VALUES ($1, $2, $3, $4, '', $5, 0, $6) RETURNING id",
                )
                .bind(n.account_id)
                .bind(&n.domain)
                .bind(n.dkim_option)
                .bind(false)
                .bind("not verified yet")
                .bind(n.created_ms)
                .scalar(&mut conn)
                .await?;
                insert_keys(&mut conn, id, &n.keys, n.created_ms).await?;
                tx.commit().await?;
                Ok(IdentityRow {
                    id,
                    account_id: n.account_id,
                    domain: n.domain,
                    dkim_option: n.dkim_option,
                    verified: false,
                    checks: String::new(),
                    reason: "not verified yet".into(),
                    checked_ms: 0,
                    created_ms: n.created_ms,
                    mail_from_domain: String::new(),
                })
            })
            .await
    }

    /// Replaces a domain's DKIM keys (new `DKIMOption`); the domain becomes unverified until re-checked.
    pub async fn replace_dkim_keys(
        self,
        account: AccountId,
        identity_id: i64,
        dkim_option: i64,
        keys: Vec<NewDkimKey>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                query(
                    "UPDATE email_identities SET dkim_option = $1, verified = $2, reason = $3 \
                     WHERE id = $4 AND account_id = $5",
                )
                .bind(dkim_option)
                .bind(false)
                .bind("new DKIM keys: publish the new records")
                .bind(identity_id)
                .bind(account)
                .execute_found(&mut conn)
                .await?;
                query("DELETE FROM dkim_keys WHERE identity_id = $1")
                    .bind(identity_id)
                    .execute(&mut conn)
                    .await?;
                insert_keys(&mut conn, identity_id, &keys, now_ms).await?;
                tx.commit().await
            })
            .await
    }

    /// The account's domain.
    pub async fn identity(self, account: AccountId, domain: &str) -> Result<Option<IdentityRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM email_identities WHERE account_id = $1 AND domain = $2"
        )))
        .bind(account)
        .bind(domain)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Any account's domain: for the operator's CLI only.
    pub async fn identity_for_admin(self, domain: &str) -> Result<Option<IdentityRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM email_identities WHERE domain = $1"
        )))
        .bind(domain)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Which account holds `domain`, if any (nothing else about it).
    pub async fn identity_owner(self, domain: &str) -> Result<Option<AccountId>, StoreError> {
        query("SELECT account_id FROM email_identities WHERE domain = $1")
            .bind(domain)
            .scalar_optional(self.store.guarded_reader())
            .await
    }

    /// The account's domains by name.
    pub async fn list_identities(
        self,
        account: AccountId,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<IdentityRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM email_identities WHERE account_id = $1 ORDER BY domain LIMIT $2 OFFSET $3"
        )))
        .bind(account)
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// How many domains the account has.
    pub async fn count_identities(self, account: AccountId) -> Result<i64, StoreError> {
        query("SELECT COUNT(*) FROM email_identities WHERE account_id = $1")
            .bind(account)
            .scalar(self.store.guarded_reader())
            .await
    }

    /// Deletes the account's domain and its keys; [`StoreError::NotFound`] if it has none such. A domain that
    /// still has sender addresses is refused by the database ([`StoreError::Invalid`]).
    pub async fn delete_identity(self, account: AccountId, domain: &str) -> Result<(), StoreError> {
        query("DELETE FROM email_identities WHERE account_id = $1 AND domain = $2")
            .bind(account)
            .bind(domain)
            .execute_found(self.store.guarded_writer())
            .await
    }

    /// Sets the return-path domain of the account's identity `identity_id` (empty = `bounce.<domain>`) and
    /// marks it unchecked, so it sends again only once its records pass under the new name.
    pub async fn set_mail_from_domain(
        self,
        account: AccountId,
        identity_id: i64,
        mail_from_domain: &str,
    ) -> Result<(), StoreError> {
        query(
            "UPDATE email_identities SET mail_from_domain = $1, verified = $2, reason = $3 \
             WHERE id = $4 AND account_id = $5",
        )
        .bind(mail_from_domain)
        .bind(false)
        .bind("the return-path domain changed: not checked yet")
        .bind(identity_id)
        .bind(account)
        .execute_found(self.store.guarded_writer())
        .await
    }

    /// Records a DNS check of the account's domain.
    pub async fn record_identity_check(
        self,
        account: AccountId,
        identity_id: i64,
        check: &IdentityCheck,
    ) -> Result<(), StoreError> {
        query(
            "UPDATE email_identities SET verified = $1, checks = $2, reason = $3, checked_ms = $4 \
             WHERE id = $5 AND account_id = $6",
        )
        .bind(check.verified)
        .bind(&check.checks)
        .bind(&check.reason)
        .bind(check.checked_ms)
        .bind(identity_id)
        .bind(account)
        .execute_found(self.store.guarded_writer())
        .await
    }

    /// Verified domains (of every account) last checked before `checked_before_ms`, oldest check first:
    /// the background re-check's work list.
    pub async fn identities_to_recheck(
        self,
        checked_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<IdentityRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM email_identities WHERE verified = $1 AND checked_ms < $2 \
             ORDER BY checked_ms LIMIT $3"
        )))
        .bind(true)
        .bind(checked_before_ms)
        .bind(limit.max(0))
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// The DKIM keys of the account's domain, oldest first.
    pub async fn dkim_keys(self, account: AccountId, identity_id: i64) -> Result<Vec<DkimKeyRow>, StoreError> {
        query(
            "SELECT k.selector, k.algorithm, k.public_key, k.private_key_sealed \
             FROM dkim_keys k JOIN email_identities i ON i.id = k.identity_id \
             WHERE k.identity_id = $1 AND i.account_id = $2 ORDER BY k.created_ms, k.selector",
        )
        .bind(identity_id)
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Creates a sender address on the account's domain `identity_id` ([`StoreError::NotFound`] if the
    /// domain is not the account's; [`StoreError::Conflict`] if the address exists).
    pub async fn create_sender(self, n: NewSender) -> Result<SenderRow, StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                // Serialises creates per domain (SQLite: the write transaction already does; this only checks
                // existence).
                let lock = format!(
                    "SELECT id FROM email_identities WHERE id = $1 AND account_id = $2{}",
                    conn.lock_rows()
                );
                let locked: Option<i64> = query(AssertSqlSafe(lock))
                    .bind(n.identity_id)
                    .bind(n.account_id)
                    .scalar_optional(&mut conn)
                    .await?;
                if locked.is_none() {
                    return Err(StoreError::NotFound);
                }
                let held: i64 = query("SELECT COUNT(*) FROM email_senders WHERE identity_id = $1")
                    .bind(n.identity_id)
                    .scalar(&mut conn)
                    .await?;
                if held >= n.max_per_domain {
                    return Err(StoreError::LimitReached(format!(
                        "{} sender addresses",
                        n.max_per_domain
                    )));
                }
                let id: i64 = query(
                    "INSERT INTO email_senders (account_id, identity_id, address, sender_name, smtp_password_hash, \
                     created_ms) SELECT $1, id, $3, $4, NULL, $5 FROM email_identities \
                     WHERE id = $2 AND account_id = $1 RETURNING id",
                )
                .bind(n.account_id)
                .bind(n.identity_id)
                .bind(&n.address)
                .bind(&n.sender_name)
                .bind(n.created_ms)
                .scalar_optional(&mut conn)
                .await?
                .ok_or(StoreError::NotFound)?;
                tx.commit().await?;
                Ok(SenderRow {
                    id,
                    account_id: n.account_id,
                    identity_id: n.identity_id,
                    address: n.address,
                    sender_name: n.sender_name,
                    smtp_password_hash: None,
                    created_ms: n.created_ms,
                })
            })
            .await
    }

    /// The account's sender address.
    pub async fn sender(self, account: AccountId, address: &str) -> Result<Option<SenderRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {SENDER_COLUMNS} FROM email_senders WHERE account_id = $1 AND address = $2"
        )))
        .bind(account)
        .bind(address)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// The sender address with this address, whoever owns it: SMTP AUTH logs in with an address.
    pub async fn sender_for_login(self, address: &str) -> Result<Option<SenderRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {SENDER_COLUMNS} FROM email_senders WHERE address = $1"
        )))
        .bind(address)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// The account's sender addresses by address.
    pub async fn list_senders(self, account: AccountId) -> Result<Vec<SenderRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {SENDER_COLUMNS} FROM email_senders WHERE account_id = $1 ORDER BY address"
        )))
        .bind(account)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// How many sender addresses the account has on domain `identity_id`.
    pub async fn count_senders(self, account: AccountId, identity_id: i64) -> Result<i64, StoreError> {
        query("SELECT COUNT(*) FROM email_senders WHERE account_id = $1 AND identity_id = $2")
            .bind(account)
            .bind(identity_id)
            .scalar(self.store.guarded_reader())
            .await
    }

    /// Deletes the account's sender address; [`StoreError::NotFound`] if it has none such.
    pub async fn delete_sender(self, account: AccountId, address: &str) -> Result<(), StoreError> {
        query("DELETE FROM email_senders WHERE account_id = $1 AND address = $2")
            .bind(account)
            .bind(address)
            .execute_found(self.store.guarded_writer())
            .await
    }

    /// Sets the SMTP password hash of the account's sender address; [`StoreError::NotFound`] if none such.
    pub async fn set_sender_password(self, account: AccountId, address: &str, hash: &str) -> Result<(), StoreError> {
        query("UPDATE email_senders SET smtp_password_hash = $1 WHERE account_id = $2 AND address = $3")
            .bind(hash)
            .bind(account)
            .bind(address)
            .execute_found(self.store.guarded_writer())
            .await
    }
}
