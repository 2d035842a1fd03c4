//! The event log (migration 0005): what happened to each recipient's mail after acceptance. Writers are the
//! worker (delivered, deferred, bounce, dropped), the inbound MX (asynchronous bounces, complaints) and the
//! tracking endpoints (open, click, unsubscribe); readers are callbacks, `GetSendEmailStatus` flags and statistics.

use mailpush_model::{EventKind, MessageId};

use sqlx::AssertSqlSafe;

use crate::sql::{Pool, builder, query};
use crate::{AccountId, Store, StoreError};

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
        9 => EventKind::Send,
        10 => EventKind::Reject,
        11 => EventKind::RenderingFailure,
        12 => EventKind::Subscription,
        other => return Err(StoreError::Corrupt(format!("unknown event kind {other}"))),
    })
}

const COLUMNS: &str = "id, account_id, message_id, recipient, kind, at_ms, reason, bounce_type, link, user_agent";

/// An `events` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    account_id: AccountId,
    message_id: String,
    recipient: String,
    kind: i32,
    at_ms: i64,
    reason: String,
    bounce_type: Option<String>,
    link: Option<String>,
    user_agent: Option<String>,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(RecordedEvent {
            id: r.id,
            event: NewEvent {
                account_id: r.account_id,
                message_id: MessageId::from_stored(r.message_id),
                recipient: r.recipient,
                kind: event_kind(r.kind)?,
                at_ms: r.at_ms,
                reason: r.reason,
                bounce_type: r.bounce_type.as_deref().and_then(BounceType::parse),
                link: r.link,
                user_agent: r.user_agent,
            },
        })
    }
}

/// The event log ([`Store::events`]).
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// The event log: record and read events.
    pub fn events(&self) -> Events<'_> {
        Events { store: self }
    }
}

impl Events<'_> {
    /// Appends events to the log with their statistics, in one transaction (all or nothing). Opens and clicks
    /// count in the statistics only as the recipient's first of the message (`stats_firsts`, race-free by its key).
    pub async fn record_events(self, events: &[NewEvent]) -> Result<(), StoreError> {
        self.store
            .guarded(async {
                if events.is_empty() {
                    return Ok(());
                }
                record_events(self.store.writer(), events).await
            })
            .await
    }

    /// The events of one of the account's messages, in recorded order.
    pub async fn message_events(
        self,
        account: AccountId,
        message: &MessageId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE account_id = $1 AND message_id = $2 ORDER BY id"
        )))
        .bind(account)
        .bind(message.as_str())
        .fetch_all(self.store.guarded_reader())
        .await?;
        rows.into_iter().map(RecordedEvent::try_from).collect()
    }

    /// Up to `limit` of the account's events with `from_ms <= at_ms < to_ms`, oldest first.
    pub async fn account_events(
        self,
        account: AccountId,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows: Vec<EventRow> = query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE account_id = $1 AND at_ms >= $2 AND at_ms < $3 \
             ORDER BY at_ms, id LIMIT $4"
        )))
        .bind(account)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(self.store.guarded_reader())
        .await?;
        rows.into_iter().map(RecordedEvent::try_from).collect()
    }

    /// (message, recipient, kind) of the open/click/spamreport/unsubscribe events of these messages.
    pub async fn engagement_kinds(
        self,
        account: AccountId,
        messages: &[MessageId],
    ) -> Result<Vec<(String, String, i32)>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = builder("SELECT DISTINCT message_id, recipient, kind FROM events WHERE account_id = ");
        qb.push_bind(account)
            .push(" AND kind IN (4, 5, 6, 7) AND message_id IN (");
        qb.push_binds(messages.iter().map(MessageId::as_str));
        qb.push(")");
        qb.build().fetch_all(self.store.guarded_reader()).await
    }
}

/// [`Events::record_events`]' transaction.
async fn record_events(pool: Pool<'_>, events: &[NewEvent]) -> Result<(), StoreError> {
    let mut tx = pool.begin_write().await?;
    let mut conn = tx.conn();
    let mut delta = crate::daily_statistics::StatsDelta::default();
    let mut senders: std::collections::HashMap<(AccountId, String), String> = Default::default();
    for e in events {
        let key = (e.account_id, e.message_id.as_str().to_string());
        #[allow(clippy::map_entry)] // the entry cannot be held across the await below
        if !senders.contains_key(&key) {
            let from: Option<String> = query("SELECT from_address FROM messages WHERE id = $1 AND account_id = $2")
                .bind(e.message_id.as_str())
                .bind(e.account_id)
                .scalar_optional(&mut conn)
                .await?;
            senders.insert(key.clone(), from.unwrap_or_default());
        }
        let first = if matches!(e.kind, EventKind::Open | EventKind::Click) {
            query(
                "INSERT INTO stats_firsts (message_id, recipient, kind) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(e.message_id.as_str())
            .bind(&e.recipient)
            .bind(e.kind.id())
            .execute(&mut conn)
            .await?
                > 0
        } else {
            false
        };
        let from = senders.get(&key).map(String::as_str).unwrap_or("");
        delta.event(e.account_id, e.at_ms, from, &e.recipient, e.kind, first);
    }
    // Bounded statements: 10 binds per row keeps each chunk far below both backends' bind limits.
    for chunk in events.chunks(500) {
        let mut qb = builder(
            "INSERT INTO events \
             (account_id, message_id, recipient, kind, at_ms, reason, bounce_type, link, user_agent, cb_state) ",
        );
        qb.push_values(chunk, |b, e| {
            b.push_bind(e.account_id)
                .push_bind(e.message_id.as_str())
                .push_bind(&e.recipient)
                .push_bind(e.kind.id())
                .push_bind(e.at_ms)
                .push_bind(&e.reason)
                .push_bind(e.bounce_type.map(|b| b.as_str()))
                .push_bind(e.link.as_deref())
                .push_bind(e.user_agent.as_deref());
            crate::callbacks::push_initial_cb_state_value(b, e.account_id);
        });
        qb.build().execute(&mut conn).await?;
    }
    conn.apply_stats(&delta).await?;
    tx.commit().await?;
    Ok(())
}
