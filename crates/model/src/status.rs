//! Status and event kinds as Tencent SES reports them in `GetSendEmailStatus` and callbacks.

use serde::{Deserialize, Serialize};

/// `DeliverStatus`: what happened on the receiving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i32)]
pub enum DeliverStatus {
    /// 0: accepted and waiting in the queue.
    Queued = 0,
    /// 1: the receiving MX accepted the mail; `DeliverTime` says when.
    Delivered = 1,
    /// 2: dropped by mailpush (suppressed, expired, unroutable); `DeliverMessage` says why.
    Dropped = 2,
    /// 3: the receiving MX refused it for good (5xx).
    Rejected = 3,
    /// 8: the receiving MX deferred it (4xx or no connection); it will be retried.
    Deferred = 8,
}

impl DeliverStatus {
    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Parses the wire value.
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => Self::Queued,
            1 => Self::Delivered,
            2 => Self::Dropped,
            3 => Self::Rejected,
            8 => Self::Deferred,
            _ => return None,
        })
    }

    /// True when no further attempt will be made.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Dropped | Self::Rejected)
    }
}

/// `SendStatus`: mailpush's own processing result for one recipient (Tencent's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SendStatus(pub i32);

impl SendStatus {
    /// 0: processed.
    pub const OK: SendStatus = SendStatus(0);
    /// 1001: internal error.
    pub const INTERNAL: SendStatus = SendStatus(1001);
    /// 1004: delivery timed out (the maximum delivery time passed).
    pub const TIMEOUT: SendStatus = SendStatus(1004);
    /// 1006: too many mails to this address in a short time.
    pub const FREQUENCY_LIMIT: SendStatus = SendStatus(1006);
    /// 1007: the address is on a blacklist.
    pub const BLACKLISTED: SendStatus = SendStatus(1007);
    /// 1008: the recipient's domain refused the sending domain.
    pub const DOMAIN_REFUSED: SendStatus = SendStatus(1008);
    /// 1010: the daily sending limit was exceeded.
    pub const DAILY_LIMIT: SendStatus = SendStatus(1010);
    /// 1011: no permission to send custom content.
    pub const NO_CUSTOM_CONTENT: SendStatus = SendStatus(1011);
    /// 1013: the recipient unsubscribed from the sending domain.
    pub const UNSUBSCRIBED: SendStatus = SendStatus(1013);
    /// 3024: the address failed the format pre-check.
    pub const BAD_ADDRESS: SendStatus = SendStatus(3024);
    /// 3030: bounce rate too high, sending temporarily limited.
    pub const HIGH_BOUNCE_RATE: SendStatus = SendStatus(3030);
}

/// Which header (if any) a recipient appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecipientKind {
    /// Listed in `To`.
    To,
    /// Listed in `Cc`.
    Cc,
    /// Envelope only; appears in no header.
    Bcc,
}

impl RecipientKind {
    /// Stable storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::To => "to",
            Self::Cc => "cc",
            Self::Bcc => "bcc",
        }
    }

    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "to" => Self::To,
            "cc" => Self::Cc,
            "bcc" => Self::Bcc,
            _ => return None,
        })
    }
}

/// `TriggerType`: trigger mail (codes, password resets) has its own lane and goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TriggerType {
    /// 0: marketing and other non-immediate mail (default).
    #[default]
    Batch = 0,
    /// 1: immediate mail such as verification codes.
    Trigger = 1,
}

impl TriggerType {
    /// Parses the wire value.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Batch),
            1 => Some(Self::Trigger),
            _ => None,
        }
    }

    /// The wire value, also the queue lane (lower is served first in the queue: see `lane`).
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Queue priority: 0 for trigger mail, 1 for the rest, so an ascending sort serves trigger mail first.
    pub fn lane(self) -> i32 {
        match self {
            Self::Trigger => 0,
            Self::Batch => 1,
        }
    }
}

/// Event kinds of Tencent's callback, with their `eventid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// 1: delivered.
    Delivered = 1,
    /// 2: dropped.
    Dropped = 2,
    /// 3: bounced (hard or soft).
    Bounce = 3,
    /// 4: opened.
    Open = 4,
    /// 5: a link was clicked.
    Click = 5,
    /// 6: a complaint (spam report).
    SpamReport = 6,
    /// 7: unsubscribed.
    Unsubscribe = 7,
    /// 8: deferred.
    Deferred = 8,
}

impl EventKind {
    /// The callback's `event` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Dropped => "dropped",
            Self::Bounce => "bounce",
            Self::Open => "open",
            Self::Click => "click",
            Self::SpamReport => "spamreport",
            Self::Unsubscribe => "unsubscribe",
            Self::Deferred => "deferred",
        }
    }

    /// The callback's `eventid`.
    pub fn id(self) -> i32 {
        self as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_status_codes() {
        for s in [
            DeliverStatus::Queued,
            DeliverStatus::Delivered,
            DeliverStatus::Dropped,
            DeliverStatus::Rejected,
            DeliverStatus::Deferred,
        ] {
            assert_eq!(DeliverStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(DeliverStatus::Deferred.code(), 8);
        assert!(!DeliverStatus::Deferred.is_final());
        assert!(DeliverStatus::Rejected.is_final());
    }

    #[test]
    fn trigger_lane_first() {
        assert!(TriggerType::Trigger.lane() < TriggerType::Batch.lane());
        assert_eq!(TriggerType::from_code(2), None);
    }
}
