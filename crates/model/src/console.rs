//! What the web console lists: message search hits, delivery attempts and a message's events.

/// One recipient of one message, as the search lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct MessageHit {
    /// MessageId.
    pub message_id: String,
    /// The recipient.
    pub recipient: String,
    /// From as sent.
    pub from_address: String,
    /// Subject.
    pub subject: String,
    /// Accepted, Unix ms.
    pub request_ms: i64,
    /// `DeliverStatus` wire value.
    pub deliver_status: i32,
    /// The receiver's last reply.
    pub deliver_message: String,
    /// Attempts made.
    pub attempts: i32,
}

/// One delivery attempt of a message's recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AttemptRow {
    /// The recipient.
    pub recipient: String,
    /// 1, 2, …
    pub attempt: i32,
    /// Unix ms.
    pub at_ms: i64,
    /// `DeliverStatus` after it.
    pub deliver_status: i32,
    /// The receiver's reply (or why no reply came).
    pub reply: String,
    /// The MX address dialled.
    pub remote: Option<String>,
}

/// One event of a message (the `events` log).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct TimelineEvent {
    /// The recipient.
    pub recipient: String,
    /// `EventKind` value.
    pub kind: i32,
    /// Unix ms.
    pub at_ms: i64,
    /// Reply or reason.
    pub reason: String,
    /// Bounce type, for bounces.
    pub bounce_type: Option<String>,
    /// The link, for clicks.
    pub link: Option<String>,
}
