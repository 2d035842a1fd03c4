//! Admission of one `SendEmail`: every check that can refuse a mail runs here, before anything is stored,
//! so the API and SMTP front ends refuse the same things with the same codes.

use crate::error::CoreError;
use mailpush_model::message::{self, MAX_ATTACHMENTS, MAX_BCC, MAX_CC, MAX_MAIL_BYTES, MAX_TO, SubjectError};
use mailpush_model::{
    Attachment, EmailAddress, ErrorCode, Mailbox, MessageId, MessageSpec, RecipientKind, TriggerType,
};
use std::collections::HashSet;

/// The body of a mail as the sender gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendContent {
    /// Custom content (`Simple`), already base64-decoded.
    Simple {
        /// HTML body.
        html: Option<String>,
        /// Text body.
        text: Option<String>,
    },
    /// A reviewed template and its data.
    Template {
        /// TemplateID.
        id: i64,
        /// TemplateData, a JSON object as text.
        data: String,
    },
}

/// An attachment as the sender gave it, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInput {
    /// File name.
    pub filename: String,
    /// Bytes.
    pub content: Vec<u8>,
}

/// A `SendEmail` request after wire decoding (base64 and JSON types), before any business rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendRequest {
    /// `FromEmailAddress`: `addr` or `Alias <addr>`.
    pub from: String,
    /// `Destination`.
    pub destination: Vec<String>,
    /// `Cc`.
    pub cc: Vec<String>,
    /// `Bcc`.
    pub bcc: Vec<String>,
    /// `ReplyToAddresses` (one address, or several separated by commas).
    pub reply_to: Option<String>,
    /// `Subject`.
    pub subject: String,
    /// `Simple` or `Template`; none is an error.
    pub content: Option<SendContent>,
    /// `Attachments`.
    pub attachments: Vec<AttachmentInput>,
    /// `TriggerType`.
    pub trigger: TriggerType,
    /// `HeaderFrom`.
    pub header_from: Option<String>,
    /// `SmtpHeaders`: a JSON object of extra header names to values.
    pub smtp_headers: Option<String>,
    /// `SmtpMessageId`.
    pub smtp_message_id: Option<String>,
}

/// One recipient after admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedRecipient {
    /// The address.
    pub address: EmailAddress,
    /// Which header it appears in.
    pub kind: RecipientKind,
}

impl AdmittedRecipient {
    /// The queue row of an admitted recipient, before the suppression screen marks it.
    pub(crate) fn queued(&self) -> mailpush_model::queue::NewRecipient {
        mailpush_model::queue::NewRecipient {
            address: self.address.as_str().to_string(),
            domain: self.address.domain().to_string(),
            kind: self.kind,
            send_status: mailpush_model::SendStatus::Ok,
            deliver_message: None,
        }
    }
}

/// A mail that passed every check, ready to be built and stored.
#[derive(Debug, Clone)]
pub struct AdmittedMail {
    /// The new MessageId.
    pub id: MessageId,
    /// The sender address (`FromEmailAddress` without alias).
    pub sender: EmailAddress,
    /// What goes into MIME.
    pub spec: MessageSpec,
    /// Everybody it goes to, each once.
    pub recipients: Vec<AdmittedRecipient>,
    /// Lane.
    pub trigger: TriggerType,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> CoreError {
    CoreError::refused(code, message)
}

fn parse_list(
    field: &str,
    list: &[String],
    max: usize,
    code_too_many: ErrorCode,
) -> Result<Vec<EmailAddress>, CoreError> {
    if list.len() > max {
        return Err(refuse(
            code_too_many,
            format!("{field} has {} addresses; at most {max} are allowed", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            EmailAddress::parse(a).map_err(|e| {
                refuse(
                    ErrorCode::InvalidParameterValueIllegalEmailAddress,
                    format!("{field}[{i}] {a:?}: {e}"),
                )
            })
        })
        .collect()
}

/// Header names a sender may not set through `SmtpHeaders` beside those the MIME builder writes
/// ([`mailpush_delivery::RESERVED_HEADERS`]): mailpush owns them (authentication and tracing headers), and letting
/// a tenant set them would forge or break the mail.
const RESERVED_HEADERS: &[&str] = &[
    "dkim-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "authentication-results",
    "received",
    "list-unsubscribe",
    "list-unsubscribe-post",
];
/// Most extra headers one mail may carry.
const MAX_EXTRA_HEADERS: usize = 50;

fn parse_smtp_headers(raw: &str) -> Result<Vec<(String, String)>, CoreError> {
    let bad = |m: String| refuse(ErrorCode::InvalidParameterValue, format!("SmtpHeaders: {m}"));
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| bad(format!("must be a JSON object of header names to values ({e})")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("must be a JSON object of header names to values".into()))?;
    if obj.len() > MAX_EXTRA_HEADERS {
        return Err(bad(format!("at most {MAX_EXTRA_HEADERS} headers are allowed")));
    }
    let mut out = Vec::with_capacity(obj.len());
    for (name, v) in obj {
        let valid_name =
            !name.is_empty() && name.len() <= 76 && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !valid_name {
            return Err(bad(format!("{name:?} is not a valid header name")));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || mailpush_delivery::RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(bad(format!("{name} is set by mailpush and cannot be overridden")));
        }
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(bad(format!("the value of {name} must be a string"))),
        };
        if value.contains(['\r', '\n', '\0']) || value.len() > 998 {
            return Err(bad(format!(
                "the value of {name} contains a line break or is longer than 998 bytes"
            )));
        }
        out.push((name.clone(), value));
    }
    Ok(out)
}

fn normalize_message_id(raw: &str) -> Result<String, CoreError> {
    let id = raw.trim();
    let inner = id.strip_prefix('<').and_then(|s| s.strip_suffix('>')).unwrap_or(id);
    let valid = inner.len() <= 250
        && inner
            .split_once('@')
            .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
        && inner
            .bytes()
            .all(|b| (33..=126).contains(&b) && !b"<>\"\\,;:()[] ".contains(&b));
    if !valid {
        return Err(refuse(
            ErrorCode::InvalidParameterValue,
            format!("SmtpMessageId {raw:?} must look like <unique-part@domain>"),
        ));
    }
    Ok(format!("<{inner}>"))
}

/// Attachment extensions refused outright: executables and scripts are what mailbox providers block.
const BLOCKED_EXTENSIONS: &[&str] = &[
    "exe", "bat", "cmd", "com", "scr", "pif", "vbs", "vbe", "js", "jse", "msi", "jar", "ps1", "cpl", "hta", "wsf",
];

fn check_attachments(inputs: Vec<AttachmentInput>) -> Result<Vec<Attachment>, CoreError> {
    if inputs.len() > MAX_ATTACHMENTS {
        return Err(refuse(
            ErrorCode::FailedOperationTooManyAttachments,
            format!("{} attachments; at most {MAX_ATTACHMENTS} are allowed", inputs.len()),
        ));
    }
    let total: usize = inputs.iter().map(|a| a.content.len()).sum();
    if total > MAX_MAIL_BYTES {
        return Err(refuse(
            ErrorCode::FailedOperationAttachContentToolarge,
            format!("attachments total {total} bytes; at most 4 MB are allowed"),
        ));
    }
    inputs
        .into_iter()
        .map(|a| {
            let name = a.filename.trim().to_string();
            let bad_name = name.is_empty()
                || name.chars().count() > 255
                || name.contains(['/', '\\', '\r', '\n', '\0', '"'])
                || name.chars().any(char::is_control);
            if bad_name {
                return Err(refuse(
                    ErrorCode::FailedOperationInvalidAttachName,
                    format!("attachment name {:?} must be 1-255 characters without path separators, quotes or control characters", a.filename),
                ));
            }
            let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
            if BLOCKED_EXTENSIONS.contains(&ext.as_str()) {
                return Err(refuse(
                    ErrorCode::FailedOperationInvalidAttachName,
                    format!("attachments of type .{ext} are not allowed"),
                ));
            }
            Ok(Attachment { content_type: mailpush_delivery::content_type_for(&name).to_string(), filename: name, content: a.content })
        })
        .collect()
}

/// Runs every admission rule of this issue's scope and returns the mail to store.
/// `now_ms` stamps the Date header.
pub fn admit(req: SendRequest, now_ms: i64) -> Result<AdmittedMail, CoreError> {
    let from = Mailbox::parse(&req.from).map_err(|e| {
        let code = match e {
            mailpush_model::AddressError::InvalidDisplayName(_) => ErrorCode::InvalidParameterValueIllegalSenderName,
            _ => ErrorCode::FailedOperationIncorrectSender,
        };
        refuse(code, format!("FromEmailAddress {:?}: {e}", req.from))
    })?;
    let header_from = match req.header_from.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(h) => Mailbox::parse(h).map_err(|e| {
            refuse(
                ErrorCode::FailedOperationIncorrectSender,
                format!("HeaderFrom {h:?}: {e}"),
            )
        })?,
        None => from.clone(),
    };

    let to = parse_list(
        "Destination",
        &req.destination,
        MAX_TO,
        ErrorCode::FailedOperationTooManyRecipients,
    )?;
    let cc = parse_list("Cc", &req.cc, MAX_CC, ErrorCode::FailedOperationTooManyRecipients)?;
    let bcc = parse_list("Bcc", &req.bcc, MAX_BCC, ErrorCode::FailedOperationTooManyRecipients)?;
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(refuse(
            ErrorCode::MissingParameter,
            "at least one of Destination, Cc or Bcc is required",
        ));
    }
    let mut seen = HashSet::new();
    let mut recipients = Vec::with_capacity(to.len() + cc.len() + bcc.len());
    for (list, kind) in [
        (&to, RecipientKind::To),
        (&cc, RecipientKind::Cc),
        (&bcc, RecipientKind::Bcc),
    ] {
        for a in list {
            if !seen.insert(a.normalized()) {
                return Err(refuse(
                    ErrorCode::InvalidParameterValueRepeatEmailAddress,
                    format!("{a} appears more than once in Destination, Cc and Bcc"),
                ));
            }
            recipients.push(AdmittedRecipient {
                address: a.clone(),
                kind,
            });
        }
    }

    let reply_to = match req.reply_to.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(raw) => raw
            .split(',')
            .map(|part| {
                Mailbox::parse(part).map_err(|e| {
                    refuse(
                        ErrorCode::InvalidParameterValueIllegalEmailAddress,
                        format!("ReplyToAddresses {part:?}: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };

    message::check_subject(&req.subject).map_err(|e| match e {
        SubjectError::TooLong(_) => refuse(ErrorCode::InvalidParameterValueSubjectLengthError, e.to_string()),
        SubjectError::LineBreak => refuse(
            ErrorCode::InvalidParameterValueSubjectLengthError,
            "Subject must not contain CR, LF or NUL",
        ),
    })?;
    if req.subject.trim().is_empty() {
        return Err(refuse(ErrorCode::MissingParameter, "Subject is required"));
    }

    let (html, text) = match req.content {
        Some(SendContent::Simple { html, text }) => (html.filter(|h| !h.is_empty()), text.filter(|t| !t.is_empty())),
        Some(SendContent::Template { id, .. }) => {
            return Err(refuse(
                ErrorCode::FailedOperationInvalidTemplateID,
                format!("template {id} does not exist"),
            ));
        }
        None => {
            return Err(refuse(
                ErrorCode::FailedOperationMissingEmailContent,
                "either Template or Simple content is required",
            ));
        }
    };
    if html.is_none() && text.is_none() {
        return Err(refuse(
            ErrorCode::FailedOperationMissingEmailContent,
            "Simple needs Html or Text",
        ));
    }
    let attachments = check_attachments(req.attachments)?;
    let total = html.as_ref().map_or(0, String::len)
        + text.as_ref().map_or(0, String::len)
        + attachments.iter().map(|a| a.content.len()).sum::<usize>();
    if total > MAX_MAIL_BYTES {
        return Err(refuse(
            ErrorCode::FailedOperationEmailContentToolarge,
            format!("the mail is {total} bytes; at most 4 MB are allowed"),
        ));
    }
    let headers = match req.smtp_headers.as_deref() {
        Some(raw) => parse_smtp_headers(raw)?,
        None => Vec::new(),
    };
    let id = MessageId::generate();
    let message_id_header = match req.smtp_message_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => normalize_message_id(raw)?,
        None => id.header_value(from.address.domain()),
    };
    let spec = MessageSpec {
        from: header_from,
        to,
        cc,
        reply_to,
        subject: req.subject,
        html,
        text,
        attachments,
        headers,
        message_id_header,
        date_ms: now_ms,
    };
    Ok(AdmittedMail {
        id,
        sender: from.address,
        spec,
        recipients,
        trigger: req.trigger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SendRequest {
        SendRequest {
            from: "Shop <noreply@shop.example.com>".into(),
            destination: vec!["a@example.org".into()],
            subject: "Hello".into(),
            content: Some(SendContent::Simple {
                html: Some("<p>Hi</p>".into()),
                text: Some("Hi".into()),
            }),
            ..Default::default()
        }
    }

    fn code(r: Result<AdmittedMail, CoreError>) -> ErrorCode {
        match r {
            Err(e) => e.to_api().code,
            Ok(_) => panic!("expected a refusal"),
        }
    }

    #[test]
    fn admits_a_plain_mail() {
        let m = admit(base(), 0).unwrap();
        assert_eq!(m.sender.as_str(), "noreply@shop.example.com");
        assert_eq!(m.spec.from.name.as_deref(), Some("Shop"));
        assert!(m.spec.message_id_header.ends_with("@shop.example.com>"));
        assert_eq!(m.recipients.len(), 1);
    }

    #[test]
    fn refusals_carry_their_codes() {
        let mut r = base();
        r.destination = (0..51).map(|i| format!("u{i}@example.org")).collect();
        assert_eq!(code(admit(r, 0)), ErrorCode::FailedOperationTooManyRecipients);

        let mut r = base();
        r.subject = "Hi\r\nBcc: victim@example.org".into();
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValueSubjectLengthError);

        let mut r = base();
        r.subject = "x".repeat(999);
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValueSubjectLengthError);

        let mut r = base();
        r.attachments = vec![AttachmentInput {
            filename: "big.bin".into(),
            content: vec![0; MAX_MAIL_BYTES + 1],
        }];
        assert_eq!(code(admit(r, 0)), ErrorCode::FailedOperationAttachContentToolarge);

        let mut r = base();
        r.attachments = vec![AttachmentInput {
            filename: "../x.pdf".into(),
            content: vec![1],
        }];
        assert_eq!(code(admit(r, 0)), ErrorCode::FailedOperationInvalidAttachName);

        let mut r = base();
        r.bcc = vec!["A@example.org".into()];
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValueRepeatEmailAddress);

        let mut r = base();
        r.from = "Bad: Alias <x@shop.example.com>".into();
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValueIllegalSenderName);

        let mut r = base();
        r.destination = vec!["not an address".into()];
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValueIllegalEmailAddress);

        let mut r = base();
        r.content = Some(SendContent::Simple { html: None, text: None });
        assert_eq!(code(admit(r, 0)), ErrorCode::FailedOperationMissingEmailContent);

        let mut r = base();
        r.smtp_headers = Some(r#"{"Bcc":"x@evil.example"}"#.into());
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValue);

        let mut r = base();
        r.smtp_headers = Some(r#"{"X-Tag":"a\r\nBcc: x@evil.example"}"#.into());
        assert_eq!(code(admit(r, 0)), ErrorCode::InvalidParameterValue);
    }

    #[test]
    fn extra_headers_and_message_id() {
        let mut r = base();
        r.smtp_headers = Some(r#"{"X-Campaign":"spring","X-Num":3}"#.into());
        r.smtp_message_id = Some("abc.123@shop.example.com".into());
        let m = admit(r, 0).unwrap();
        assert_eq!(
            m.spec.headers,
            vec![("X-Campaign".into(), "spring".into()), ("X-Num".into(), "3".into())]
        );
        assert_eq!(m.spec.message_id_header, "<abc.123@shop.example.com>");
    }
}
