//! Rotating an account's API credential: a new SecretId and SecretKey, the old pair refused from then on
//! (in other processes once their credential cache entry expires).

use crate::accounts::{AccountCredentials, SECRET_KEY_CONTEXT, new_credentials};
use crate::{CoreError, Mailpush};

impl Mailpush {
    /// Gives the account named `name` a new SecretId and SecretKey (its AppId stays) and returns them; the
    /// SecretKey is stored sealed and never shown again.
    pub async fn rotate_account_key(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        let account = self
            .inner
            .store
            .account_by_name(name)
            .await?
            .ok_or_else(|| CoreError::Config(format!("no account named {name}")))?;
        let mut creds = new_credentials(name);
        creds.app_id = account.app_id;
        let sealed = self
            .inner
            .master
            .seal(SECRET_KEY_CONTEXT, creds.secret_key.as_bytes())?;
        self.inner
            .store
            .replace_account_secret(account.id, &creds.secret_id, &sealed)
            .await?;
        self.inner.credentials.clear();
        Ok(creds)
    }
}
