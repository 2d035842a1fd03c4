//! Rotating an account's API credential: a new SecretId and SecretKey, the old pair refused from then on
//! (in other processes once their credential cache entry expires).

use crate::CoreError;
use crate::accounts::Accounts;
use crate::accounts::{AccountCredentials, SECRET_KEY_CONTEXT, new_credentials};

impl Accounts {
    pub(crate) async fn rotate_account_key(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        let account = self.env.operator_account(name).await?;
        let mut creds = new_credentials(name);
        creds.app_id = account.app_id;
        let sealed = self.secrets.seal(SECRET_KEY_CONTEXT, creds.secret_key.as_bytes())?;
        self.env
            .store
            .account_keys()
            .replace_account_secret(account.id, &creds.secret_id, &sealed)
            .await?;
        self.credentials.clear();
        Ok(creds)
    }
}
