//! Feedback arriving after delivery, from the inbound MX: asynchronous bounces (DSNs) and complaints (ARF).
//!
//! These are system lookups (the inbound MX knows no account: the signed VERP token vouches for the message),
//! like the documented ones in `identity.rs`. Each write is one transaction: the event, the blacklist row and
//! the delivery's status change commit together, and a repeated report (providers retransmit) records nothing.

use std::sync::LazyLock;

use mailpush_model::{DeliverStatus, EventKind, MessageId};

use crate::sql::{Conn, Pool, query};

/// Inserts one event with its initial callback state: `$1` account … `$7` bounce type.
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events (account_id, message_id, recipient, kind, at_ms, reason, bounce_type, cb_state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, {})",
        crate::callbacks::initial_cb_state("$1")
    )
});
use crate::{AccountId, BounceType, Store, StoreError};

/// What the inbound MX needs to know about a message to match feedback to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The message.
    pub id: MessageId,
    /// The account that sent it.
    pub account_id: AccountId,
    /// `FromEmailAddress` (its domain is the sending domain unsubscribes bind to).
    pub from_address: String,
    /// Its recipients (`RCPT TO` addresses), in delivery id order.
    pub recipients: Vec<String>,
}

/// An asynchronous bounce to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncBounce {
    /// The message the DSN is about.
    pub message_id: MessageId,
    /// The recipient (matched case-insensitively against the message's recipients).
    pub recipient: String,
    /// When it arrived, Unix ms.
    pub at_ms: i64,
    /// The DSN's diagnostic.
    pub reason: String,
    /// Hard bounces blacklist the address and turn a `delivered` status into `rejected`.
    pub bounce_type: BounceType,
}

/// A complaint to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComplaint {
    /// The message complained about.
    pub message_id: MessageId,
    /// The recipient who complained (matched case-insensitively).
    pub recipient: String,
    /// When it arrived, Unix ms.
    pub at_ms: i64,
    /// The report's feedback type and reporter.
    pub reason: String,
}

/// What recording feedback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackRecorded {
    /// Recorded (event written, suppression applied).
    Recorded,
    /// The same feedback was recorded before; nothing written.
    Duplicate,
    /// The message has no such recipient (or no longer exists); nothing written.
    Unknown,
}

async fn inbound_message(pool: Pool<'_>, id: &MessageId) -> Result<Option<InboundMessage>, StoreError> {
    let Some((account_id, from_address)) = query("SELECT account_id, from_address FROM messages WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional::<(AccountId, String)>(pool)
        .await?
    else {
        return Ok(None);
    };
    let recipients: Vec<String> = query("SELECT recipient FROM deliveries WHERE message_id = $1 ORDER BY id")
        .bind(id.as_str())
        .scalars(pool)
        .await?;
    Ok(Some(InboundMessage {
        id: id.clone(),
        account_id,
        from_address,
        recipients,
    }))
}

/// The delivery `(id, account, recipient as stored, deliver_status)` of `recipient` of `message`.
async fn find_delivery(
    conn: &mut Conn<'_>,
    message: &MessageId,
    recipient: &str,
) -> Result<Option<(i64, AccountId, String, i32)>, StoreError> {
    let rows: Vec<(i64, AccountId, String, i32)> =
        query("SELECT id, account_id, recipient, deliver_status FROM deliveries WHERE message_id = $1 ORDER BY id")
            .bind(message.as_str())
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .find(|(_, _, stored, _)| stored.eq_ignore_ascii_case(recipient.trim())))
}

async fn has_event(
    conn: &mut Conn<'_>,
    message: &MessageId,
    recipient: &str,
    kind: EventKind,
) -> Result<bool, StoreError> {
    let n: i64 = query("SELECT COUNT(*) FROM events WHERE message_id = $1 AND recipient = $2 AND kind = $3")
        .bind(message.as_str())
        .bind(recipient)
        .bind(kind.id())
        .scalar(conn)
        .await?;
    Ok(n > 0)
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    conn: &mut Conn<'_>,
    account: AccountId,
    message: &MessageId,
    recipient: &str,
    kind: EventKind,
    at_ms: i64,
    reason: &str,
    bounce_type: Option<BounceType>,
) -> Result<(), StoreError> {
    query(INSERT_EVENT.as_str())
        .bind(account)
        .bind(message.as_str())
        .bind(recipient)
        .bind(kind.id())
        .bind(at_ms)
        .bind(reason)
        .bind(bounce_type.map(|b| b.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

async fn record_async_bounce(pool: Pool<'_>, b: &AsyncBounce) -> Result<FeedbackRecorded, StoreError> {
    let mut tx = pool.begin().await?;
    let mut conn = tx.conn();
    let Some((delivery, account, recipient, status)) = find_delivery(&mut conn, &b.message_id, &b.recipient).await?
    else {
        return Ok(FeedbackRecorded::Unknown);
    };
    if has_event(&mut conn, &b.message_id, &recipient, EventKind::Bounce).await? {
        return Ok(FeedbackRecorded::Duplicate);
    }
    insert_event(
        &mut conn,
        account,
        &b.message_id,
        &recipient,
        EventKind::Bounce,
        b.at_ms,
        &b.reason,
        Some(b.bounce_type),
    )
    .await?;
    if b.bounce_type == BounceType::Hard {
        query(crate::suppression::UPSERT_BOUNCE_BLACKLIST.as_str())
            .bind(&crate::suppression::normalize(&recipient))
            .bind(account)
            .bind(b.at_ms)
            .bind(&b.reason)
            .execute(&mut conn)
            .await?;
        // The MX accepted and bounced later: the mail was not delivered after all.
        if status == DeliverStatus::Delivered.code() {
            query("UPDATE deliveries SET deliver_status = $1, deliver_message = $2 WHERE id = $3")
                .bind(DeliverStatus::Rejected.code())
                .bind(&b.reason)
                .bind(delivery)
                .execute(&mut conn)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(FeedbackRecorded::Recorded)
}

async fn record_async_delay(
    pool: Pool<'_>,
    message: &MessageId,
    recipient: &str,
    at_ms: i64,
    reason: &str,
) -> Result<FeedbackRecorded, StoreError> {
    let mut tx = pool.begin().await?;
    let mut conn = tx.conn();
    let Some((_, account, recipient, _)) = find_delivery(&mut conn, message, recipient).await? else {
        return Ok(FeedbackRecorded::Unknown);
    };
    insert_event(
        &mut conn,
        account,
        message,
        &recipient,
        EventKind::Deferred,
        at_ms,
        reason,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(FeedbackRecorded::Recorded)
}

async fn record_complaint(pool: Pool<'_>, c: &NewComplaint) -> Result<FeedbackRecorded, StoreError> {
    let mut tx = pool.begin().await?;
    let mut conn = tx.conn();
    let Some((_, account, recipient, _)) = find_delivery(&mut conn, &c.message_id, &c.recipient).await? else {
        return Ok(FeedbackRecorded::Unknown);
    };
    if has_event(&mut conn, &c.message_id, &recipient, EventKind::SpamReport).await? {
        return Ok(FeedbackRecorded::Duplicate);
    }
    insert_event(
        &mut conn,
        account,
        &c.message_id,
        &recipient,
        EventKind::SpamReport,
        c.at_ms,
        &c.reason,
        None,
    )
    .await?;
    // Like SES's account-level suppression list: a complainant gets no more mail from this account
    // (visible in, and removable through, ListCustomBlacklist / DeleteCustomBlackList).
    query(
        "INSERT INTO custom_blacklist (account_id, address, created_ms, expire_ms) \
         VALUES ($1, $2, $3, NULL) ON CONFLICT (account_id, address) DO NOTHING",
    )
    .bind(account)
    .bind(&crate::suppression::normalize(&recipient))
    .bind(c.at_ms)
    .execute(&mut conn)
    .await?;
    tx.commit().await?;
    Ok(FeedbackRecorded::Recorded)
}

/// What the inbound MX records ([`Store::inbound`]).
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    /// Inbound feedback: asynchronous bounces, delays, complaints.
    pub fn inbound(&self) -> Inbound<'_> {
        Inbound { store: self }
    }
}

impl Inbound<'_> {
    /// System lookup for the inbound MX: the account, sender and recipients of a message (`None` if unknown).
    pub async fn inbound_message(self, id: &MessageId) -> Result<Option<InboundMessage>, StoreError> {
        self.store.guarded(inbound_message(self.store.reader(), id)).await
    }

    /// Records an asynchronous bounce (a DSN with `Action: failed`) on the message's recipient: a bounce event,
    /// and for a hard bounce the global blacklist row and `delivered` → `rejected`, in one transaction.
    /// A recipient that already has a bounce event gets nothing more ([`FeedbackRecorded::Duplicate`]).
    pub async fn record_async_bounce(self, b: &AsyncBounce) -> Result<FeedbackRecorded, StoreError> {
        self.store.guarded(record_async_bounce(self.store.writer(), b)).await
    }

    /// Records a DSN's `Action: delayed` as a deferred event (no state change: the remote is still trying).
    pub async fn record_async_delay(
        self,
        message: &MessageId,
        recipient: &str,
        at_ms: i64,
        reason: &str,
    ) -> Result<FeedbackRecorded, StoreError> {
        self.store
            .guarded(record_async_delay(
                self.store.writer(),
                message,
                recipient,
                at_ms,
                reason,
            ))
            .await
    }

    /// Records a complaint: a spamreport event (`UserComplainted`) and the recipient on the sending account's
    /// custom blacklist without expiry, in one transaction; a repeated complaint records nothing.
    pub async fn record_complaint(self, c: &NewComplaint) -> Result<FeedbackRecorded, StoreError> {
        self.store.guarded(record_complaint(self.store.writer(), c)).await
    }
}
