//! The return-path (custom MAIL FROM) domain of a sending domain.

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

impl Store {
    /// Sets the return-path domain of the account's identity `identity_id` (empty = `bounce.<domain>`) and
    /// marks it unchecked, so it sends again only once its records pass under the new name.
    pub async fn set_mail_from_domain(
        &self,
        account: AccountId,
        identity_id: i64,
        mail_from_domain: &str,
    ) -> Result<(), StoreError> {
        self.guarded(async {
            let done = query(
                "UPDATE email_identities SET mail_from_domain = $1, verified = $2, reason = $3 \
                 WHERE id = $4 AND account_id = $5",
            )
            .bind(mail_from_domain)
            .bind(false)
            .bind("the return-path domain changed: not checked yet")
            .bind(identity_id)
            .bind(account)
            .execute(self.inner.db.writer())
            .await?;
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}
