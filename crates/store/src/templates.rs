//! Templates and the account permissions that govern content: the `templates` table and the
//! `allow_simple_content` / `allow_links` columns of `accounts` (migration 0004).
//!
//! Every query an account's request can reach is scoped by its account id. The `admin_*` methods are for
//! the operator's CLI (the manual review queue) and deliberately span accounts.

use sqlx::AssertSqlSafe;

use crate::accounts::lock_known_account;
use crate::sql::{Query, page, query};
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::TemplateId;
pub use mailpush_model::templates::{AccountPolicy, StoredTemplate, TemplatePage, TemplateStatus, TemplateSummary};

/// A template to create, already reviewed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTemplate {
    /// The owning account.
    pub account_id: AccountId,
    /// Its content; `now_ms` is the creation time.
    pub content: TemplateContent,
}

/// A template's content and review state: that of a new template, or the new content of an existing one (an
/// edit replaces name, category, bodies and review state, and bumps the version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateContent {
    /// `TemplateName`.
    pub name: String,
    /// The category's name (`notification`, …).
    pub category: String,
    /// The HTML body, decoded.
    pub html: Option<String>,
    /// The text body, decoded.
    pub text: Option<String>,
    /// The review result of the content.
    pub status: TemplateStatus,
    /// Why it is not approved (empty when approved or waiting).
    pub review_reason: String,
    /// Creation or edit time, Unix ms.
    pub now_ms: i64,
}

impl TemplateContent {
    /// Binds the content after what `q` has bound: name, category, html, text, status, review_reason and the
    /// time, the order of both the INSERT and the UPDATE.
    fn bind_to<'a>(&'a self, q: Query<'a>) -> Query<'a> {
        q.bind(&self.name)
            .bind(&self.category)
            .bind(self.html.as_deref())
            .bind(self.text.as_deref())
            .bind(self.status.code())
            .bind(&self.review_reason)
            .bind(self.now_ms)
    }
}

/// The columns of [`TemplateSummary`].
const SUMMARY_COLUMNS: &str = "id, account_id, name, category, status, review_reason, version, created_ms, updated_ms";
/// The columns of [`StoredTemplate`].
const FULL_COLUMNS: &str =
    "id, account_id, name, category, html, text, status, review_reason, version, created_ms, updated_ms";

/// Templates and the accounts' content permissions ([`Store::templates`]).
#[derive(Debug, Clone, Copy)]
pub struct Templates<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Templates: create, edit, review, list; the accounts' content policy.
    pub fn templates(&self) -> Templates<'_> {
        Templates { store: self }
    }
}

impl Templates<'_> {
    // ---- account permissions ----

    /// The account's content permissions; `None` if there is no such account.
    pub async fn account_policy(self, account: AccountId) -> Result<Option<AccountPolicy>, StoreError> {
        query("SELECT allow_simple_content, allow_links FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(self.store.guarded_reader())
            .await
    }

    /// Replaces the account's content permissions; [`StoreError::NotFound`] if there is no such account.
    pub async fn set_account_policy(self, account: AccountId, policy: AccountPolicy) -> Result<(), StoreError> {
        query("UPDATE accounts SET allow_simple_content = $1, allow_links = $2 WHERE id = $3")
            .bind(policy.allow_simple_content)
            .bind(policy.allow_links)
            .bind(account)
            .execute_found(self.store.guarded_writer())
            .await
    }

    // ---- templates (scoped by account) ----

    /// Creates a template with version 1, unless its account already has `max_per_account` templates
    /// (`Ok(None)`). The count and the insert happen under one lock per account, so concurrent creates never
    /// exceed the limit. An unknown account is [`StoreError::Invalid`].
    pub async fn create_template(
        self,
        template: NewTemplate,
        max_per_account: i64,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        self.store
            .guarded(async {
                let t = &template;
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                lock_known_account(&mut conn, t.account_id).await?;
                let count: i64 = query("SELECT COUNT(*) FROM templates WHERE account_id = $1")
                    .bind(t.account_id)
                    .scalar(&mut conn)
                    .await?;
                if count >= max_per_account {
                    return Ok(None);
                }
                let insert = query(AssertSqlSafe(format!(
                    "INSERT INTO templates (account_id, name, category, html, text, status, review_reason, version, \
                     created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8) RETURNING {FULL_COLUMNS}"
                )))
                .bind(t.account_id);
                let stored = t.content.bind_to(insert).fetch_one(&mut conn).await?;
                tx.commit().await?;
                Ok(Some(stored))
            })
            .await
    }

    /// Replaces an account's template content and review state and increments its version; `None` if the
    /// account has no template with this id.
    pub async fn update_template(
        self,
        account: AccountId,
        id: TemplateId,
        update: TemplateContent,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        let statement = query(AssertSqlSafe(format!(
            "UPDATE templates SET name = $1, category = $2, html = $3, text = $4, status = $5, \
             review_reason = $6, version = version + 1, updated_ms = $7 \
             WHERE id = $8 AND account_id = $9 RETURNING {FULL_COLUMNS}"
        )));
        update
            .bind_to(statement)
            .bind(id)
            .bind(account)
            .fetch_optional(self.store.guarded_writer())
            .await
    }

    /// One of the account's templates, with content.
    pub async fn template(self, account: AccountId, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {FULL_COLUMNS} FROM templates WHERE id = $1 AND account_id = $2"
        )))
        .bind(id)
        .bind(account)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// One of the account's templates without its content: status and version, for the send path (the
    /// compiled content usually comes from a cache keyed by id and version).
    pub async fn template_summary(
        self,
        account: AccountId,
        id: TemplateId,
    ) -> Result<Option<TemplateSummary>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLUMNS} FROM templates WHERE id = $1 AND account_id = $2"
        )))
        .bind(id)
        .bind(account)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// A page of the account's templates, newest first, and their total count.
    pub async fn list_templates(self, account: AccountId, offset: i64, limit: i64) -> Result<TemplatePage, StoreError> {
        let (templates, total) = self
            .store
            .guarded(page(
                self.store.reader(),
                SUMMARY_COLUMNS,
                "FROM templates WHERE account_id = $1",
                &[account.into()],
                "ORDER BY id DESC",
                limit.max(0),
                offset.max(0),
            ))
            .await?;
        Ok(TemplatePage { templates, total })
    }

    /// Deletes one of the account's templates; `false` if it has none with this id.
    pub async fn delete_template(self, account: AccountId, id: TemplateId) -> Result<bool, StoreError> {
        query("DELETE FROM templates WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account)
            .execute_changed(self.store.guarded_writer())
            .await
    }

    // ---- operator (spans accounts) ----

    /// Any account's template by id (operator CLI).
    pub async fn admin_template(self, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {FULL_COLUMNS} FROM templates WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Every account's templates, optionally only those in `status`, by id (operator CLI).
    pub async fn admin_list_templates(
        self,
        status: Option<TemplateStatus>,
    ) -> Result<Vec<TemplateSummary>, StoreError> {
        let q = match status {
            Some(s) => query(AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM templates WHERE status = $1 ORDER BY id"
            )))
            .bind(s.code()),
            None => query(AssertSqlSafe(format!(
                "SELECT {SUMMARY_COLUMNS} FROM templates ORDER BY id"
            ))),
        };
        q.fetch_all(self.store.guarded_reader()).await
    }

    /// Sets a template's review state if its content is still at `version` (so an operator never approves
    /// content edited after they looked at it). Returns whether it was applied.
    pub async fn admin_set_template_review(
        self,
        id: TemplateId,
        version: i64,
        status: TemplateStatus,
        reason: &str,
    ) -> Result<bool, StoreError> {
        query("UPDATE templates SET status = $1, review_reason = $2 WHERE id = $3 AND version = $4")
            .bind(status.code())
            .bind(reason)
            .bind(id)
            .bind(version)
            .execute_changed(self.store.guarded_writer())
            .await
    }
}
