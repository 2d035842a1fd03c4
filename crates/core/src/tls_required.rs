//! "TLS required" per account and per sender address (a mailpush extension): mail of either is accepted with
//! [`TlsRequirement::Verified`] on the message, so the worker delivers it only over STARTTLS with a certificate
//! verified for the MX host name, never in plain text. Mail submitted over SMTP with `REQUIRETLS` (RFC 8689)
//! carries [`TlsRequirement::RequireTls`] instead. The requirement is decided at admission and kept on the
//! message: changing a setting does not change mail already accepted.

use mailpush_model::TlsRequirement;
use mailpush_model::{AccountId, account::TlsRequiredSettings};
use mailpush_store::StoreError;

use crate::accounts::AccountContext;
use crate::error::CoreError;
use crate::identity::Identities;

impl Identities {
    /// What mail of `account` from the envelope sender `sender` demands of its connections; `requiretls`: it was
    /// submitted with the `REQUIRETLS` parameter.
    pub(crate) async fn tls_requirement(
        &self,
        account: AccountId,
        sender: &str,
        requiretls: bool,
    ) -> Result<TlsRequirement, CoreError> {
        if requiretls {
            return Ok(TlsRequirement::RequireTls);
        }
        let key = (account, sender.to_string());
        let required = match self.state.tls_required.get(&key) {
            Some(required) => required,
            None => {
                let required = self.env.store.tls_required().required_for(account, sender).await?;
                self.state.tls_required.put(key, required);
                required
            }
        };
        Ok(if required {
            TlsRequirement::Verified
        } else {
            TlsRequirement::None
        })
    }

    /// The account's "TLS required" settings.
    pub(crate) async fn tls_required(&self, account: &AccountContext) -> Result<TlsRequiredSettings, CoreError> {
        Ok(self.env.store.tls_required().settings(account.id).await?)
    }

    /// Sets "TLS required" for the whole account (`address` `None`) or for one of its sender addresses; returns
    /// the account's settings after the change.
    pub(crate) async fn set_tls_required(
        &self,
        account: &AccountContext,
        address: Option<&str>,
        required: bool,
    ) -> Result<TlsRequiredSettings, CoreError> {
        let store = self.env.store.tls_required();
        match address {
            None => store.set_account(account.id, required).await?,
            Some(raw) => {
                let address = Self::parse_sender(raw)?;
                store
                    .set_sender(account.id, address.as_str(), required)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => Self::no_such_sender(address.as_str()),
                        other => other.into(),
                    })?;
            }
        }
        // This process sees the change at once; others within the send gate's cache time (a second).
        self.state.tls_required.clear();
        self.tls_required(account).await
    }
}
