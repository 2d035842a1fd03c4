//! What a sender asked to send, after admission checks and rendering: the input of MIME building.

use crate::address::{EmailAddress, Mailbox};
use serde::{Deserialize, Serialize};

/// One attachment, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name shown to the recipient.
    pub filename: String,
    /// The MIME type (from the file name's extension when the sender gives none).
    pub content_type: String,
    /// The decoded bytes.
    pub content: Vec<u8>,
}

/// A message ready to be built into MIME. Bcc recipients are envelope-only and never reach a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSpec {
    /// The header `From` (Tencent's `HeaderFrom` when given, else `FromEmailAddress`).
    pub from: Mailbox,
    /// `To` header recipients.
    pub to: Vec<EmailAddress>,
    /// `Cc` header recipients.
    pub cc: Vec<EmailAddress>,
    /// `Reply-To`.
    pub reply_to: Vec<Mailbox>,
    /// The subject, UTF-8, at most 998 bytes, no line breaks.
    pub subject: String,
    /// HTML body.
    pub html: Option<String>,
    /// Plain-text body.
    pub text: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Extra headers (`SmtpHeaders`), already checked for injection and forbidden names.
    pub headers: Vec<(String, String)>,
    /// The `Message-ID` header value, with angle brackets.
    pub message_id_header: String,
    /// `Date` header as Unix milliseconds.
    pub date_ms: i64,
}

/// Largest subject accepted, in UTF-8 bytes (RFC 5322's line limit; Tencent's rule).
pub const MAX_SUBJECT_BYTES: usize = 998;
/// Largest total of decoded attachments and bodies accepted for one mail (Tencent: 4 MB).
pub const MAX_MAIL_BYTES: usize = 4 * 1024 * 1024;
/// Most `Destination` recipients in one `SendEmail`.
pub const MAX_TO: usize = 50;
/// Most `Cc` recipients.
pub const MAX_CC: usize = 20;
/// Most `Bcc` recipients.
pub const MAX_BCC: usize = 20;
/// Most attachments.
pub const MAX_ATTACHMENTS: usize = 10;

/// Checks a subject: UTF-8 is given by `&str`; refuses line breaks (header injection) and more than 998 bytes.
pub fn check_subject(subject: &str) -> Result<(), SubjectError> {
    if subject.contains(['\r', '\n', '\0']) {
        return Err(SubjectError::LineBreak);
    }
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(SubjectError::TooLong(subject.len()));
    }
    Ok(())
}

/// Why a subject was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// CR, LF or NUL in the subject.
    #[error("the subject contains a line break")]
    LineBreak,
    /// Longer than 998 bytes.
    #[error("the subject is {0} bytes; at most 998 bytes of UTF-8 are allowed")]
    TooLong(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_rules() {
        assert!(check_subject("你好").is_ok());
        assert_eq!(check_subject("a\r\nBcc: x"), Err(SubjectError::LineBreak));
        assert!(check_subject(&"é".repeat(499)).is_ok());
        assert_eq!(check_subject(&"é".repeat(500)), Err(SubjectError::TooLong(1000)));
    }
}
