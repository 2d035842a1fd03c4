//! Reputation records as reported: complaints (`GetAbuseReport`) and bounce-rate warnings.

use crate::ids::{AccountId, MessageId};

/// One complaint with its mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseRow {
    /// The message complained about.
    pub message_id: MessageId,
    /// The recipient who complained.
    pub recipient: String,
    /// The message's sender address (empty if the message is unknown).
    pub from_address: String,
    /// The message's subject.
    pub subject: String,
    /// The template it was rendered from (0 = none).
    pub template_id: i64,
    /// When the message was requested, Unix ms.
    pub request_ms: i64,
    /// When it was delivered to this recipient, Unix ms (`None` if no delivery was recorded).
    pub deliver_ms: Option<i64>,
    /// When the complaint was recorded, Unix ms.
    pub complained_ms: i64,
}

/// One complaint (`spamreport` event) for `GetAbuseReport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintRow {
    /// The message complained about.
    pub message_id: MessageId,
    /// The recipient who complained.
    pub recipient: String,
    /// The message's sender address (empty if unknown).
    pub from_address: String,
    /// When the complaint was recorded, Unix ms.
    pub at_ms: i64,
    /// What the report said (feedback type, user agent, …), as recorded.
    pub reason: String,
}

/// A bounce-rate (or other reputation) warning.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct WarningRow {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: AccountId,
    /// What it is about (`bounce_rate`).
    pub kind: String,
    /// Raised at, Unix ms.
    pub raised_ms: i64,
    /// Cleared at (the rate fell back), Unix ms; `None` while in force.
    pub cleared_ms: Option<i64>,
    /// The measured rate, percent.
    pub rate: f64,
    /// The threshold it exceeded, percent.
    pub threshold: f64,
    /// Delivered mail in the window when raised.
    pub delivered: i64,
    /// Bounced mail in the window when raised.
    pub bounced: i64,
}
