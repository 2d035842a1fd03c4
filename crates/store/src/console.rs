//! The web console's rows (migration 0022): console users and their sessions, the message search and one
//! message's timeline, and the console's task controls (pause, resume, cancel). Every query that reads an
//! account's data is scoped by the account id the caller passes.

use crate::batch::TaskStatus;
use sqlx::AssertSqlSafe;

use crate::sql::query;
use crate::{AccountId, Store, StoreError};

pub use mailpush_model::console::{AttemptRow, MessageHit, TimelineEvent};

/// A person who signs in to the console.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleUserRow {
    /// Row id.
    pub id: i64,
    /// Sign-in name (unique over every account).
    pub username: String,
    /// The account whose data the user sees; `None` = the operator (every account).
    pub account_id: Option<AccountId>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Unix ms.
    pub created_ms: i64,
}

/// A signed-in session with its user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSessionRow {
    /// The user.
    #[sqlx(flatten)]
    pub user: ConsoleUserRow,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// For the operator: the account being looked at.
    pub acting_account_id: Option<AccountId>,
    /// Unix ms.
    pub expires_ms: i64,
}

/// A message search of the console: one account's recipients of one UTC day, optionally narrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSearch {
    /// The account.
    pub account_id: AccountId,
    /// Accepted at or after (Unix ms).
    pub from_ms: i64,
    /// Accepted before (Unix ms).
    pub to_ms: i64,
    /// Only this MessageId.
    pub message_id: Option<String>,
    /// Only this recipient (exact address).
    pub recipient: Option<String>,
    /// Only senders whose From contains this text.
    pub sender: Option<String>,
    /// Most rows.
    pub limit: i64,
}

/// Why a task control did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskControl {
    /// Applied.
    Done,
    /// The account has no such task.
    NoSuchTask,
    /// The task is in a state the control does not apply to.
    WrongState,
}

/// The columns of [`ConsoleUserRow`].
const USER_COLUMNS: &str = "id, username, account_id, password_hash, created_ms";
/// The columns of [`MessageHit`], over `deliveries d` and `messages m`.
const HIT_COLUMNS: &str = "d.message_id, d.recipient, m.from_address, m.subject, d.request_ms, d.deliver_status, \
     d.deliver_message, d.attempts";

/// The web console's users, sessions, message search and timelines, and task controls.
#[derive(Clone, Copy)]
pub struct Console<'a> {
    store: &'a Store,
}

impl Store {
    /// The web console's users, sessions, message search and timelines, and task controls.
    pub fn console(&self) -> Console<'_> {
        Console { store: self }
    }
}

impl Console<'_> {
    /// Adds a console user; `None` when the username is taken.
    pub async fn create_console_user(
        self,
        username: &str,
        account_id: Option<AccountId>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<ConsoleUserRow>, StoreError> {
        self.store
            .guarded(async {
                let inserted = query(
                "INSERT INTO console_users (username, account_id, password_hash, created_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (username) DO NOTHING",
            )
            .bind(username)
            .bind(account_id)
            .bind(password_hash)
            .bind(now_ms)
            .execute(self.store.writer())
            .await?;
                if inserted == 0 {
                    return Ok(None);
                }
                query(AssertSqlSafe(format!(
                    "SELECT {USER_COLUMNS} FROM console_users WHERE username = $1"
                )))
                .bind(username)
                .fetch_optional(self.store.writer())
                .await
            })
            .await
    }

    /// The console user named `username`.
    pub async fn console_user(self, username: &str) -> Result<Option<ConsoleUserRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE username = $1"
        )))
        .bind(username)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Console users of one account (`Some`), or every one (`None`), by name.
    pub async fn console_users(self, account_id: Option<AccountId>) -> Result<Vec<ConsoleUserRow>, StoreError> {
        query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE ($1 IS NULL OR account_id = $1) ORDER BY username"
        )))
        .bind(account_id)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// Starts a session (and drops the expired ones).
    pub async fn create_console_session(
        self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                query("DELETE FROM console_sessions WHERE expires_ms <= $1")
                    .bind(now_ms)
                    .execute(self.store.writer())
                    .await?;
                query(
                    "INSERT INTO console_sessions (token_hash, user_id, csrf, created_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(csrf)
                .bind(now_ms)
                .bind(expires_ms)
                .execute(self.store.writer())
                .await?;
                Ok(())
            })
            .await
    }

    /// The unexpired session of `token_hash`, with its user.
    pub async fn console_session(self, token_hash: &str, now_ms: i64) -> Result<Option<ConsoleSessionRow>, StoreError> {
        query(
            "SELECT u.id, u.username, u.account_id, u.password_hash, u.created_ms, s.csrf, s.acting_account_id, \
             s.expires_ms FROM console_sessions s JOIN console_users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_ms > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(self.store.guarded_reader())
        .await
    }

    /// Sets the account an operator's session looks at.
    pub async fn set_console_acting_account(
        self,
        token_hash: &str,
        account_id: Option<AccountId>,
    ) -> Result<(), StoreError> {
        query("UPDATE console_sessions SET acting_account_id = $1 WHERE token_hash = $2")
            .bind(account_id)
            .bind(token_hash)
            .execute(self.store.guarded_writer())
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_console_session(self, token_hash: &str) -> Result<(), StoreError> {
        query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.store.guarded_writer())
            .await?;
        Ok(())
    }

    /// The recipients of the account's messages matching `q`, newest first.
    pub async fn search_messages(self, q: &MessageSearch) -> Result<Vec<MessageHit>, StoreError> {
        let sender = q.sender.as_deref().map(|s| format!("%{}%", s.replace(['%', '_'], "")));
        query(AssertSqlSafe(format!(
            "SELECT {HIT_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE d.account_id = $1 AND d.request_ms >= $2 AND d.request_ms < $3 \
             AND ($4 IS NULL OR d.message_id = $4) AND ($5 IS NULL OR d.recipient = $5) \
             AND ($6 IS NULL OR m.from_address LIKE $6) ORDER BY d.request_ms DESC, d.id DESC LIMIT $7"
        )))
        .bind(q.account_id)
        .bind(q.from_ms)
        .bind(q.to_ms)
        .bind(q.message_id.as_deref())
        .bind(q.recipient.as_deref())
        .bind(sender.as_deref())
        .bind(q.limit)
        .fetch_all(self.store.guarded_reader())
        .await
    }

    /// One message of the account: its recipients, every delivery attempt and every event, in time order.
    /// Empty recipients when the account has no such message.
    pub async fn message_timeline(
        self,
        account_id: AccountId,
        message_id: &str,
    ) -> Result<(Vec<MessageHit>, Vec<AttemptRow>, Vec<TimelineEvent>), StoreError> {
        self.store
            .guarded(async {
                let recipients: Vec<MessageHit> = query(AssertSqlSafe(format!(
                    "SELECT {HIT_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.message_id \
                     WHERE d.account_id = $1 AND d.message_id = $2 ORDER BY d.id"
                )))
                .bind(account_id)
                .bind(message_id)
                .fetch_all(self.store.reader())
                .await?;
                if recipients.is_empty() {
                    return Ok((recipients, Vec::new(), Vec::new()));
                }
                let attempts = query(
                    "SELECT d.recipient, a.attempt, a.at_ms, a.deliver_status, a.reply, a.remote \
                 FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
                 WHERE d.account_id = $1 AND d.message_id = $2 ORDER BY a.at_ms, a.attempt",
                )
                .bind(account_id)
                .bind(message_id)
                .fetch_all(self.store.reader())
                .await?;
                let events = query(
                    "SELECT recipient, kind, at_ms, reason, bounce_type, link FROM events \
                 WHERE account_id = $1 AND message_id = $2 ORDER BY at_ms, id",
                )
                .bind(account_id)
                .bind(message_id)
                .fetch_all(self.store.reader())
                .await?;
                Ok((recipients, attempts, events))
            })
            .await
    }

    /// Moves one of the account's tasks from one of `from` to `to` (`None`: runnable again: waiting for its
    /// start if it never fed anything, paused for the day's quota if it was waiting for the next day, else
    /// sending). The batch runner's own writes are conditional on a
    /// runnable status, so a task paused or cancelled here is never set running again by a chunk in flight.
    pub async fn control_send_task(
        self,
        account_id: AccountId,
        task_id: i64,
        from: &[TaskStatus],
        to: Option<TaskStatus>,
        now_ms: i64,
    ) -> Result<TaskControl, StoreError> {
        self.store
            .guarded(async {
                let current: Option<i32> = query("SELECT status FROM send_tasks WHERE account_id = $1 AND id = $2")
                    .bind(account_id)
                    .bind(task_id)
                    .scalar_optional(self.store.writer())
                    .await?;
                let Some(current) = current else {
                    return Ok(TaskControl::NoSuchTask);
                };
                if !from.iter().any(|s| s.code() == current) {
                    return Ok(TaskControl::WrongState);
                }
                let changed = query(
                    "UPDATE send_tasks SET status = COALESCE($1, CASE WHEN cursor = 0 THEN 1 \
                 WHEN next_run_ms > $2 THEN 6 ELSE 5 END), updated_ms = $2 \
                 WHERE account_id = $3 AND id = $4 AND status = $5",
                )
                .bind(to.map(TaskStatus::code))
                .bind(now_ms)
                .bind(account_id)
                .bind(task_id)
                .bind(current)
                .execute(self.store.writer())
                .await?;
                Ok(if changed > 0 {
                    TaskControl::Done
                } else {
                    TaskControl::WrongState
                })
            })
            .await
    }
}
