//! Templates and the account permissions that govern content: the `templates` table and the
//! `allow_simple_content` / `allow_links` columns of `accounts` (migration 0004).
//!
//! Every query an account's request can reach is scoped by its account id. The `admin_*` methods are for
//! the operator's CLI (the manual review queue) and deliberately span accounts.

use crate::{AccountId, Store, StoreError};

/// A template's row id (Tencent `TemplateID`). Never reused after a delete.
pub type TemplateId = i64;

/// Tencent `TemplateStatus` values as stored.
pub mod template_status {
    /// Approved: may send.
    pub const APPROVED: i32 = 0;
    /// Waiting for (manual) review.
    pub const REVIEWING: i32 = 1;
    /// Rejected: `review_reason` says why.
    pub const REJECTED: i32 = 2;
}

/// Per-account permissions over content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountPolicy {
    /// May send custom content (`Simple`) rather than only approved templates (default `false`, as Tencent).
    pub allow_simple_content: bool,
    /// Templates may carry links other than the unsubscribe placeholder (default `false`).
    pub allow_links: bool,
}

/// A template to create, already reviewed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTemplate {
    /// The owning account.
    pub account_id: AccountId,
    /// `TemplateName`.
    pub name: String,
    /// The category's name (`notification`, …).
    pub category: String,
    /// The HTML body, decoded.
    pub html: Option<String>,
    /// The text body, decoded.
    pub text: Option<String>,
    /// One of [`template_status`].
    pub status: i32,
    /// Why it is not approved (empty when approved or waiting).
    pub review_reason: String,
    /// Creation time, Unix ms.
    pub now_ms: i64,
}

/// New content for an existing template (replaces name, category, bodies and review state; bumps the version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUpdate {
    /// `TemplateName`.
    pub name: String,
    /// The category's name.
    pub category: String,
    /// The HTML body.
    pub html: Option<String>,
    /// The text body.
    pub text: Option<String>,
    /// The review result of the new content, one of [`template_status`].
    pub status: i32,
    /// Why it is not approved.
    pub review_reason: String,
    /// Edit time, Unix ms.
    pub now_ms: i64,
}

/// A stored template with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    /// `TemplateID`.
    pub id: TemplateId,
    /// The owning account.
    pub account_id: AccountId,
    /// `TemplateName`.
    pub name: String,
    /// The category's name.
    pub category: String,
    /// The HTML body.
    pub html: Option<String>,
    /// The text body.
    pub text: Option<String>,
    /// One of [`template_status`].
    pub status: i32,
    /// `ReviewReason`.
    pub review_reason: String,
    /// Content version: 1 at creation, +1 per edit.
    pub version: i64,
    /// `CreatedTimestamp`, Unix ms.
    pub created_ms: i64,
    /// Last content edit, Unix ms.
    pub updated_ms: i64,
}

/// A template without its content (listings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSummary {
    /// `TemplateID`.
    pub id: TemplateId,
    /// The owning account.
    pub account_id: AccountId,
    /// `TemplateName`.
    pub name: String,
    /// The category's name.
    pub category: String,
    /// One of [`template_status`].
    pub status: i32,
    /// `ReviewReason`.
    pub review_reason: String,
    /// Content version.
    pub version: i64,
    /// `CreatedTimestamp`, Unix ms.
    pub created_ms: i64,
    /// Last content edit, Unix ms.
    pub updated_ms: i64,
}

/// One page of an account's templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePage {
    /// The page, newest first.
    pub templates: Vec<TemplateSummary>,
    /// How many templates the account has in total.
    pub total: i64,
}

/// Defines the template operations for one backend. `begin` opens a write transaction; `lock_account` is a
/// statement taking `$1` = account id that serialises template creation per account (so two concurrent
/// creates cannot both pass the count limit).
macro_rules! template_ops {
    (db = $DB:ty, begin = $begin:expr, lock_account = $lock:expr $(,)?) => {
        use sqlx::Row;

        use crate::templates::{
            AccountPolicy, NewTemplate, StoredTemplate, TemplateId, TemplatePage, TemplateSummary, TemplateUpdate,
        };
        use crate::{AccountId, StoreError};

        type Pool = sqlx::Pool<$DB>;
        type DbRow = <$DB as sqlx::Database>::Row;

        const SUMMARY_COLUMNS: &str =
            "id, account_id, name, category, status, review_reason, version, created_ms, updated_ms";
        const FULL_COLUMNS: &str =
            "id, account_id, name, category, html, text, status, review_reason, version, created_ms, updated_ms";

        fn summary(row: &DbRow) -> Result<TemplateSummary, StoreError> {
            Ok(TemplateSummary {
                id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                name: row.try_get("name")?,
                category: row.try_get("category")?,
                status: row.try_get("status")?,
                review_reason: row.try_get("review_reason")?,
                version: row.try_get("version")?,
                created_ms: row.try_get("created_ms")?,
                updated_ms: row.try_get("updated_ms")?,
            })
        }

        fn full(row: &DbRow) -> Result<StoredTemplate, StoreError> {
            Ok(StoredTemplate {
                id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                name: row.try_get("name")?,
                category: row.try_get("category")?,
                html: row.try_get("html")?,
                text: row.try_get("text")?,
                status: row.try_get("status")?,
                review_reason: row.try_get("review_reason")?,
                version: row.try_get("version")?,
                created_ms: row.try_get("created_ms")?,
                updated_ms: row.try_get("updated_ms")?,
            })
        }

        pub(crate) async fn account_policy(pool: &Pool, id: AccountId) -> Result<Option<AccountPolicy>, StoreError> {
            let row = sqlx::query("SELECT allow_simple_content, allow_links FROM accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
                Ok(AccountPolicy {
                    allow_simple_content: r.try_get("allow_simple_content")?,
                    allow_links: r.try_get("allow_links")?,
                })
            })
            .transpose()
        }

        pub(crate) async fn set_account_policy(pool: &Pool, id: AccountId, p: AccountPolicy) -> Result<(), StoreError> {
            let done = sqlx::query("UPDATE accounts SET allow_simple_content = $1, allow_links = $2 WHERE id = $3")
                .bind(p.allow_simple_content)
                .bind(p.allow_links)
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        pub(crate) async fn create_template(
            pool: &Pool,
            t: &NewTemplate,
            max_per_account: i64,
        ) -> Result<Option<StoredTemplate>, StoreError> {
            let mut tx = pool.begin_with($begin).await?;
            let account: Option<i64> = sqlx::query_scalar($lock).bind(t.account_id).fetch_optional(&mut *tx).await?;
            if account.is_none() {
                return Err(StoreError::Invalid(format!("no account {}", t.account_id)));
            }
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM templates WHERE account_id = $1")
                .bind(t.account_id)
                .fetch_one(&mut *tx)
                .await?;
            if count >= max_per_account {
                return Ok(None);
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO templates (account_id, name, category, html, text, status, review_reason, version, \
                 created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8) RETURNING {FULL_COLUMNS}"
            )))
            .bind(t.account_id)
            .bind(&t.name)
            .bind(&t.category)
            .bind(t.html.as_deref())
            .bind(t.text.as_deref())
            .bind(t.status)
            .bind(&t.review_reason)
            .bind(t.now_ms)
            .fetch_one(&mut *tx)
            .await?;
            let stored = full(&row)?;
            tx.commit().await?;
            Ok(Some(stored))
        }

        pub(crate) async fn update_template(
            pool: &Pool,
            account: AccountId,
            id: TemplateId,
            u: &TemplateUpdate,
        ) -> Result<Option<StoredTemplate>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE templates SET name = $1, category = $2, html = $3, text = $4, status = $5, \
                 review_reason = $6, version = version + 1, updated_ms = $7 \
                 WHERE id = $8 AND account_id = $9 RETURNING {FULL_COLUMNS}"
            )))
            .bind(&u.name)
            .bind(&u.category)
            .bind(u.html.as_deref())
            .bind(u.text.as_deref())
            .bind(u.status)
            .bind(&u.review_reason)
            .bind(u.now_ms)
            .bind(id)
            .bind(account)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(full).transpose()
        }

        pub(crate) async fn template(
            pool: &Pool,
            account: AccountId,
            id: TemplateId,
        ) -> Result<Option<StoredTemplate>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {FULL_COLUMNS} FROM templates WHERE id = $1 AND account_id = $2"
            )))
            .bind(id)
            .bind(account)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(full).transpose()
        }

        pub(crate) async fn template_summary(
            pool: &Pool,
            account: AccountId,
            id: TemplateId,
        ) -> Result<Option<TemplateSummary>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM templates WHERE id = $1 AND account_id = $2"
            )))
            .bind(id)
            .bind(account)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(summary).transpose()
        }

        pub(crate) async fn list_templates(
            pool: &Pool,
            account: AccountId,
            offset: i64,
            limit: i64,
        ) -> Result<TemplatePage, StoreError> {
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM templates WHERE account_id = $1")
                .bind(account)
                .fetch_one(pool)
                .await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM templates WHERE account_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
            )))
            .bind(account)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            Ok(TemplatePage {
                templates: rows.iter().map(summary).collect::<Result<_, _>>()?,
                total,
            })
        }

        pub(crate) async fn delete_template(pool: &Pool, account: AccountId, id: TemplateId) -> Result<bool, StoreError> {
            let done = sqlx::query("DELETE FROM templates WHERE id = $1 AND account_id = $2")
                .bind(id)
                .bind(account)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        pub(crate) async fn admin_template(pool: &Pool, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {FULL_COLUMNS} FROM templates WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(full).transpose()
        }

        pub(crate) async fn admin_list_templates(
            pool: &Pool,
            status: Option<i32>,
        ) -> Result<Vec<TemplateSummary>, StoreError> {
            let rows = match status {
                Some(s) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SUMMARY_COLUMNS} FROM templates WHERE status = $1 ORDER BY id"
                    )))
                    .bind(s)
                    .fetch_all(pool)
                    .await?
                }
                None => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SUMMARY_COLUMNS} FROM templates ORDER BY id"
                    )))
                    .fetch_all(pool)
                    .await?
                }
            };
            rows.iter().map(summary).collect()
        }

        pub(crate) async fn admin_set_template_review(
            pool: &Pool,
            id: TemplateId,
            version: i64,
            status: i32,
            reason: &str,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE templates SET status = $1, review_reason = $2 WHERE id = $3 AND version = $4",
            )
            .bind(status)
            .bind(reason)
            .bind(id)
            .bind(version)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        }
    };
}

mod sqlite_ops {
    // IMMEDIATE takes the write lock at once (see sqlite.rs); it also serialises creates across processes.
    template_ops! { db = sqlx::Sqlite, begin = "BEGIN IMMEDIATE", lock_account = "SELECT id FROM accounts WHERE id = $1" }
}

mod pg_ops {
    template_ops! { db = sqlx::Postgres, begin = "BEGIN", lock_account = "SELECT id FROM accounts WHERE id = $1 FOR UPDATE" }
}

impl Store {
    // ---- account permissions ----

    /// The account's content permissions; `None` if there is no such account.
    pub async fn account_policy(&self, account: AccountId) -> Result<Option<AccountPolicy>, StoreError> {
        on_ops!(self, reader, account_policy(account))
    }

    /// Replaces the account's content permissions; [`StoreError::NotFound`] if there is no such account.
    pub async fn set_account_policy(&self, account: AccountId, policy: AccountPolicy) -> Result<(), StoreError> {
        on_ops!(self, writer, set_account_policy(account, policy))
    }

    // ---- templates (scoped by account) ----

    /// Creates a template with version 1, unless its account already has `max_per_account` templates
    /// (`Ok(None)`). The count and the insert happen under one lock per account, so concurrent creates never
    /// exceed the limit. An unknown account is [`StoreError::Invalid`].
    pub async fn create_template(
        &self,
        template: NewTemplate,
        max_per_account: i64,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        on_ops!(self, writer, create_template(&template, max_per_account))
    }

    /// Replaces an account's template content and review state and increments its version; `None` if the
    /// account has no template with this id.
    pub async fn update_template(
        &self,
        account: AccountId,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        on_ops!(self, writer, update_template(account, id, &update))
    }

    /// One of the account's templates, with content.
    pub async fn template(&self, account: AccountId, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
        on_ops!(self, reader, template(account, id))
    }

    /// One of the account's templates without its content: status and version, for the send path (the
    /// compiled content usually comes from a cache keyed by id and version).
    pub async fn template_summary(
        &self,
        account: AccountId,
        id: TemplateId,
    ) -> Result<Option<TemplateSummary>, StoreError> {
        on_ops!(self, reader, template_summary(account, id))
    }

    /// A page of the account's templates, newest first, and their total count.
    pub async fn list_templates(
        &self,
        account: AccountId,
        offset: i64,
        limit: i64,
    ) -> Result<TemplatePage, StoreError> {
        on_ops!(self, reader, list_templates(account, offset.max(0), limit.max(0)))
    }

    /// Deletes one of the account's templates; `false` if it has none with this id.
    pub async fn delete_template(&self, account: AccountId, id: TemplateId) -> Result<bool, StoreError> {
        on_ops!(self, writer, delete_template(account, id))
    }

    // ---- operator (spans accounts) ----

    /// Any account's template by id (operator CLI).
    pub async fn admin_template(&self, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
        on_ops!(self, reader, admin_template(id))
    }

    /// Every account's templates, optionally only those in `status`, by id (operator CLI).
    pub async fn admin_list_templates(&self, status: Option<i32>) -> Result<Vec<TemplateSummary>, StoreError> {
        on_ops!(self, reader, admin_list_templates(status))
    }

    /// Sets a template's review state if its content is still at `version` (so an operator never approves
    /// content edited after they looked at it). Returns whether it was applied.
    pub async fn admin_set_template_review(
        &self,
        id: TemplateId,
        version: i64,
        status: i32,
        reason: &str,
    ) -> Result<bool, StoreError> {
        on_ops!(self, writer, admin_set_template_review(id, version, status, reason))
    }
}
