//! Accounts and their API credentials. SecretKeys are stored sealed under the master key; verified
//! credentials are cached briefly so signature checks do not hit the database on every request.

use crate::Env;
use crate::cache::TtlCache;
use crate::error::CoreError;
use crate::secrets::Secrets;
use crate::secrets::{ALPHANUMERIC, random_string};
use mailpush_model::AccountId;
use mailpush_model::ErrorCode;
use mailpush_store::{Account, NewAccount};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The credentials printed once at account creation (`mailpush account create NAME --json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountCredentials {
    /// Tencent-style numeric AppId.
    pub app_id: i64,
    /// The public half of the API credential.
    pub secret_id: String,
    /// The secret half; shown only now.
    pub secret_key: String,
    /// The account's name.
    #[serde(skip)]
    pub name: String,
}

/// The account a request acts for, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountContext {
    /// Internal id; every repository query is scoped by it.
    pub id: AccountId,
    /// Account name.
    pub name: String,
    /// AppId.
    pub app_id: i64,
    /// Suspended accounts cannot send.
    pub suspended: bool,
}

impl From<&Account> for AccountContext {
    fn from(a: &Account) -> Self {
        AccountContext {
            id: a.id,
            name: a.name.clone(),
            app_id: a.app_id,
            suspended: a.suspended,
        }
    }
}

/// Seal context of account SecretKeys.
pub(crate) const SECRET_KEY_CONTEXT: &str = "account-secret-key";
/// How long a verified credential is trusted from memory.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// In-memory credential cache: SecretId → (account, SecretKey), and the SMTP trusted networks' account by name
/// (read once per SMTP session otherwise: a database round trip per connection for clients that connect anew
/// for every mail).
pub(crate) struct CredentialCache {
    entries: TtlCache<String, (AccountContext, String)>,
    trusted: TtlCache<String, AccountContext>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        CredentialCache {
            entries: TtlCache::new(CACHE_TTL),
            trusted: TtlCache::new(CACHE_TTL),
        }
    }
}

impl CredentialCache {
    pub(crate) fn get(&self, secret_id: &str) -> Option<(AccountContext, String)> {
        self.entries.get(secret_id)
    }

    /// Forgets every cached credential (after a suspension, so this process sees it at once).
    pub(crate) fn clear(&self) {
        self.entries.clear();
        self.trusted.clear();
    }

    /// The account named by `smtp_trusted_account`, as read less than the time to live ago.
    pub(crate) fn trusted_account(&self, name: &str) -> Option<AccountContext> {
        self.trusted.get(name)
    }

    /// Remembers the trusted networks' account.
    pub(crate) fn put_trusted_account(&self, name: &str, account: AccountContext) {
        self.trusted.put(name.to_string(), account);
    }

    pub(crate) fn put(&self, secret_id: &str, acct: AccountContext, key: String) {
        self.entries.put(secret_id.to_string(), (acct, key));
    }
}

/// Checks an account name: 1–64 characters of letters, digits, `.`, `_`, `-`.
pub fn validate_account_name(name: &str) -> Result<(), CoreError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::refused(
            ErrorCode::InvalidParameterValue,
            "account names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ))
    }
}

/// New random credentials in Tencent's shapes: AppId of 10 digits, SecretId `AKID` + 32, SecretKey 32 characters.
pub(crate) fn new_credentials(name: &str) -> AccountCredentials {
    let digits = random_string(9, b"0123456789");
    let app_id = format!("1{digits}").parse::<i64>().unwrap_or(1_000_000_000);
    AccountCredentials {
        app_id,
        secret_id: format!("AKID{}", random_string(32, ALPHANUMERIC)),
        secret_key: random_string(32, ALPHANUMERIC),
        name: name.to_string(),
    }
}

pub(crate) fn new_account_row(creds: &AccountCredentials, sealed: Vec<u8>, now_ms: i64) -> NewAccount {
    NewAccount {
        name: creds.name.clone(),
        app_id: creds.app_id,
        secret_id: creds.secret_id.clone(),
        secret_key_sealed: sealed,
        created_ms: now_ms,
    }
}

/// Accounts and their credentials.
pub struct Accounts {
    pub(crate) env: Env,
    pub(crate) secrets: Arc<Secrets>,
    pub(crate) credentials: CredentialCache,
}

impl Accounts {
    pub(crate) async fn create_account(&self, name: &str) -> Result<AccountCredentials, CoreError> {
        validate_account_name(name)?;
        if self.env.store.accounts().account_by_name(name).await?.is_some() {
            return Err(CoreError::refused(
                ErrorCode::InvalidParameterValueRepeatCreation,
                format!("an account named {name} already exists"),
            ));
        }
        let creds = new_credentials(name);
        let sealed = self.secrets.seal(SECRET_KEY_CONTEXT, creds.secret_key.as_bytes())?;
        self.env
            .store
            .accounts()
            .create_account(new_account_row(&creds, sealed, self.env.clock.now_ms()))
            .await?;
        Ok(creds)
    }

    /// The id of the account mailpush sends its own mail as (`name`, e.g. TLS-RPT reports), created the first time
    /// with credentials nobody is shown (an operator can still rotate its key).
    pub(crate) async fn system_account(&self, name: &str) -> Result<AccountId, CoreError> {
        if let Some(a) = self.env.store.accounts().account_by_name(name).await? {
            return Ok(a.id);
        }
        match self.create_account(name).await {
            Ok(_) => {}
            // Another node created it meanwhile.
            Err(CoreError::Refused(_)) => {}
            Err(e) => return Err(e),
        }
        self.env
            .store
            .accounts()
            .account_by_name(name)
            .await?
            .map(|a| a.id)
            .ok_or_else(|| CoreError::Config(format!("account {name} could not be created")))
    }

    pub(crate) async fn list_accounts(&self) -> Result<Vec<AccountContext>, CoreError> {
        Ok(self
            .env
            .store
            .accounts()
            .list_accounts()
            .await?
            .iter()
            .map(AccountContext::from)
            .collect())
    }

    pub(crate) async fn credential(&self, secret_id: &str) -> Result<Option<(AccountContext, String)>, CoreError> {
        if let Some(hit) = self.credentials.get(secret_id) {
            return Ok(Some(hit));
        }
        let Some(account) = self.env.store.accounts().account_by_secret_id(secret_id).await? else {
            return Ok(None);
        };
        let key = self.secrets.open(SECRET_KEY_CONTEXT, &account.secret_key_sealed)?;
        let key = String::from_utf8(key).map_err(|_| CoreError::Secret(crate::secrets::SecretError::CannotOpen))?;
        let ctx = AccountContext::from(&account);
        // At most once per cache lifetime per key and process; the row is written only when the day changes.
        let day = self.env.clock.now_ms().div_euclid(86_400_000);
        if let Err(e) = self.env.store.account_keys().touch_key(secret_id, day).await {
            tracing::warn!(error = %e, "recording an API key's last use failed");
        }
        self.credentials.put(secret_id, ctx.clone(), key.clone());
        Ok(Some((ctx, key)))
    }
}
