//! Row mapping and row values both backends share: a claimed delivery as read, the initial state of a delivery
//! row and what an outcome writes to it. Neutral ground: `sqlite.rs`, `pg.rs` and the shared modules import from
//! here, never from each other.

use mailpush_model::{DeliverStatus, Lane, MessageId, RecipientKind, TlsRequirement};
use sqlx::FromRow;

use crate::deliveries::DeliveryState;
use crate::{
    AccountId, AttemptResult, ClaimedDelivery, DeliveryOutcome, LeaseToken, NewMessage, NewRecipient, StoreError,
};

pub(crate) fn deliver_status(code: i32) -> Result<DeliverStatus, StoreError> {
    DeliverStatus::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("unknown deliver_status {code}")))
}

/// A claimed delivery as read: the columns of `deliveries` plus the message's `envelope_from`, `expires_ms` and
/// `tls_requirement`.
#[derive(FromRow)]
pub(crate) struct ClaimedRow {
    id: i64,
    lease_token: i64,
    message_id: String,
    account_id: AccountId,
    recipient: String,
    domain: String,
    kind: String,
    envelope_from: String,
    #[sqlx(try_from = "i32")]
    lane: Lane,
    attempts: i32,
    request_ms: i64,
    expires_ms: i64,
    #[sqlx(try_from = "i32")]
    tls_requirement: TlsRequirement,
}

impl TryFrom<ClaimedRow> for ClaimedDelivery {
    type Error = StoreError;

    fn try_from(r: ClaimedRow) -> Result<Self, StoreError> {
        Ok(ClaimedDelivery {
            delivery_id: r.id,
            lease: LeaseToken(r.lease_token),
            message_id: MessageId::from_stored(r.message_id),
            account_id: r.account_id,
            recipient: r.recipient,
            domain: r.domain,
            kind: RecipientKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown recipient kind {:?}", r.kind)))?,
            envelope_from: r.envelope_from,
            lane: r.lane,
            attempts: r.attempts,
            request_ms: r.request_ms,
            expires_ms: r.expires_ms,
            tls_requirement: r.tls_requirement,
        })
    }
}

/// Reads a claimed delivery from a row of either backend (see [`ClaimedRow`]).
pub(crate) fn claimed_from_row<R: sqlx::Row>(row: &R) -> Result<ClaimedDelivery, StoreError>
where
    ClaimedRow: for<'r> FromRow<'r, R>,
{
    ClaimedRow::from_row(row)?.try_into()
}

/// The sending domain of `m` (its From address's domain, lower case): the key of warm-up and reputation.
pub(crate) fn sender_domain(m: &NewMessage) -> String {
    m.from_address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase()
}

/// Deliveries of `m` that still have to be attempted.
pub(crate) fn open_count(m: &NewMessage) -> i32 {
    i32::try_from(m.recipients.iter().filter(|r| r.send_status.is_ok()).count()).unwrap_or(i32::MAX)
}

/// The initial state of one delivery row.
pub(crate) struct DeliveryInit<'a> {
    pub(crate) state: DeliveryState,
    pub(crate) deliver_status: i32,
    pub(crate) deliver_message: &'a str,
    pub(crate) deliver_ms: Option<i64>,
}

/// Admitted recipients start queued; refused ones are final (Dropped) from the start, decided at request time.
pub(crate) fn delivery_init<'a>(m: &NewMessage, r: &'a NewRecipient) -> DeliveryInit<'a> {
    let deliver_message = r.deliver_message.as_deref().unwrap_or("");
    if r.send_status.is_ok() {
        DeliveryInit {
            state: DeliveryState::Pending,
            deliver_status: DeliverStatus::Queued.code(),
            deliver_message,
            deliver_ms: None,
        }
    } else {
        DeliveryInit {
            state: DeliveryState::Done,
            deliver_status: DeliverStatus::Dropped.code(),
            deliver_message,
            deliver_ms: Some(m.request_ms),
        }
    }
}

/// What an outcome writes to its delivery row.
pub(crate) struct OutcomeEffect {
    pub(crate) state: DeliveryState,
    pub(crate) deliver_status: i32,
    /// Deferred: the retry time (the row is due again then). Final: unchanged.
    pub(crate) next_attempt_ms: Option<i64>,
    /// Final: when it became final.
    pub(crate) deliver_ms: Option<i64>,
}

pub(crate) fn outcome_effect(o: &DeliveryOutcome) -> OutcomeEffect {
    let deliver_status = o.result.deliver_status().code();
    match &o.result {
        AttemptResult::Deferred { retry_at_ms, .. } => OutcomeEffect {
            state: DeliveryState::Pending,
            deliver_status,
            next_attempt_ms: Some(*retry_at_ms),
            deliver_ms: None,
        },
        _ => OutcomeEffect {
            state: DeliveryState::Done,
            deliver_status,
            next_attempt_ms: None,
            deliver_ms: Some(o.at_ms),
        },
    }
}
