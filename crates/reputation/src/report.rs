//! Parsers of the feedback mailbox providers send to the inbound MX:
//!
//! - **DSN** (RFC 3464): `multipart/report; report-type=delivery-status` with a `message/delivery-status`
//!   part (per-message fields, then one block of fields per recipient: `Final-Recipient`, `Action`, `Status`,
//!   `Diagnostic-Code`) and usually the original message or its headers.
//! - **ARF** (RFC 5965): `multipart/report; report-type=feedback-report` with a `message/feedback-report` part
//!   (`Feedback-Type`, `Original-Mail-From`, `Original-Rcpt-To`, …) and the original message or its headers;
//!   parsed with mail-auth's ARF parser.
//!
//! Both are matched to mailpush's messages by what they carry of the original: its VERP return path
//! (`Original-Mail-From`, the original's `Return-Path`) or its `Message-ID` (`<mp-…@domain>`).
//! Everything is best effort on hostile input and never panics.

use crate::classify::{Classification, EnhancedCode, classify, classify_parts};
use mail_auth::report::{Feedback, FeedbackType};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailpush_model::MessageId;

/// Largest report parsed (a DSN or ARF with the original attached; the SMTP layer bounds it too).
pub const MAX_REPORT_BYTES: usize = 10 * 1024 * 1024;

/// What a DSN says happened to one recipient (`Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// The message could not be delivered and will not be retried.
    Failed,
    /// Delivery is still being attempted.
    Delayed,
    /// Delivered (a positive DSN).
    Delivered,
    /// Relayed to a system that sends no DSNs.
    Relayed,
    /// Delivered and forwarded to several addresses.
    Expanded,
    /// Anything else.
    Other,
}

impl DsnAction {
    fn parse(s: &str) -> DsnAction {
        match s
            .trim()
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
        {
            a if a.eq_ignore_ascii_case("failed") => DsnAction::Failed,
            a if a.eq_ignore_ascii_case("delayed") => DsnAction::Delayed,
            a if a.eq_ignore_ascii_case("delivered") => DsnAction::Delivered,
            a if a.eq_ignore_ascii_case("relayed") => DsnAction::Relayed,
            a if a.eq_ignore_ascii_case("expanded") => DsnAction::Expanded,
            _ => DsnAction::Other,
        }
    }
}

/// One per-recipient block of a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Final-Recipient` address (the address type, `rfc822;`, removed).
    pub final_recipient: Option<String>,
    /// `Original-Recipient` address, when given.
    pub original_recipient: Option<String>,
    /// `Action`.
    pub action: DsnAction,
    /// `Status` (RFC 3463 code).
    pub status: Option<EnhancedCode>,
    /// `Diagnostic-Code` text (the type, `smtp;`, removed), e.g. `550 5.1.1 user unknown`.
    pub diagnostic: Option<String>,
    /// The classification of `Status` and `Diagnostic-Code` together.
    pub classification: Classification,
}

impl DsnRecipient {
    /// The address the report is about: `Original-Recipient` (what mailpush sent to) before `Final-Recipient`
    /// (which may be a rewritten, forwarded address).
    pub fn address(&self) -> Option<&str> {
        self.original_recipient.as_deref().or(self.final_recipient.as_deref())
    }

    /// A reason text for events: the diagnostic, else the status.
    pub fn reason(&self) -> String {
        match (&self.diagnostic, &self.status) {
            (Some(d), _) => d.clone(),
            (None, Some(s)) => s.to_string(),
            (None, None) => String::from("delivery status notification"),
        }
    }
}

/// An abuse report (ARF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// `Feedback-Type` (`abuse`, `fraud`, `virus`, `other`, …; `not-spam` and `auth-failure` are not complaints).
    pub feedback_type: String,
    /// `Original-Rcpt-To`, when the provider did not redact it.
    pub original_rcpt_to: Option<String>,
    /// `Original-Mail-From` (the VERP return path of mail sent by mailpush).
    pub original_mail_from: Option<String>,
    /// `User-Agent` of the reporting system.
    pub user_agent: Option<String>,
    /// The reporting provider: `Reporting-MTA`, else `User-Agent`.
    pub reporter: Option<String>,
}

/// What an inbound mail is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundReport {
    /// A delivery status notification.
    Dsn {
        /// Its per-recipient blocks.
        recipients: Vec<DsnRecipient>,
        /// What the attached original tells about the message.
        original: Original,
    },
    /// A complaint.
    Complaint {
        /// The report's fields.
        complaint: Complaint,
        /// What the attached original tells about the message.
        original: Original,
    },
    /// An ARF that is not a complaint (`not-spam`, `auth-failure`): nothing to record.
    NotAComplaint,
    /// Neither DSN nor ARF (an autoresponder, a non-standard bounce, a human's reply).
    Other {
        /// What the mail's own headers or attachments tell about an original message.
        original: Original,
        /// The mail's subject.
        subject: String,
    },
}

/// What a report carries of the original message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// A mailpush MessageId from its `Message-ID` header (`<mp-…@domain>`).
    pub message_id: Option<MessageId>,
    /// Its `Return-Path` (mailpush's VERP address when it came from mailpush).
    pub return_path: Option<String>,
    /// Its first `To` address.
    pub to: Option<String>,
}

/// Parses an inbound mail into a report. Never panics; input over [`MAX_REPORT_BYTES`] is only looked at up to it.
pub fn parse_report(raw: &[u8]) -> InboundReport {
    let raw = &raw[..raw.len().min(MAX_REPORT_BYTES)];
    let Some(message) = MessageParser::new().parse(raw) else {
        return InboundReport::Other {
            original: Original::default(),
            subject: String::new(),
        };
    };
    let mut status_fields: Option<Vec<u8>> = None;
    let mut is_arf = false;
    let mut original = Original::default();
    for part in &message.parts {
        if part.is_content_type("message", "delivery-status")
            || part.is_content_type("message", "global-delivery-status")
        {
            if status_fields.is_none() {
                status_fields = Some(part.contents().to_vec());
            }
        } else if part.is_content_type("message", "feedback-report") {
            is_arf = true;
        } else if let PartType::Message(inner) = &part.body {
            original.merge(original_of(inner));
        } else if part.is_content_type("text", "rfc822-headers") || part.is_content_type("text", "rfc822-header") {
            let mut headers = part.contents().to_vec();
            headers.extend_from_slice(b"\r\n\r\n");
            if let Some(inner) = MessageParser::new().parse_headers(&headers) {
                original.merge(original_of(&inner));
            }
        }
    }
    if is_arf {
        return match Feedback::parse_rfc5322(raw) {
            Ok(f) => match f.feedback_type() {
                FeedbackType::NotSpam | FeedbackType::AuthFailure => InboundReport::NotAComplaint,
                t => InboundReport::Complaint {
                    complaint: Complaint {
                        feedback_type: feedback_type_name(t).to_string(),
                        original_rcpt_to: f.original_rcpt_to().map(strip_angles),
                        original_mail_from: f.original_mail_from().map(strip_angles),
                        user_agent: f.user_agent().map(str::to_string),
                        reporter: f.reporting_mta().or(f.user_agent()).map(str::to_string),
                    },
                    original,
                },
            },
            Err(_) => InboundReport::NotAComplaint,
        };
    }
    if let Some(fields) = status_fields {
        return InboundReport::Dsn {
            recipients: parse_delivery_status(&fields),
            original,
        };
    }
    InboundReport::Other {
        original: original_of(&message),
        subject: message.subject().unwrap_or_default().to_string(),
    }
}

fn feedback_type_name(t: FeedbackType) -> &'static str {
    match t {
        FeedbackType::Abuse => "abuse",
        FeedbackType::AuthFailure => "auth-failure",
        FeedbackType::Fraud => "fraud",
        FeedbackType::NotSpam => "not-spam",
        FeedbackType::Other => "other",
        FeedbackType::Virus => "virus",
    }
}

impl Original {
    fn merge(&mut self, other: Original) {
        self.message_id = self.message_id.take().or(other.message_id);
        self.return_path = self.return_path.take().or(other.return_path);
        self.to = self.to.take().or(other.to);
    }
}

fn original_of(m: &mail_parser::Message<'_>) -> Original {
    let message_id = m.message_id().and_then(|id| {
        let left = id.trim().trim_start_matches('<').split('@').next().unwrap_or("");
        MessageId::parse(&left.to_ascii_lowercase())
    });
    let return_path = m
        .header_raw("Return-Path")
        .map(|v| strip_angles(v.trim()))
        .filter(|v| !v.is_empty());
    let to = m
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    Original {
        message_id,
        return_path,
        to,
    }
}

fn strip_angles(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// Removes an address or diagnostic type (`rfc822;`, `smtp;`) in front of a DSN field value.
fn strip_type(value: &str) -> String {
    match value.split_once(';') {
        Some((_, rest)) => rest.trim().to_string(),
        None => value.trim().to_string(),
    }
}

/// Parses the body of a `message/delivery-status` part into its per-recipient blocks (the per-message block,
/// which has no recipient fields, is skipped). Never panics.
pub fn parse_delivery_status(fields: &[u8]) -> Vec<DsnRecipient> {
    let text = String::from_utf8_lossy(fields);
    let mut blocks: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if blocks.last().is_some_and(|b| !b.is_empty()) {
                blocks.push(Vec::new());
            }
            continue;
        }
        let Some(block) = blocks.last_mut() else { continue };
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous field.
            if let Some((_, v)) = block.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut out = Vec::new();
    for block in blocks {
        let get = |name: &str| block.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let final_recipient = get("final-recipient").map(strip_type).filter(|a| a.contains('@'));
        let original_recipient = get("original-recipient").map(strip_type).filter(|a| a.contains('@'));
        if final_recipient.is_none() && original_recipient.is_none() {
            continue;
        }
        let action = get("action").map(DsnAction::parse).unwrap_or(DsnAction::Other);
        let status = get("status")
            .and_then(|s| EnhancedCode::parse(s.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("")));
        let diagnostic = get("diagnostic-code").map(strip_type).filter(|d| !d.is_empty());
        let from_diagnostic = diagnostic.as_deref().map(classify);
        let classification = classify_parts(
            from_diagnostic.and_then(|c| c.basic),
            status.or(from_diagnostic.and_then(|c| c.enhanced)),
            diagnostic.as_deref().unwrap_or(""),
        );
        out.push(DsnRecipient {
            final_recipient: final_recipient.map(|a| strip_angles(&a)),
            original_recipient: original_recipient.map(|a| strip_angles(&a)),
            action,
            status,
            diagnostic,
            classification,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Category, Verdict};

    #[test]
    fn delivery_status_blocks() {
        let fields = b"Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n\
Final-Recipient: rfc822; gone@example.net\r\nOriginal-Recipient: rfc822;Gone@example.net\r\nAction: failed\r\n\
Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <gone@example.net>:\r\n    Recipient address rejected: User unknown\r\n\r\n\
Final-Recipient: rfc822; full@example.net\r\nAction: delayed\r\nStatus: 4.2.2\r\n";
        let r = parse_delivery_status(fields);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].address(), Some("Gone@example.net"));
        assert_eq!(r[0].action, DsnAction::Failed);
        assert_eq!(r[0].classification.verdict, Verdict::HardBounce);
        assert_eq!(
            r[0].diagnostic.as_deref(),
            Some("550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown")
        );
        assert_eq!(r[1].action, DsnAction::Delayed);
        assert_eq!(r[1].classification.category, Category::MailboxFull);
        assert_eq!(r[1].reason(), "4.2.2");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_report(&s);
            let _ = parse_delivery_status(&s);
        }

        #[test]
        fn field_parser_never_panics_on_field_like_text(s in "([A-Za-z-]{0,12}:[ -~]{0,30}\r?\n[ \t]?){0,12}") {
            let _ = parse_delivery_status(s.as_bytes());
        }
    }
}
