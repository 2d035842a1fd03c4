//! The queue's input and its status views: the admitted message with its recipients, one recipient's status
//! (`GetSendEmailStatus`) and the queue's counts.

use crate::ids::{AccountId, MessageId};
use crate::status::{DeliverStatus, Lane, RecipientKind, SendStatus, TlsRequirement};

/// An admitted message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The MessageId returned to the sender.
    pub id: MessageId,
    /// The sending account.
    pub account_id: AccountId,
    /// SMTP `MAIL FROM` (the VERP/bounce address).
    pub envelope_from: String,
    /// `FromEmailAddress` as shown in status.
    pub from_address: String,
    /// The subject (kept for status and events; the body itself is purged).
    pub subject: String,
    /// Queue lane (`TriggerType::lane()`): [`Lane::Trigger`] is served first.
    pub lane: Lane,
    /// Admission time, Unix ms (the status query's time axis).
    pub request_ms: i64,
    /// Not to be attempted before this time, Unix ms.
    pub not_before_ms: i64,
    /// Give up after this time, Unix ms (72 h after request by default). Handed to the worker with each claim.
    pub expires_ms: i64,
    /// The MIME.
    pub body: Vec<u8>,
    /// One entry per recipient; at least one.
    pub recipients: Vec<NewRecipient>,
    /// The template the content was rendered from (`TemplateID`), 0 for none: callbacks report it.
    pub template_id: i64,
    /// What the message demands of its connections (the account's or sender's "TLS required", or
    /// `REQUIRETLS`); handed to the worker with each claim.
    pub tls_requirement: TlsRequirement,
}

/// One recipient of a [`NewMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    /// The address as it goes into `RCPT TO`.
    pub address: String,
    /// Its domain (the MX lookup key).
    pub domain: String,
    /// To, Cc or Bcc.
    pub kind: RecipientKind,
    /// [`SendStatus::Ok`] = admitted; anything else = refused at admission, stored final as `Dropped` and never
    /// claimed.
    pub send_status: SendStatus,
    /// Why it was refused (shown as `DeliverMessage`).
    pub deliver_message: Option<String>,
}

/// One recipient's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatusRow {
    /// The message.
    pub message_id: MessageId,
    /// The recipient.
    pub recipient: String,
    /// `FromEmailAddress`.
    pub from_address: String,
    /// Admission result.
    pub send_status: SendStatus,
    /// Delivery result so far.
    pub deliver_status: DeliverStatus,
    /// The last reply or reason.
    pub deliver_message: String,
    /// Admission time, Unix ms.
    pub request_ms: i64,
    /// When it became final, Unix ms.
    pub deliver_ms: Option<i64>,
    /// Attempts made.
    pub attempts: i32,
}

/// Deliveries by queue state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Waiting for their first attempt.
    pub pending: i64,
    /// Waiting for a retry.
    pub deferred: i64,
    /// Claimed by a worker (including leases that have expired but were not taken over yet).
    pub leased: i64,
    /// Final: every delivery less the waiting ones (on SQLite counted over the smallest index, on PostgreSQL by a
    /// scan of every retained delivery): an operator's figure, not a hot-path or periodic one.
    pub done: i64,
}

impl QueueCounts {
    /// The counts of `waiting` deliveries and of `done` ones.
    pub fn new(waiting: WaitingCounts, done: i64) -> Self {
        let WaitingCounts {
            pending,
            deferred,
            leased,
        } = waiting;
        Self {
            pending,
            deferred,
            leased,
            done,
        }
    }

    /// The waiting deliveries alone.
    pub fn waiting(&self) -> WaitingCounts {
        WaitingCounts {
            pending: self.pending,
            deferred: self.deferred,
            leased: self.leased,
        }
    }
}

/// The waiting deliveries by state: [`QueueCounts`] without the final ones, so counting them costs the size of the
/// queue, not that of the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitingCounts {
    /// Waiting for their first attempt.
    pub pending: i64,
    /// Waiting for a retry.
    pub deferred: i64,
    /// Claimed by a worker (including leases that have expired but were not taken over yet).
    pub leased: i64,
}
