//! The web console's people: console users of an account (or the operator, who sees every account), their
//! argon2id passwords, and signed-in sessions. A session cookie is random; only its SHA-256 is stored, so a
//! database dump signs nobody in. Each session carries the CSRF token its forms must send back.

use crate::accounts::AccountContext;
use crate::accounts::Accounts;
use crate::error::CoreError;
use crate::secrets::{ALPHANUMERIC, random_string};
use aws_lc_rs::digest;
use mailpush_model::ErrorCode;
use mailpush_store::{ConsoleSessionRow, ConsoleUserRow};

/// How long a console session lasts from sign-in.
pub const CONSOLE_SESSION_MS: i64 = 12 * 3600 * 1000;
/// Shortest console password, characters.
pub const MIN_CONSOLE_PASSWORD_CHARS: usize = 10;
/// Longest console password, characters (argon2 time grows with it).
pub const MAX_CONSOLE_PASSWORD_CHARS: usize = 128;

/// A console user as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// Row id.
    pub id: i64,
    /// Sign-in name.
    pub username: String,
    /// The account; `None` for the operator.
    pub account: Option<AccountContext>,
}

impl ConsoleUser {
    /// Whether this is the operator (every account, the review queue).
    pub fn is_operator(&self) -> bool {
        self.account.is_none()
    }
}

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Who.
    pub user: ConsoleUser,
    /// The token every form must carry.
    pub csrf: String,
    /// The account whose data the session shows: the user's own, or the one the operator chose.
    pub account: Option<AccountContext>,
}

/// The stored form of a session cookie.
fn token_hash(token: &str) -> String {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn check_username(username: &str) -> Result<&str, CoreError> {
    let u = username.trim();
    let ok = (1..=64).contains(&u.chars().count())
        && u.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(u)
    } else {
        Err(CoreError::refused(
            ErrorCode::InvalidParameterValue,
            "a console username is 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// Whether `password` may be a console password (length only: anything printable is allowed).
pub fn acceptable_console_password(password: &str) -> bool {
    (MIN_CONSOLE_PASSWORD_CHARS..=MAX_CONSOLE_PASSWORD_CHARS).contains(&password.chars().count())
        && !password.chars().any(char::is_control)
}

impl Accounts {
    async fn console_user_view(&self, row: &ConsoleUserRow) -> Result<ConsoleUser, CoreError> {
        let account = match row.account_id {
            None => None,
            Some(id) => Some(self.account_by_id(id).await?),
        };
        Ok(ConsoleUser {
            id: row.id,
            username: row.username.clone(),
            account,
        })
    }

    pub(crate) async fn account_by_id(&self, id: i64) -> Result<AccountContext, CoreError> {
        self.list_accounts()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| CoreError::refused(ErrorCode::ResourceNotFound, format!("no account {id}")))
    }

    pub(crate) async fn create_console_user(
        &self,
        username: &str,
        account: Option<&AccountContext>,
        password: &str,
    ) -> Result<ConsoleUser, CoreError> {
        let username = check_username(username)?.to_string();
        if !acceptable_console_password(password) {
            return Err(CoreError::refused(
                ErrorCode::InvalidParameterValue,
                format!(
                    "a console password is {MIN_CONSOLE_PASSWORD_CHARS} to {MAX_CONSOLE_PASSWORD_CHARS} characters without control characters"
                ),
            ));
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || mailpush_identity::password::hash(&password))
            .await
            .map_err(|e| CoreError::Config(format!("password hashing stopped: {e}")))??;
        let row = self
            .env
            .store
            .console()
            .create_console_user(&username, account.map(|a| a.id), &hash, self.env.clock.now_ms())
            .await?
            .ok_or_else(|| {
                CoreError::refused(
                    ErrorCode::InvalidParameterValueRepeatCreation,
                    format!("a console user named {username} already exists"),
                )
            })?;
        self.console_user_view(&row).await
    }

    pub(crate) async fn console_users(&self, account: Option<&AccountContext>) -> Result<Vec<ConsoleUser>, CoreError> {
        let rows = self.env.store.console().console_users(account.map(|a| a.id)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.console_user_view(row).await?);
        }
        Ok(out)
    }

    pub(crate) async fn console_sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<ConsoleUser>, CoreError> {
        let row = self.env.store.console().console_user(username.trim()).await?;
        let stored = row.as_ref().map(|r| r.password_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || match stored {
            Some(stored) => mailpush_identity::password::verify(&password, &stored).unwrap_or(false),
            None => {
                // An unknown user costs one argon2 run too, so timing does not tell unknown users apart.
                let _ = mailpush_identity::password::hash(&password);
                false
            }
        })
        .await
        .map_err(|e| CoreError::Config(format!("password check stopped: {e}")))?;
        match row {
            Some(row) if ok => Ok(Some(self.console_user_view(&row).await?)),
            _ => Ok(None),
        }
    }

    pub(crate) async fn open_console_session(&self, user: &ConsoleUser) -> Result<String, CoreError> {
        let token = random_string(43, ALPHANUMERIC);
        let csrf = random_string(32, ALPHANUMERIC);
        let now = self.env.clock.now_ms();
        self.env
            .store
            .console()
            .create_console_session(&token_hash(&token), user.id, &csrf, now, now + CONSOLE_SESSION_MS)
            .await?;
        Ok(token)
    }

    pub(crate) async fn console_session(&self, token: &str) -> Result<Option<ConsoleSession>, CoreError> {
        let Some(row) = self
            .env
            .store
            .console()
            .console_session(&token_hash(token), self.env.clock.now_ms())
            .await?
        else {
            return Ok(None);
        };
        let ConsoleSessionRow {
            user,
            csrf,
            acting_account_id,
            ..
        } = row;
        let user = self.console_user_view(&user).await?;
        let account = match (&user.account, acting_account_id) {
            (Some(own), _) => Some(own.clone()),
            (None, Some(id)) => self.account_by_id(id).await.ok(),
            (None, None) => None,
        };
        Ok(Some(ConsoleSession { user, csrf, account }))
    }

    pub(crate) async fn set_console_account(&self, token: &str, account: Option<i64>) -> Result<(), CoreError> {
        Ok(self
            .env
            .store
            .console()
            .set_console_acting_account(&token_hash(token), account)
            .await?)
    }

    pub(crate) async fn close_console_session(&self, token: &str) -> Result<(), CoreError> {
        Ok(self
            .env
            .store
            .console()
            .delete_console_session(&token_hash(token))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_length_checked() {
        assert!(!super::acceptable_console_password("short"));
        assert!(super::acceptable_console_password("a long enough password"));
        assert!(!super::acceptable_console_password("tab\tinside password"));
    }

    #[test]
    fn tokens_are_stored_hashed() {
        let h = super::token_hash("abc");
        assert_eq!(h.len(), 64);
        assert_ne!(h, "abc");
    }
}
