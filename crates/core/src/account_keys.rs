//! An account's API keys: up to [`MAX_ACTIVE_KEYS`] active SecretId/SecretKey pairs, so a key can be replaced
//! without downtime (create a second key, move clients over, revoke the first). Revoking or rotating clears this
//! process's credential cache at once; other processes refuse a revoked key once their cache entry expires
//! (30 seconds).

use crate::CoreError;
use crate::accounts::{AccountContext, Accounts};
use crate::accounts::{AccountCredentials, SECRET_KEY_CONTEXT, new_credentials};
use mailpush_model::ErrorCode;
use mailpush_store::{ApiKey, RevokeOutcome, StoreError};
use serde::Serialize;

/// How many API keys an account may have active at once.
pub const MAX_ACTIVE_KEYS: i64 = 2;

/// One API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiKeyInfo {
    /// The public half.
    pub secret_id: String,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Last day (UTC, `YYYY-MM-DD`) a request authenticated with it, if recorded.
    pub last_used: Option<String>,
    /// When it was revoked, Unix ms; `None` while active.
    pub revoked_ms: Option<i64>,
}

impl ApiKeyInfo {
    /// Whether the key still authenticates.
    pub fn is_active(&self) -> bool {
        self.revoked_ms.is_none()
    }
}

impl From<ApiKey> for ApiKeyInfo {
    fn from(k: ApiKey) -> Self {
        ApiKeyInfo {
            secret_id: k.secret_id,
            created_ms: k.created_ms,
            last_used: k.last_used_day.and_then(day_string),
            revoked_ms: k.revoked_ms,
        }
    }
}

/// `YYYY-MM-DD` of a day number (days since the Unix epoch).
fn day_string(day: i64) -> Option<String> {
    Some(mailpush_model::time_zone::utc_date_of(day.checked_mul(DAY_MS)?))
}

const DAY_MS: i64 = 86_400_000;

impl Accounts {
    pub(crate) async fn account_named(&self, name: &str) -> Result<AccountContext, CoreError> {
        Ok(AccountContext::from(&self.env.operator_account(name).await?))
    }

    pub(crate) async fn list_api_keys(&self, account: &AccountContext) -> Result<Vec<ApiKeyInfo>, CoreError> {
        let keys = self.env.store.account_keys().list_keys(account.id).await?;
        Ok(keys.into_iter().map(ApiKeyInfo::from).collect())
    }

    pub(crate) async fn create_api_key(&self, account: &AccountContext) -> Result<AccountCredentials, CoreError> {
        let mut creds = new_credentials(&account.name);
        creds.app_id = account.app_id;
        let sealed = self.secrets.seal(SECRET_KEY_CONTEXT, creds.secret_key.as_bytes())?;
        let added = self
            .env
            .store
            .account_keys()
            .add_key(
                account.id,
                &creds.secret_id,
                &sealed,
                self.env.clock.now_ms(),
                MAX_ACTIVE_KEYS,
            )
            .await;
        match added {
            Ok(_) => Ok(creds),
            Err(StoreError::LimitReached(_)) => Err(CoreError::refused(
                ErrorCode::LimitExceeded,
                format!("the account has {MAX_ACTIVE_KEYS} active API keys already: revoke one first"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn revoke_api_key(&self, account: &AccountContext, secret_id: &str) -> Result<(), CoreError> {
        let outcome = self
            .env
            .store
            .account_keys()
            .revoke_key(account.id, secret_id, self.env.clock.now_ms())
            .await?;
        match outcome {
            RevokeOutcome::Revoked => {
                self.credentials.clear();
                Ok(())
            }
            RevokeOutcome::NotFound => Err(CoreError::refused(
                ErrorCode::ResourceNotFound,
                format!("the account has no active API key {secret_id}"),
            )),
            RevokeOutcome::LastKey => Err(CoreError::refused(
                ErrorCode::FailedOperation,
                "this is the account's last active API key: create a second key before revoking it",
            )),
        }
    }

    /// A new SecretId and SecretKey replacing every active key of the account (its AppId stays).
    pub(crate) async fn rotate_account_key(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        let account = self.env.operator_account(name).await?;
        let mut creds = new_credentials(name);
        creds.app_id = account.app_id;
        let sealed = self.secrets.seal(SECRET_KEY_CONTEXT, creds.secret_key.as_bytes())?;
        self.env
            .store
            .account_keys()
            .rotate_key(account.id, &creds.secret_id, &sealed, self.env.clock.now_ms())
            .await?;
        self.credentials.clear();
        Ok(creds)
    }
}
