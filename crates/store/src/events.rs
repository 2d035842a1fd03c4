//! The event log (migration 0005): what happened to each recipient's mail after acceptance. Writers are the
//! worker (delivered, deferred, bounce, dropped), the inbound MX (asynchronous bounces, complaints) and the
//! tracking endpoints (open, click, unsubscribe); readers are callbacks, `GetSendEmailStatus` flags and statistics.

use mailpush_model::{EventKind, MessageId};

use crate::{AccountId, Db, Store, StoreError};

/// `bounceType` of a bounce event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BounceType {
    /// A temporary failure that ran out of time, or a 4xx-class DSN.
    Soft,
    /// A permanent failure (5xx, NXDOMAIN, null MX).
    Hard,
}

impl BounceType {
    /// The callback's `bounceType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft_bounce",
            Self::Hard => "hard_bounce",
        }
    }

    /// Parses [`BounceType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "soft_bounce" => Some(Self::Soft),
            "hard_bounce" => Some(Self::Hard),
            _ => None,
        }
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The account that sent the message.
    pub account_id: AccountId,
    /// The message (`bulkId` / `MessageId`).
    pub message_id: MessageId,
    /// The recipient address the event is about.
    pub recipient: String,
    /// What happened.
    pub kind: EventKind,
    /// When, Unix ms.
    pub at_ms: i64,
    /// The remote reply, the DSN's diagnostic, … (empty when there is nothing to say).
    pub reason: String,
    /// For bounces: soft or hard.
    pub bounce_type: Option<BounceType>,
    /// For clicks: the link followed.
    pub link: Option<String>,
    /// For opens and clicks: the client's User-Agent.
    pub user_agent: Option<String>,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Row id; orders the events of one message (not a cross-writer cursor on PostgreSQL).
    pub id: i64,
    /// The event itself.
    pub event: NewEvent,
}

pub(crate) fn event_kind(code: i32) -> Result<EventKind, StoreError> {
    Ok(match code {
        1 => EventKind::Delivered,
        2 => EventKind::Dropped,
        3 => EventKind::Bounce,
        4 => EventKind::Open,
        5 => EventKind::Click,
        6 => EventKind::SpamReport,
        7 => EventKind::Unsubscribe,
        8 => EventKind::Deferred,
        other => return Err(StoreError::Corrupt(format!("unknown event kind {other}"))),
    })
}

macro_rules! event_ops {
    (db = $DB:ty, begin = $begin:expr, apply = $apply:path $(,)?) => {
        use mailpush_model::{EventKind, MessageId};
        use sqlx::{QueryBuilder, Row};

        use crate::events::{BounceType, NewEvent, RecordedEvent, event_kind};
        use crate::{AccountId, StoreError};

        type Pool = sqlx::Pool<$DB>;
        type DbRow = <$DB as sqlx::Database>::Row;

        const COLUMNS: &str =
            "id, account_id, message_id, recipient, kind, at_ms, reason, bounce_type, link, user_agent";

        fn event_from_row(row: &DbRow) -> Result<RecordedEvent, StoreError> {
            let message_id: String = row.try_get("message_id")?;
            let bounce_type: Option<String> = row.try_get("bounce_type")?;
            Ok(RecordedEvent {
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
            })
        }

        /// Appends events and their rollup increments in one transaction. Opens and clicks count in the
        /// statistics only as the recipient's first of the message (`stats_firsts`, race-free by its key).
        pub(crate) async fn record_events(pool: &Pool, events: &[NewEvent]) -> Result<(), StoreError> {
            let mut tx = pool.begin_with($begin).await?;
            let mut delta = crate::stats::StatsDelta::default();
            let mut senders: std::collections::HashMap<(AccountId, String), String> = Default::default();
            for e in events {
                let key = (e.account_id, e.message_id.as_str().to_string());
                #[allow(clippy::map_entry)] // the entry cannot be held across the await below
                if !senders.contains_key(&key) {
                    let from: Option<String> =
                        sqlx::query_scalar("SELECT from_address FROM messages WHERE id = $1 AND account_id = $2")
                            .bind(e.message_id.as_str())
                            .bind(e.account_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    senders.insert(key.clone(), from.unwrap_or_default());
                }
                let first = if matches!(e.kind, EventKind::Open | EventKind::Click) {
                    sqlx::query(
                        "INSERT INTO stats_firsts (message_id, recipient, kind) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(e.message_id.as_str())
                    .bind(&e.recipient)
                    .bind(e.kind.id())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0
                } else {
                    false
                };
                let from = senders.get(&key).map(String::as_str).unwrap_or("");
                delta.event(e.account_id, e.at_ms, from, &e.recipient, e.kind, first);
            }
            // Bounded statements: 10 binds per row keeps each chunk far below both backends' bind limits.
            for chunk in events.chunks(500) {
                let mut qb: QueryBuilder<$DB> = QueryBuilder::new(
                    "INSERT INTO events \
                     (account_id, message_id, recipient, kind, at_ms, reason, bounce_type, link, user_agent, cb_state) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.account_id)
                        .push_bind(e.message_id.as_str().to_string())
                        .push_bind(e.recipient.clone())
                        .push_bind(e.kind.id())
                        .push_bind(e.at_ms)
                        .push_bind(e.reason.clone())
                        .push_bind(e.bounce_type.map(|b| b.as_str()))
                        .push_bind(e.link.clone())
                        .push_bind(e.user_agent.clone());
                    crate::engage::push_initial_cb_state(&mut b, e.account_id);
                });
                qb.build().execute(&mut *tx).await?;
            }
            $apply(&mut *tx, &delta).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn message_events(
            pool: &Pool,
            account: AccountId,
            message: &MessageId,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM events WHERE account_id = $1 AND message_id = $2 ORDER BY id"
            )))
            .bind(account)
            .bind(message.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter().map(event_from_row).collect()
        }

        pub(crate) async fn account_events(
            pool: &Pool,
            account: AccountId,
            from_ms: i64,
            to_ms: i64,
            limit: i64,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM events WHERE account_id = $1 AND at_ms >= $2 AND at_ms < $3 \
                 ORDER BY at_ms, id LIMIT $4"
            )))
            .bind(account)
            .bind(from_ms)
            .bind(to_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(event_from_row).collect()
        }
    };
}

mod sqlite_ops {
    event_ops! { db = sqlx::Sqlite, begin = "BEGIN IMMEDIATE", apply = crate::stats::apply_sqlite }
}

mod pg_ops {
    event_ops! { db = sqlx::Postgres, begin = "BEGIN", apply = crate::stats::apply_pg }
}

impl Store {
    /// Appends events to the log with their statistics, in one transaction (all or nothing).
    pub async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.guarded(async {
            match &self.inner.db {
                Db::Sqlite { writer, .. } => sqlite_ops::record_events(writer, events).await,
                Db::Postgres(pool) => pg_ops::record_events(pool, events).await,
            }
        })
        .await
    }

    /// The events of one of the account's messages, in recorded order.
    pub async fn message_events(
        &self,
        account: AccountId,
        message: &MessageId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.guarded(async {
            match &self.inner.db {
                Db::Sqlite { reader, .. } => sqlite_ops::message_events(reader, account, message).await,
                Db::Postgres(pool) => pg_ops::message_events(pool, account, message).await,
            }
        })
        .await
    }

    /// Up to `limit` of the account's events with `from_ms <= at_ms < to_ms`, oldest first.
    pub async fn account_events(
        &self,
        account: AccountId,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.guarded(async {
            match &self.inner.db {
                Db::Sqlite { reader, .. } => sqlite_ops::account_events(reader, account, from_ms, to_ms, limit).await,
                Db::Postgres(pool) => pg_ops::account_events(pool, account, from_ms, to_ms, limit).await,
            }
        })
        .await
    }
}
