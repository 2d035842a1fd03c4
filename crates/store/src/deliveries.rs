//! The queue's records: messages and their recipients going in, claimed deliveries, attempt outcomes and
//! statuses coming out.

use mailpush_model::{DeliverStatus, Lane, MessageId, RecipientKind, TlsRequirement};

use crate::AccountId;

pub use mailpush_model::queue::{DeliveryStatusRow, NewMessage, NewRecipient, QueueCounts, WaitingCounts};

/// Lanes the queue serves, in priority order (see `TriggerType::lane`). Claims and next-due look each lane up
/// separately so that not-yet-due rows of a higher lane never have to be scanned past.
pub const LANES: [Lane; 2] = Lane::ALL;

/// A worker asking for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The worker's name (stored on the row for diagnosis).
    pub worker: String,
    /// At most this many deliveries.
    pub limit: usize,
    /// How long the lease lasts; after it, another worker may take the delivery over.
    pub lease_ms: i64,
    /// The current time, Unix ms.
    pub now_ms: i64,
}

/// The fencing token of a lease: written at claim, required by the outcome.
/// It is a per-delivery counter incremented by every claim, so a stale lease never matches again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseToken(pub i64);

/// One delivery handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery's row id.
    pub delivery_id: i64,
    /// The lease; pass it back in the [`DeliveryOutcome`].
    pub lease: LeaseToken,
    /// The message.
    pub message_id: MessageId,
    /// The sending account.
    pub account_id: AccountId,
    /// `RCPT TO`.
    pub recipient: String,
    /// The recipient's domain.
    pub domain: String,
    /// To, Cc or Bcc.
    pub kind: RecipientKind,
    /// `MAIL FROM`.
    pub envelope_from: String,
    /// Queue lane.
    pub lane: Lane,
    /// Attempts made before this claim.
    pub attempts: i32,
    /// Admission time, Unix ms.
    pub request_ms: i64,
    /// Give up after this time, Unix ms: a worker claiming past it should record `Dropped`.
    pub expires_ms: i64,
    /// What the message demands of the connection it goes over.
    pub tls_requirement: TlsRequirement,
}

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The MX accepted it (final).
    Delivered {
        /// The MX's reply.
        reply: String,
    },
    /// The MX refused it for good because the address cannot receive mail (final; a hard bounce, which
    /// blacklists the address).
    Rejected {
        /// The MX's reply.
        reply: String,
    },
    /// The MX refused this message for good, but not the address (mailbox full, too big, policy): final, a
    /// soft bounce, no blacklisting (see `mailpush_reputation::classify`).
    SoftBounced {
        /// The MX's reply.
        reply: String,
    },
    /// mailpush gave up on it (final).
    Dropped {
        /// Why.
        reason: String,
    },
    /// Deferred until the retry deadline passed (final; a soft bounce, status Rejected with the last reply).
    Expired {
        /// "gave up after N attempts; last reply: …".
        reply: String,
    },
    /// Try again later.
    Deferred {
        /// The MX's reply or the connection error.
        reply: String,
        /// When to try again, Unix ms.
        retry_at_ms: i64,
    },
}

impl AttemptResult {
    /// The status this result leaves the delivery in.
    pub fn deliver_status(&self) -> DeliverStatus {
        match self {
            AttemptResult::Delivered { .. } => DeliverStatus::Delivered,
            AttemptResult::Rejected { .. } | AttemptResult::SoftBounced { .. } | AttemptResult::Expired { .. } => {
                DeliverStatus::Rejected
            }
            AttemptResult::Dropped { .. } => DeliverStatus::Dropped,
            AttemptResult::Deferred { .. } => DeliverStatus::Deferred,
        }
    }

    /// The reply or reason text.
    pub fn message(&self) -> &str {
        match self {
            AttemptResult::Delivered { reply }
            | AttemptResult::Rejected { reply }
            | AttemptResult::SoftBounced { reply }
            | AttemptResult::Expired { reply }
            | AttemptResult::Deferred { reply, .. } => reply,
            AttemptResult::Dropped { reason } => reason,
        }
    }
}

impl AttemptResult {
    /// The event this result appends to the event log (recorded in the same transaction as the outcome):
    /// delivered, bounce (hard for a refused address, soft for any other permanent refusal or an expired retry
    /// deadline), dropped or deferred.
    pub fn event(&self) -> (mailpush_model::EventKind, Option<crate::BounceType>) {
        use mailpush_model::EventKind;
        match self {
            AttemptResult::Delivered { .. } => (EventKind::Delivered, None),
            AttemptResult::Rejected { .. } => (EventKind::Bounce, Some(crate::BounceType::Hard)),
            AttemptResult::SoftBounced { .. } | AttemptResult::Expired { .. } => {
                (EventKind::Bounce, Some(crate::BounceType::Soft))
            }
            AttemptResult::Dropped { .. } => (EventKind::Dropped, None),
            AttemptResult::Deferred { .. } => (EventKind::Deferred, None),
        }
    }
}

/// The outcome of one claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// The delivery's row id.
    pub delivery_id: i64,
    /// The lease it was claimed with.
    pub lease: LeaseToken,
    /// When the attempt ended, Unix ms.
    pub at_ms: i64,
    /// What happened.
    pub result: AttemptResult,
    /// The MX host / IP talked to, if any.
    pub remote: Option<String>,
}

/// A `GetSendEmailStatus` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery {
    /// Only this account's rows.
    pub account_id: AccountId,
    /// Request time from (inclusive), Unix ms.
    pub from_ms: i64,
    /// Request time to (exclusive), Unix ms.
    pub to_ms: i64,
    /// Only this message.
    pub message_id: Option<MessageId>,
    /// Only this recipient (exact match).
    pub to_address: Option<String>,
    /// Rows to skip.
    pub offset: i64,
    /// Most rows to return.
    pub limit: i64,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// When it ended, Unix ms.
    pub at_ms: i64,
    /// Its result.
    pub deliver_status: DeliverStatus,
    /// The reply or reason.
    pub reply: String,
    /// The MX host / IP, if any.
    pub remote: Option<String>,
}

/// Row states in `deliveries.state`, stored as their value (the hot paths' literal `state < 2` means "not final").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[repr(i32)]
pub(crate) enum DeliveryState {
    /// Queued or deferred: claimable when due.
    Pending = 0,
    /// Leased to a worker until `next_attempt_ms`.
    Leased = 1,
    /// Final.
    Done = 2,
}

impl DeliveryState {
    /// The stored value.
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

impl crate::sql::StoredCode for DeliveryState {
    fn stored(self) -> i32 {
        self.code()
    }
}
