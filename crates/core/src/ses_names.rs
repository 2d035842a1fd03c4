//! What the AWS SES v2 API names that Tencent's does not: templates by name, suppression-list reasons.
//! Kept beside the Tencent rows so both APIs act on the same templates and lists.

use crate::suppression::Suppression;
use crate::templates::Templates;
use crate::{AccountContext, CoreError};
use mailpush_model::sesv2::SesTemplateRow;

impl Templates {
    pub(crate) async fn ses_templates(&self, account: &AccountContext) -> Result<Vec<SesTemplateRow>, CoreError> {
        Ok(self.env.store.ses_names().ses_templates(account.id).await?)
    }

    pub(crate) async fn put_ses_template(
        &self,
        account: &AccountContext,
        row: &SesTemplateRow,
    ) -> Result<(), CoreError> {
        Ok(self.env.store.ses_names().put_ses_template(account.id, row).await?)
    }

    pub(crate) async fn delete_ses_template(&self, account: &AccountContext, name: &str) -> Result<bool, CoreError> {
        Ok(self.env.store.ses_names().delete_ses_template(account.id, name).await?)
    }
}

impl Suppression {
    pub(crate) async fn suppression_reasons(
        &self,
        account: &AccountContext,
    ) -> Result<Vec<(String, String)>, CoreError> {
        Ok(self.env.store.ses_names().suppression_reasons(account.id).await?)
    }

    pub(crate) async fn set_suppression_reason(
        &self,
        account: &AccountContext,
        address: &str,
        reason: Option<&str>,
    ) -> Result<(), CoreError> {
        Ok(self
            .env
            .store
            .ses_names()
            .set_suppression_reason(account.id, address, reason)
            .await?)
    }
}
