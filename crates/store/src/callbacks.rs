//! Callbacks (migration 0008): targets and secrets per account, and the per-event callback delivery state on
//! `events` (`cb_*` columns), decided at insert ([`initial_cb_state`]) and advanced by the dispatcher.

use crate::events::{EventRow, RecordedEvent};
use crate::sql::{builder, query};
use crate::{AccountId, Store, StoreError};

/// An event due for callback delivery, with what the callback JSON needs from its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    /// The event.
    pub event: RecordedEvent,
    /// Delivery attempts made so far.
    pub attempts: i32,
    /// `cb_next_ms` when read (the claim compares it).
    pub next_ms: i64,
    /// The message's `FromEmailAddress` (empty if the message row is gone).
    pub from_address: String,
    /// The message's subject.
    pub subject: String,
    /// The message's acceptance time, Unix ms.
    pub request_ms: i64,
    /// The template the message was rendered from (0 = none).
    pub template_id: i64,
}

/// The result of one callback attempt, for [`Callbacks::finish_callbacks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackResult {
    /// The event.
    pub event_id: i64,
    /// Its new state.
    pub state: CallbackState,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is next due (a retry), else the time of the result.
    pub next_ms: i64,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Callback delivery state of an event (`events.cb_state`, stored as its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[repr(i32)]
pub enum CallbackState {
    /// To deliver when due.
    Pending = 0,
    /// Delivered (the receiver answered 2xx).
    Delivered = 1,
    /// No callback URL configured when it was due.
    NoTarget = 2,
    /// Given up after the retry window.
    GaveUp = 3,
}

impl CallbackState {
    /// The stored value.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The `cb_state` an event is inserted with, as SQL around its account id: [`CallbackState::Pending`] when the
/// account has a callback URL, else [`CallbackState::NoTarget`] at once. Deciding it in the insert keeps the events
/// of accounts without callbacks (most mail) out of the dispatcher's index: before, each such event cost the
/// dispatcher a claim and a finish, two single-row fsynced commits on the one SQLite writer. The SQL is
/// `INITIAL_CB_STATE_OPEN`, the account id (a column or a bound value), `INITIAL_CB_STATE_CLOSE`.
pub(crate) fn initial_cb_state(account: &str) -> String {
    format!("{INITIAL_CB_STATE_OPEN}{account}{INITIAL_CB_STATE_CLOSE}")
}

/// What precedes the account id in [`initial_cb_state`].
pub(crate) const INITIAL_CB_STATE_OPEN: &str = "CASE WHEN ";

/// What follows the account id in [`initial_cb_state`] (0 = [`CallbackState::Pending`], 2 = `NoTarget`): an
/// account with a callback URL or an enabled SES event destination (`configuration_sets.rs`) gets its events.
pub(crate) const INITIAL_CB_STATE_CLOSE: &str = " IN (SELECT account_id FROM callback_targets \
     UNION ALL SELECT account_id FROM ses_event_destinations WHERE enabled = 1) THEN 0 ELSE 2 END";

/// Appends [`initial_cb_state`] for `account` as the next value of a `push_values` row.
pub(crate) fn push_initial_cb_state<DB: sqlx::Database>(
    row: &mut sqlx::query_builder::Separated<'_, DB, &'static str>,
    account: AccountId,
) where
    AccountId: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    row.push(INITIAL_CB_STATE_OPEN)
        .push_bind_unseparated(account)
        .push_unseparated(INITIAL_CB_STATE_CLOSE);
}

/// [`push_initial_cb_state`] for a [`crate::sql::Builder`]'s `VALUES` row.
pub(crate) fn push_initial_cb_state_value(row: &mut crate::sql::Values<'_, '_>, account: AccountId) {
    row.push(INITIAL_CB_STATE_OPEN)
        .push_bind_unseparated(account)
        .push_unseparated(INITIAL_CB_STATE_CLOSE);
}

/// Callback targets, secrets and delivery state ([`Store::callbacks`]).
#[derive(Debug, Clone, Copy)]
pub struct Callbacks<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Callbacks: targets, secrets, the dispatcher's due events.
    pub fn callbacks(&self) -> Callbacks<'_> {
        Callbacks { store: self }
    }
}

impl Callbacks<'_> {
    /// Sets (`Some`) or removes (`None`) a callback URL; `sender` "" is the account-level one.
    pub async fn set_callback_target(
        self,
        account: AccountId,
        sender: &str,
        url: Option<&str>,
    ) -> Result<(), StoreError> {
        let q = match url {
            Some(url) => query(
                "INSERT INTO callback_targets (account_id, sender_address, url) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, sender_address) DO UPDATE SET url = excluded.url",
            )
            .bind(account)
            .bind(sender)
            .bind(url),
            None => query("DELETE FROM callback_targets WHERE account_id = $1 AND sender_address = $2")
                .bind(account)
                .bind(sender),
        };
        q.execute(self.store.guarded_writer()).await?;
        Ok(())
    }

    /// The account's callback URLs as (sender address or "", URL).
    pub async fn callback_targets(self, account: AccountId) -> Result<Vec<(String, String)>, StoreError> {
        query("SELECT sender_address, url FROM callback_targets WHERE account_id = $1 ORDER BY sender_address")
            .bind(account)
            .fetch_all(self.store.guarded_reader())
            .await
    }

    /// The account's sealed callback secret.
    pub async fn callback_secret(self, account: AccountId) -> Result<Option<Vec<u8>>, StoreError> {
        query("SELECT secret_sealed FROM callback_secrets WHERE account_id = $1")
            .bind(account)
            .scalar_optional(self.store.guarded_writer())
            .await
    }

    /// Stores the sealed callback secret; without `replace` an existing one is kept (first writer wins).
    pub async fn put_callback_secret(self, account: AccountId, sealed: &[u8], replace: bool) -> Result<(), StoreError> {
        let sql = if replace {
            "INSERT INTO callback_secrets (account_id, secret_sealed) VALUES ($1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET secret_sealed = excluded.secret_sealed"
        } else {
            "INSERT INTO callback_secrets (account_id, secret_sealed) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        };
        query(sql)
            .bind(account)
            .bind(sealed)
            .execute(self.store.guarded_writer())
            .await?;
        Ok(())
    }

    /// Up to `limit` events whose callback is due at `now_ms`, oldest due first (system-wide: the dispatcher).
    pub async fn due_callbacks(self, now_ms: i64, limit: i64) -> Result<Vec<CallbackEvent>, StoreError> {
        let rows: Vec<CallbackRow> = query(
            "SELECT e.id, e.account_id, e.message_id, e.recipient, e.kind, e.at_ms, e.reason, e.bounce_type, \
             e.link, e.user_agent, e.cb_attempts, e.cb_next_ms, \
             COALESCE(m.from_address, '') AS from_address, COALESCE(m.subject, '') AS subject, \
             COALESCE(m.request_ms, 0) AS request_ms, COALESCE(m.template_id, 0) AS template_id \
             FROM events e LEFT JOIN messages m ON m.id = e.message_id \
             WHERE e.cb_state = 0 AND e.cb_next_ms <= $1 ORDER BY e.cb_next_ms, e.id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.store.guarded_writer())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CallbackEvent {
                    event: RecordedEvent::try_from(r.event)?,
                    attempts: r.cb_attempts,
                    next_ms: r.cb_next_ms,
                    from_address: r.from_address,
                    subject: r.subject,
                    request_ms: r.request_ms,
                    template_id: r.template_id,
                })
            })
            .collect()
    }

    /// Leases due events' callbacks until `lease_until_ms`, given as (event id, `cb_next_ms` when read), in one
    /// statement; returns the ids leased (an event another dispatcher took first is left out).
    pub async fn claim_callbacks(self, seen: &[(i64, i64)], lease_until_ms: i64) -> Result<Vec<i64>, StoreError> {
        self.store
            .guarded(async {
                let mut claimed = Vec::with_capacity(seen.len());
                // 2 binds per row: far below both backends' bind limits.
                for chunk in seen.chunks(1000) {
                    let mut qb = builder("UPDATE events SET cb_next_ms = ");
                    qb.push_bind(lease_until_ms)
                        .push(" WHERE cb_state = ")
                        .push_bind(CallbackState::Pending.code())
                        .push(" AND (id, cb_next_ms) IN (");
                    qb.push_values(chunk, |b, (id, next)| {
                        b.push_bind(*id).push_bind(*next);
                    });
                    qb.push(") RETURNING id");
                    claimed.extend(qb.build().persistent(false).scalars::<i64>(self.store.writer()).await?);
                }
                Ok(claimed)
            })
            .await
    }

    /// Records callback attempts' results in one transaction (one commit for a dispatcher round).
    pub async fn finish_callbacks(self, results: &[CallbackResult]) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                if results.is_empty() {
                    return Ok(());
                }
                let mut tx = self.store.writer().begin().await?;
                let mut conn = tx.conn();
                for r in results {
                    query(
                        "UPDATE events SET cb_state = $1, cb_attempts = $2, cb_next_ms = $3, cb_error = $4 \
                         WHERE id = $5",
                    )
                    .bind(r.state.code())
                    .bind(r.attempts)
                    .bind(r.next_ms)
                    .bind(r.error.as_deref())
                    .bind(r.event_id)
                    .execute(&mut conn)
                    .await?;
                }
                tx.commit().await
            })
            .await
    }
}

/// An event due for callback, with its message's columns.
#[derive(sqlx::FromRow)]
struct CallbackRow {
    #[sqlx(flatten)]
    event: EventRow,
    cb_attempts: i32,
    cb_next_ms: i64,
    from_address: String,
    subject: String,
    request_ms: i64,
    template_id: i64,
}

#[cfg(test)]
mod tests {
    use super::CallbackState;

    #[test]
    fn initial_cb_state_is_pending_or_no_target() {
        let sql = super::initial_cb_state("e.a");
        let tail = format!(
            "WHERE enabled = 1) THEN {} ELSE {} END",
            CallbackState::Pending.code(),
            CallbackState::NoTarget.code()
        );
        assert!(
            sql.starts_with("CASE WHEN e.a IN (SELECT account_id FROM callback_targets"),
            "{sql}"
        );
        assert!(sql.ends_with(&tail), "{sql}");
    }
}
