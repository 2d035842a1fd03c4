//! Engagement (migration 0008): unsubscribes bound to (account, sending domain, recipient), per-recipient bodies
//! of tracked mail, callback targets and secrets, and the per-event callback delivery state on `events`.

use crate::events::RecordedEvent;
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

/// The result of one callback attempt, for [`Store::finish_callbacks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackResult {
    /// The event.
    pub event_id: i64,
    /// Its new state (see [`cb_state`]).
    pub state: i32,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it is next due (a retry), else the time of the result.
    pub next_ms: i64,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// What the worker sends for a claimed message: its MIME and the per-recipient bodies of tracked mail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryContent {
    /// The message's MIME (sent to recipients without a body of their own).
    pub body: Vec<u8>,
    /// (recipient, body) of the asked recipients that have their own body.
    pub personal: Vec<(String, Vec<u8>)>,
}

/// Messages whose content one statement of [`Store::delivery_contents`] reads: with up to 50 recipients each,
/// far below SQLite's 32,766 bound parameters.
pub(crate) const CONTENT_READ_CHUNK: usize = 100;

/// Callback delivery states in `events.cb_state`.
pub mod cb_state {
    /// To deliver when due.
    pub const PENDING: i32 = 0;
    /// Delivered (the receiver answered 2xx).
    pub const DELIVERED: i32 = 1;
    /// No callback URL configured when it was due.
    pub const NO_TARGET: i32 = 2;
    /// Given up after the retry window.
    pub const GAVE_UP: i32 = 3;
}

/// The `cb_state` an event is inserted with, as SQL around its account id: [`cb_state::PENDING`] when the
/// account has a callback URL, else [`cb_state::NO_TARGET`] at once. Deciding it in the insert keeps the events
/// of accounts without callbacks (most mail) out of the dispatcher's index: before, each such event cost the
/// dispatcher a claim and a finish, two single-row fsynced commits on the one SQLite writer. A macro, so that
/// single-row and UNNEST inserts are one `concat!` of literals: `initial_cb_state!("u.a")`.
macro_rules! initial_cb_state {
    (open) => {
        "CASE WHEN EXISTS (SELECT 1 FROM callback_targets WHERE callback_targets.account_id = "
    };
    (close) => {
        ") THEN 0 ELSE 2 END"
    };
    ($account:literal) => {
        concat!(
            $crate::engage::initial_cb_state!(open),
            $account,
            $crate::engage::initial_cb_state!(close)
        )
    };
}
pub(crate) use initial_cb_state;

/// Appends [`initial_cb_state`] for `account` as the next value of a `push_values` row.
pub(crate) fn push_initial_cb_state<DB: sqlx::Database>(
    row: &mut sqlx::query_builder::Separated<'_, DB, &'static str>,
    account: AccountId,
) where
    AccountId: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    row.push(initial_cb_state!(open))
        .push_bind_unseparated(account)
        .push_unseparated(initial_cb_state!(close));
}

/// [`push_initial_cb_state`] for a [`crate::sql::Builder`]'s `VALUES` row.
pub(crate) fn push_initial_cb_state_value(row: &mut crate::sql::Values<'_, '_>, account: AccountId) {
    row.push(initial_cb_state!(open))
        .push_bind_unseparated(account)
        .push_unseparated(initial_cb_state!(close));
}

macro_rules! engage_ops {
    (db = $DB:ty $(,)?) => {
        use std::collections::{HashMap, HashSet};

        use mailpush_model::MessageId;
        use sqlx::{QueryBuilder, Row};

        use crate::engage::{CONTENT_READ_CHUNK, CallbackEvent, DeliveryContent};
        use crate::events::{BounceType, NewEvent, RecordedEvent, event_kind};
        use crate::{AccountId, StoreError};

        type Pool = sqlx::Pool<$DB>;

        pub(crate) async fn unsubscribe(
            pool: &Pool,
            account: AccountId,
            domain: &str,
            recipient: &str,
            at_ms: i64,
        ) -> Result<bool, StoreError> {
            let r = sqlx::query(
                "INSERT INTO unsubscribes (account_id, domain, recipient, at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(account)
            .bind(domain)
            .bind(recipient)
            .bind(at_ms)
            .execute(pool)
            .await?;
            Ok(r.rows_affected() > 0)
        }

        pub(crate) async fn put_recipient_bodies(
            pool: &Pool,
            message: &MessageId,
            bodies: &[(String, Vec<u8>)],
        ) -> Result<(), StoreError> {
            for chunk in bodies.chunks(100) {
                let mut qb: QueryBuilder<$DB> =
                    QueryBuilder::new("INSERT INTO recipient_bodies (message_id, recipient, body) ");
                qb.push_values(chunk, |mut b, (r, body)| {
                    b.push_bind(message.as_str().to_string())
                        .push_bind(r.clone())
                        .push_bind(body.clone());
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(pool).await?;
            }
            Ok(())
        }

        pub(crate) async fn recipient_bodies(
            pool: &Pool,
            message: &MessageId,
            recipients: &[String],
        ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            let mut qb: QueryBuilder<$DB> =
                QueryBuilder::new("SELECT recipient, body FROM recipient_bodies WHERE message_id = ");
            qb.push_bind(message.as_str().to_string())
                .push(" AND recipient IN (");
            let mut sep = qb.separated(", ");
            for r in recipients {
                sep.push_bind(r.clone());
            }
            qb.push(")");
            let mut out = Vec::new();
            for row in qb.build().fetch_all(pool).await? {
                out.push((row.try_get("recipient")?, row.try_get("body")?));
            }
            Ok(out)
        }

        pub(crate) async fn delivery_contents(
            pool: &Pool,
            wanted: &[(MessageId, Vec<String>)],
        ) -> Result<HashMap<MessageId, DeliveryContent>, StoreError> {
            let mut out: HashMap<MessageId, DeliveryContent> = HashMap::new();
            // One statement per chunk of messages for both tables: the worker reads a whole claim's content in
            // a round trip or two, not one per message.
            for chunk in wanted.chunks(CONTENT_READ_CHUNK) {
                let asked: HashSet<(&str, &str)> = chunk
                    .iter()
                    .flat_map(|(m, rs)| rs.iter().map(move |r| (m.as_str(), r.as_str())))
                    .collect();
                let mut qb: QueryBuilder<$DB> = QueryBuilder::new(
                    "SELECT message_id, 0 AS part, '' AS recipient, body FROM message_bodies WHERE message_id IN (",
                );
                let mut sep = qb.separated(", ");
                for (m, _) in chunk {
                    sep.push_bind(m.as_str().to_string());
                }
                qb.push(")");
                if !asked.is_empty() {
                    qb.push(
                        " UNION ALL SELECT message_id, 1 AS part, recipient, body FROM recipient_bodies \
                         WHERE message_id IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for (m, rs) in chunk {
                        if !rs.is_empty() {
                            sep.push_bind(m.as_str().to_string());
                        }
                    }
                    qb.push(") AND recipient IN (");
                    let recipients: HashSet<&str> = asked.iter().map(|(_, r)| *r).collect();
                    let mut sep = qb.separated(", ");
                    for r in recipients {
                        sep.push_bind(r.to_string());
                    }
                    qb.push(")");
                }
                let mut personal: Vec<(String, String, Vec<u8>)> = Vec::new();
                for row in qb.build().fetch_all(pool).await? {
                    let message: String = row.try_get("message_id")?;
                    let part: i32 = row.try_get("part")?;
                    if part == 0 {
                        out.entry(MessageId::from_stored(message)).or_default().body = row.try_get("body")?;
                    } else {
                        let recipient: String = row.try_get("recipient")?;
                        // The IN lists cross messages with recipients: keep only the asked pairs.
                        if asked.contains(&(message.as_str(), recipient.as_str())) {
                            personal.push((message, recipient, row.try_get("body")?));
                        }
                    }
                }
                for (message, recipient, body) in personal {
                    // Personal bodies of a message whose MIME is gone are useless (the message is purged).
                    if let Some(c) = out.get_mut(&MessageId::from_stored(message)) {
                        c.personal.push((recipient, body));
                    }
                }
            }
            Ok(out)
        }

        pub(crate) async fn set_callback_target(
            pool: &Pool,
            account: AccountId,
            sender: &str,
            url: Option<&str>,
        ) -> Result<(), StoreError> {
            match url {
                Some(url) => {
                    sqlx::query(
                        "INSERT INTO callback_targets (account_id, sender_address, url) VALUES ($1, $2, $3) \
                         ON CONFLICT (account_id, sender_address) DO UPDATE SET url = excluded.url",
                    )
                    .bind(account)
                    .bind(sender)
                    .bind(url)
                    .execute(pool)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM callback_targets WHERE account_id = $1 AND sender_address = $2")
                        .bind(account)
                        .bind(sender)
                        .execute(pool)
                        .await?;
                }
            }
            Ok(())
        }

        pub(crate) async fn callback_targets(
            pool: &Pool,
            account: AccountId,
        ) -> Result<Vec<(String, String)>, StoreError> {
            let rows = sqlx::query(
                "SELECT sender_address, url FROM callback_targets WHERE account_id = $1 ORDER BY sender_address",
            )
            .bind(account)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("sender_address")?, r.try_get("url")?)))
                .collect()
        }

        pub(crate) async fn callback_secret(pool: &Pool, account: AccountId) -> Result<Option<Vec<u8>>, StoreError> {
            let row = sqlx::query("SELECT secret_sealed FROM callback_secrets WHERE account_id = $1")
                .bind(account)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(r) => Some(r.try_get("secret_sealed")?),
                None => None,
            })
        }

        pub(crate) async fn put_callback_secret(
            pool: &Pool,
            account: AccountId,
            sealed: &[u8],
            replace: bool,
        ) -> Result<(), StoreError> {
            let sql = if replace {
                "INSERT INTO callback_secrets (account_id, secret_sealed) VALUES ($1, $2) \
                 ON CONFLICT (account_id) DO UPDATE SET secret_sealed = excluded.secret_sealed"
            } else {
                "INSERT INTO callback_secrets (account_id, secret_sealed) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            };
            sqlx::query(sql)
                .bind(account)
                .bind(sealed.to_vec())
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(crate) async fn due_callbacks(
            pool: &Pool,
            now_ms: i64,
            limit: i64,
        ) -> Result<Vec<CallbackEvent>, StoreError> {
            let rows = sqlx::query(
                "SELECT e.id, e.account_id, e.message_id, e.recipient, e.kind, e.at_ms, e.reason, e.bounce_type, \
                 e.link, e.user_agent, e.cb_attempts, e.cb_next_ms, \
                 COALESCE(m.from_address, '') AS from_address, COALESCE(m.subject, '') AS subject, \
                 COALESCE(m.request_ms, 0) AS request_ms, COALESCE(m.template_id, 0) AS template_id \
                 FROM events e LEFT JOIN messages m ON m.id = e.message_id \
                 WHERE e.cb_state = 0 AND e.cb_next_ms <= $1 ORDER BY e.cb_next_ms, e.id LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let message_id: String = row.try_get("message_id")?;
                let bounce_type: Option<String> = row.try_get("bounce_type")?;
                out.push(CallbackEvent {
                    event: RecordedEvent {
                        id: row.try_get("id")?,
                        event: NewEvent {
                            account_id: row.try_get("account_id")?,
                            message_id: MessageId::from_stored(message_id),
                            recipient: row.try_get("recipient")?,
                            kind: event_kind(row.try_get("kind")?)?,
                            at_ms: row.try_get("at_ms")?,
                            reason: row.try_get("reason")?,
                            bounce_type: bounce_type.as_deref().and_then(BounceType::parse),
                            link: row.try_get("link")?,
                            user_agent: row.try_get("user_agent")?,
                        },
                    },
                    attempts: row.try_get("cb_attempts")?,
                    next_ms: row.try_get("cb_next_ms")?,
                    from_address: row.try_get("from_address")?,
                    subject: row.try_get("subject")?,
                    request_ms: row.try_get("request_ms")?,
                    template_id: row.try_get("template_id")?,
                });
            }
            Ok(out)
        }

        pub(crate) async fn claim_callbacks(
            pool: &Pool,
            seen: &[(i64, i64)],
            lease_until_ms: i64,
        ) -> Result<Vec<i64>, StoreError> {
            let mut claimed = Vec::with_capacity(seen.len());
            // 2 binds per row: far below both backends' bind limits.
            for chunk in seen.chunks(1000) {
                let mut qb: QueryBuilder<$DB> = QueryBuilder::new("UPDATE events SET cb_next_ms = ");
                qb.push_bind(lease_until_ms)
                    .push(" WHERE cb_state = ")
                    .push_bind(crate::engage::cb_state::PENDING)
                    .push(" AND (id, cb_next_ms) IN (");
                qb.push_values(chunk, |mut b, (id, next)| {
                    b.push_bind(*id).push_bind(*next);
                });
                qb.push(") RETURNING id");
                for row in qb.build().persistent(false).fetch_all(pool).await? {
                    claimed.push(row.try_get("id")?);
                }
            }
            Ok(claimed)
        }

        pub(crate) async fn finish_callbacks(
            pool: &Pool,
            results: &[crate::engage::CallbackResult],
        ) -> Result<(), StoreError> {
            let mut tx = pool.begin().await?;
            for r in results {
                sqlx::query(
                    "UPDATE events SET cb_state = $1, cb_attempts = $2, cb_next_ms = $3, cb_error = $4 WHERE id = $5",
                )
                .bind(r.state)
                .bind(r.attempts)
                .bind(r.next_ms)
                .bind(r.error.as_deref())
                .bind(r.event_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn engagement_kinds(
            pool: &Pool,
            account: AccountId,
            messages: &[MessageId],
        ) -> Result<Vec<(String, String, i32)>, StoreError> {
            let mut out = Vec::new();
            if messages.is_empty() {
                return Ok(out);
            }
            let mut qb: QueryBuilder<$DB> =
                QueryBuilder::new("SELECT DISTINCT message_id, recipient, kind FROM events WHERE account_id = ");
            qb.push_bind(account)
                .push(" AND kind IN (4, 5, 6, 7) AND message_id IN (");
            let mut sep = qb.separated(", ");
            for m in messages {
                sep.push_bind(m.as_str().to_string());
            }
            qb.push(")");
            for row in qb.build().fetch_all(pool).await? {
                out.push((
                    row.try_get("message_id")?,
                    row.try_get("recipient")?,
                    row.try_get("kind")?,
                ));
            }
            Ok(out)
        }
    };
}

mod sqlite_ops {
    engage_ops! { db = sqlx::Sqlite }
}

mod pg_ops {
    engage_ops! { db = sqlx::Postgres }
}

impl Store {
    /// Records that `recipient` unsubscribed from mail of `domain` (the account's sending domain); `true` if new.
    pub async fn unsubscribe(
        &self,
        account: AccountId,
        domain: &str,
        recipient: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        on_ops!(self, writer, unsubscribe(account, domain, recipient, at_ms))
    }

    /// Stores per-recipient bodies of a message (written before the message is enqueued).
    pub async fn put_recipient_bodies(
        &self,
        message: &mailpush_model::MessageId,
        bodies: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        if bodies.is_empty() {
            return Ok(());
        }
        on_ops!(self, writer, put_recipient_bodies(message, bodies))
    }

    /// The per-recipient bodies stored for these recipients of `message` (absent ones use the message body).
    pub async fn recipient_bodies(
        &self,
        message: &mailpush_model::MessageId,
        recipients: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        on_ops!(self, reader, recipient_bodies(message, recipients))
    }

    /// A claimed message's content for delivery: its MIME and the per-recipient bodies of those of `recipients`
    /// that have one, in one round trip. `None` when the message body is gone (purged after the last final
    /// delivery, so never for a delivery still leased).
    pub async fn delivery_content(
        &self,
        message: &mailpush_model::MessageId,
        recipients: &[String],
    ) -> Result<Option<DeliveryContent>, StoreError> {
        let mut all = self
            .delivery_contents(&[(message.clone(), recipients.to_vec())])
            .await?;
        Ok(all.remove(message))
    }

    /// [`Store::delivery_content`] of several messages in one read (a statement per 100 messages): the MIME of
    /// each message that still has one, with the personal bodies of its asked recipients. A message missing from
    /// the map has no content any more.
    pub async fn delivery_contents(
        &self,
        wanted: &[(mailpush_model::MessageId, Vec<String>)],
    ) -> Result<std::collections::HashMap<mailpush_model::MessageId, DeliveryContent>, StoreError> {
        on_ops!(self, reader, delivery_contents(wanted))
    }

    /// Sets (`Some`) or removes (`None`) a callback URL; `sender` "" is the account-level one.
    pub async fn set_callback_target(
        &self,
        account: AccountId,
        sender: &str,
        url: Option<&str>,
    ) -> Result<(), StoreError> {
        on_ops!(self, writer, set_callback_target(account, sender, url))
    }

    /// The account's callback URLs as (sender address or "", URL).
    pub async fn callback_targets(&self, account: AccountId) -> Result<Vec<(String, String)>, StoreError> {
        on_ops!(self, reader, callback_targets(account))
    }

    /// The account's sealed callback secret.
    pub async fn callback_secret(&self, account: AccountId) -> Result<Option<Vec<u8>>, StoreError> {
        on_ops!(self, writer, callback_secret(account))
    }

    /// Stores the sealed callback secret; without `replace` an existing one is kept (first writer wins).
    pub async fn put_callback_secret(
        &self,
        account: AccountId,
        sealed: &[u8],
        replace: bool,
    ) -> Result<(), StoreError> {
        on_ops!(self, writer, put_callback_secret(account, sealed, replace))
    }

    /// Up to `limit` events whose callback is due at `now_ms`, oldest due first (system-wide: the dispatcher).
    pub async fn due_callbacks(&self, now_ms: i64, limit: i64) -> Result<Vec<CallbackEvent>, StoreError> {
        on_ops!(self, writer, due_callbacks(now_ms, limit))
    }

    /// Leases due events' callbacks until `lease_until_ms`, given as (event id, `cb_next_ms` when read), in one
    /// statement; returns the ids leased (an event another dispatcher took first is left out).
    pub async fn claim_callbacks(&self, seen: &[(i64, i64)], lease_until_ms: i64) -> Result<Vec<i64>, StoreError> {
        if seen.is_empty() {
            return Ok(Vec::new());
        }
        on_ops!(self, writer, claim_callbacks(seen, lease_until_ms))
    }

    /// Records callback attempts' results in one transaction (one commit for a dispatcher round).
    pub async fn finish_callbacks(&self, results: &[CallbackResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        on_ops!(self, writer, finish_callbacks(results))
    }

    /// (message, recipient, kind) of the open/click/spamreport/unsubscribe events of these messages.
    pub async fn engagement_kinds(
        &self,
        account: AccountId,
        messages: &[mailpush_model::MessageId],
    ) -> Result<Vec<(String, String, i32)>, StoreError> {
        on_ops!(self, reader, engagement_kinds(account, messages))
    }
}

#[cfg(test)]
mod tests {
    use super::cb_state;

    #[test]
    fn initial_cb_state_is_pending_or_no_target() {
        let sql = initial_cb_state!("e.a");
        let tail = format!("= e.a) THEN {} ELSE {} END", cb_state::PENDING, cb_state::NO_TARGET);
        assert!(sql.ends_with(&tail), "{sql}");
    }
}
