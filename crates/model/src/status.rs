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

/// A stored or wire integer that names no value of a status enum (a corrupt row, or an unknown input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {code}")]
pub struct UnknownCode {
    /// Which status it was read as (`lane`, `send_status`, …).
    pub what: &'static str,
    /// The value read.
    pub code: i32,
}

/// `SendStatus`: mailpush's own processing result for one recipient (Tencent's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum SendStatus {
    /// 0: processed.
    #[default]
    Ok = 0,
    /// 1001: internal error.
    Internal = 1001,
    /// 1004: delivery timed out (the maximum delivery time passed).
    Timeout = 1004,
    /// 1006: too many mails to this address in a short time.
    FrequencyLimit = 1006,
    /// 1007: the address is on a blacklist.
    Blacklisted = 1007,
    /// 1008: the recipient's domain refused the sending domain.
    DomainRefused = 1008,
    /// 1010: the daily sending limit was exceeded.
    DailyLimit = 1010,
    /// 1011: no permission to send custom content.
    NoCustomContent = 1011,
    /// 1013: the recipient unsubscribed from the sending domain.
    Unsubscribed = 1013,
    /// 3024: the address failed the format pre-check.
    BadAddress = 3024,
    /// 3030: bounce rate too high, sending temporarily limited.
    HighBounceRate = 3030,
}

impl SendStatus {
    /// Every status, in code order.
    pub const ALL: [SendStatus; 11] = [
        Self::Ok,
        Self::Internal,
        Self::Timeout,
        Self::FrequencyLimit,
        Self::Blacklisted,
        Self::DomainRefused,
        Self::DailyLimit,
        Self::NoCustomContent,
        Self::Unsubscribed,
        Self::BadAddress,
        Self::HighBounceRate,
    ];

    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// True for [`SendStatus::Ok`]: the recipient was admitted (anything else was refused at admission).
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }
}

impl TryFrom<i32> for SendStatus {
    type Error = UnknownCode;

    fn try_from(code: i32) -> Result<Self, UnknownCode> {
        Self::ALL.into_iter().find(|s| s.code() == code).ok_or(UnknownCode {
            what: "send_status",
            code,
        })
    }
}

/// The queue lane a message waits in; lower is served first (see [`TriggerType::lane`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Lane {
    /// 0: trigger mail (codes, password resets), served first.
    Trigger = 0,
    /// 1: everything else.
    Batch = 1,
}

impl Lane {
    /// The lanes in the order the queue serves them.
    pub const ALL: [Lane; 2] = [Lane::Trigger, Lane::Batch];

    /// The stored value.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl TryFrom<i32> for Lane {
    type Error = UnknownCode;

    fn try_from(code: i32) -> Result<Self, UnknownCode> {
        Self::ALL
            .into_iter()
            .find(|l| l.code() == code)
            .ok_or(UnknownCode { what: "lane", code })
    }
}

/// What a message demands of the connection it is delivered over, decided when it is accepted: the account's
/// and the sender address's "TLS required" settings, or the `REQUIRETLS` parameter of its SMTP submission
/// (RFC 8689).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(i32)]
pub enum TlsRequirement {
    /// -1: mailpush's own TLS reports (RFC 8460 §5.3: delivered despite any TLS failure). Neither MTA-STS nor
    /// DANE nor a required `outbound_tls` applies: STARTTLS when offered, plain text otherwise; the session is not
    /// counted in the next TLS report.
    Exempt = -1,
    /// 0: nothing of its own; the process's `outbound_tls` policy applies.
    #[default]
    None = 0,
    /// 1: only over STARTTLS with a certificate that verifies for the MX host name; never in plain text.
    Verified = 1,
    /// 2: as [`TlsRequirement::Verified`], and only to a receiver that advertises `REQUIRETLS`, which is passed
    /// on (RFC 8689).
    RequireTls = 2,
}

impl TlsRequirement {
    /// Every requirement, weakest first.
    pub const ALL: [TlsRequirement; 4] = [
        TlsRequirement::Exempt,
        TlsRequirement::None,
        TlsRequirement::Verified,
        TlsRequirement::RequireTls,
    ];

    /// The stored value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Whether the message must go over a verified TLS connection.
    pub fn needs_verified_tls(self) -> bool {
        matches!(self, TlsRequirement::Verified | TlsRequirement::RequireTls)
    }

    /// Whether the message is delivered outside every TLS policy ([`TlsRequirement::Exempt`]).
    pub fn is_exempt(self) -> bool {
        self == TlsRequirement::Exempt
    }
}

impl TryFrom<i32> for TlsRequirement {
    type Error = UnknownCode;

    fn try_from(code: i32) -> Result<Self, UnknownCode> {
        Self::ALL.into_iter().find(|t| t.code() == code).ok_or(UnknownCode {
            what: "tls_requirement",
            code,
        })
    }
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

    /// Queue priority: trigger mail first, so an ascending sort serves trigger mail first.
    pub fn lane(self) -> Lane {
        match self {
            Self::Trigger => Lane::Trigger,
            Self::Batch => Lane::Batch,
        }
    }
}

/// Event kinds: those of Tencent's callback (1–8, with their `eventid`), then the kinds only SES v2 event
/// destinations receive (9–12), which the Tencent callback never carries ([`EventKind::is_tencent`]).
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
    /// 9: accepted for delivery (SES `SEND`), recorded for mail sent with a configuration set.
    Send = 9,
    /// 10: refused at admission for its content (SES `REJECT`: virus, content review, spam score).
    Reject = 10,
    /// 11: the template could not be rendered for the recipient (SES `RENDERING_FAILURE`).
    RenderingFailure = 11,
    /// 12: a contact changed its contact-list topic preferences (SES `SUBSCRIPTION`).
    Subscription = 12,
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
            Self::Send => "send",
            Self::Reject => "reject",
            Self::RenderingFailure => "rendering_failure",
            Self::Subscription => "subscription",
        }
    }

    /// The callback's `eventid` (the stored value).
    pub fn id(self) -> i32 {
        self as i32
    }

    /// Whether Tencent's callback knows the kind (`eventid` 1–8): the others go to SES event destinations only.
    pub fn is_tencent(self) -> bool {
        (self as i32) <= 8
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

    #[test]
    fn stored_codes_round_trip_and_unknown_ones_are_refused() {
        for l in Lane::ALL {
            assert_eq!(Lane::try_from(l.code()), Ok(l));
        }
        for s in SendStatus::ALL {
            assert_eq!(SendStatus::try_from(s.code()), Ok(s));
        }
        for t in TlsRequirement::ALL {
            assert_eq!(TlsRequirement::try_from(t.code()), Ok(t));
        }
        assert!(TlsRequirement::try_from(3).is_err());
        assert!(!TlsRequirement::None.needs_verified_tls());
        assert!(!TlsRequirement::Exempt.needs_verified_tls() && TlsRequirement::Exempt.is_exempt());
        assert!(TlsRequirement::Exempt < TlsRequirement::None);
        assert!(TlsRequirement::Verified < TlsRequirement::RequireTls);
        let e = Lane::try_from(2).expect_err("lane 2 does not exist");
        assert_eq!(e.to_string(), "unknown lane 2");
        assert_eq!(
            SendStatus::try_from(1).unwrap_err().to_string(),
            "unknown send_status 1"
        );
    }
}
