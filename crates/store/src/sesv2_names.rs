//! What the SES v2 front end keeps beside the account's ordinary rows: template names with their Subject (the
//! body is an ordinary template) and the reasons of suppression-list entries (the entry is a custom blacklist
//! row). Every query is scoped by the account.

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::sesv2::SesTemplateRow;

/// What the AWS SES v2 API names that Tencent's does not: template names, suppression reasons.
#[derive(Clone, Copy)]
pub struct SesNames<'a> {
    store: &'a Store,
}

impl Store {
    /// What the AWS SES v2 API names that Tencent's does not: template names, suppression reasons.
    pub fn ses_names(&self) -> SesNames<'_> {
        SesNames { store: self }
    }
}

impl SesNames<'_> {
    /// Names a template (insert or replace).
    pub async fn put_ses_template(self, account: AccountId, row: &SesTemplateRow) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                query("DELETE FROM sesv2_templates WHERE account_id = $1 AND name = $2")
                    .bind(account)
                    .bind(row.name.as_str())
                    .execute(&mut conn)
                    .await?;
                query(
                    "INSERT INTO sesv2_templates (account_id, name, template_id, subject, created_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(account)
                .bind(row.name.as_str())
                .bind(row.template_id)
                .bind(row.subject.as_str())
                .bind(row.created_ms)
                .execute(&mut conn)
                .await?;
                tx.commit().await
            })
            .await
    }

    /// The named templates of the account, by name.
    pub async fn ses_templates(self, account: AccountId) -> Result<Vec<SesTemplateRow>, StoreError> {
        query("SELECT name, template_id, subject, created_ms FROM sesv2_templates WHERE account_id = $1 ORDER BY name")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// Forgets a template name; false if it did not exist.
    pub async fn delete_ses_template(self, account: AccountId, name: &str) -> Result<bool, StoreError> {
        query("DELETE FROM sesv2_templates WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(name)
            .execute_changed(self.store.guarded_writer())
            .await
    }

    /// Records why `address` (lowercase) is on the account's suppression list; `None` forgets it.
    pub async fn set_suppression_reason(
        self,
        account: AccountId,
        address: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                let mut tx = self.store.writer().begin_write().await?;
                let mut conn = tx.conn();
                query("DELETE FROM sesv2_suppression_reasons WHERE account_id = $1 AND address = $2")
                    .bind(account)
                    .bind(address)
                    .execute(&mut conn)
                    .await?;
                if let Some(reason) = reason {
                    query("INSERT INTO sesv2_suppression_reasons (account_id, address, reason) VALUES ($1, $2, $3)")
                        .bind(account)
                        .bind(address)
                        .bind(reason)
                        .execute(&mut conn)
                        .await?;
                }
                tx.commit().await
            })
            .await
    }

    /// The recorded suppression reasons of the account: (address, reason).
    pub async fn suppression_reasons(self, account: AccountId) -> Result<Vec<(String, String)>, StoreError> {
        query("SELECT address, reason FROM sesv2_suppression_reasons WHERE account_id = $1")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }
}
