//! SMTP replies, and the one place where mailpush's refusals (Tencent error codes) become SMTP codes.

use mailpush_core::CoreError;
use mailpush_model::ErrorCode;
use std::fmt;

/// One SMTP reply: code, enhanced status code (RFC 3463) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code such as `5.7.1`.
    pub enhanced: &'static str,
    /// Human-readable text (one line; line breaks are replaced on output).
    pub text: String,
}

impl Reply {
    /// A reply.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// Whether the reply is a 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The wire form, CRLF-terminated. Text is kept on one line and to a sane length whatever it holds.
    pub fn to_wire(&self) -> String {
        let mut text: String = self
            .text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if text.len() > 400 {
            let mut end = 400;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        format!("{} {} {}\r\n", self.code, self.enhanced, text)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.enhanced, self.text)
    }
}

/// The SMTP reply for a mailpush refusal: `(code, enhanced status)` chosen from the Tencent error code, the
/// refusal's message as text. Every front-end refusal goes through here.
pub fn smtp_code_for(code: ErrorCode) -> (u16, &'static str) {
    use ErrorCode as E;
    match code {
        // Rate limits: try again later.
        E::FailedOperationFrequencyLimit | E::RequestLimitExceeded | E::FailedOperationTemporaryBlocked => {
            (451, "4.7.1")
        }
        // Quotas: try again later (tomorrow, or after the quota is raised).
        E::FailedOperationExceedSendLimit
        | E::FailedOperationInsufficientQuota
        | E::FailedOperationInsufficientBalance
        | E::LimitExceeded
        | E::LimitExceededExceedReceiverLimit => (452, "4.7.1"),
        E::FailedOperationTooManyRecipients => (452, "4.5.3"),
        // A recipient mailpush will not send to (suppression, unsubscribe).
        E::FailedOperationEmailAddrInBlacklist
        | E::FailedOperationReceiverHasUnsubscribed
        | E::FailedOperationRejectedByRecipients => (550, "5.1.1"),
        E::InvalidParameterValueIllegalEmailAddress
        | E::InvalidParameterValueReceiverEmailInvalid
        | E::FailedOperationIncorrectEmail
        | E::InvalidParameterValueEmailAddressIsNULL => (553, "5.1.3"),
        E::FailedOperationIncorrectSender => (553, "5.1.7"),
        // Sending as someone the principal is not.
        E::FailedOperationNotAuthenticatedSender
        | E::FailedOperationWithOutPermission
        | E::OperationDeniedDomainNotVerified
        | E::OperationDeniedSendAddressStatusError
        | E::InvalidParameterValueNoSuchSender
        | E::InvalidParameterValueInvalidEmailIdentity
        | E::FailedOperationHighRejectionRate
        | E::OperationDenied => (550, "5.7.1"),
        E::FailedOperationEmailContentToolarge | E::FailedOperationAttachContentToolarge => (552, "5.3.4"),
        // Content that cannot be sent as it is.
        E::InvalidParameterValueEmailContentIsWrong
        | E::InvalidParameterValueSubjectLengthError
        | E::FailedOperationMissingEmailContent
        | E::FailedOperationInvalidAttachName
        | E::FailedOperationTooManyAttachments
        | E::FailedOperationUnsupportMailType
        | E::FailedOperationIllegalURL
        | E::FailedOperationURLForbidden
        | E::FailedOperationProtocolCheckErr
        | E::InvalidParameterValueAttachContentIsWrong => (554, "5.6.0"),
        E::MissingParameter => (554, "5.5.1"),
        E::AuthFailureUnauthorizedOperation | E::UnauthorizedOperation => (535, "5.7.8"),
        // Our own trouble: the client keeps the mail and retries.
        E::InternalError
        | E::InternalErrorQueryDataBaseFailed
        | E::FailedOperationServiceNotAvailable
        | E::ServiceUnavailable
        | E::ResourceUnavailable
        | E::ResourceInsufficient
        | E::FailedOperation
        | E::FailedOperationSendEmailErr => (451, "4.3.0"),
        _ => (554, "5.7.0"),
    }
}

/// The reply for a refusal with `code` and `message`.
pub fn reply_for(code: ErrorCode, message: &str) -> Reply {
    let (c, e) = smtp_code_for(code);
    Reply::new(c, e, format!("{message} ({})", code.as_str()))
}

/// The reply for a core error: refusals through [`reply_for`]; internal failures are logged and answered
/// `451 4.3.0` without details (they may name hosts, files or SQL).
pub fn reply_for_core(err: &CoreError) -> Reply {
    match err {
        CoreError::Refused(e) => reply_for(e.code, &e.message),
        other => {
            tracing::error!(error = %other, "smtp: internal error");
            let api = other.to_api();
            let (c, e) = smtp_code_for(api.code);
            Reply::new(c, e, api.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_of_the_issue() {
        assert_eq!(smtp_code_for(ErrorCode::FailedOperationFrequencyLimit), (451, "4.7.1"));
        assert_eq!(smtp_code_for(ErrorCode::FailedOperationExceedSendLimit), (452, "4.7.1"));
        assert_eq!(
            smtp_code_for(ErrorCode::FailedOperationEmailAddrInBlacklist),
            (550, "5.1.1")
        );
        assert_eq!(
            smtp_code_for(ErrorCode::FailedOperationTooManyRecipients),
            (452, "4.5.3")
        );
        assert_eq!(
            smtp_code_for(ErrorCode::InvalidParameterValueEmailContentIsWrong),
            (554, "5.6.0")
        );
        assert_eq!(
            smtp_code_for(ErrorCode::FailedOperationNotAuthenticatedSender),
            (550, "5.7.1")
        );
        assert_eq!(
            smtp_code_for(ErrorCode::FailedOperationEmailContentToolarge),
            (552, "5.3.4")
        );
        assert_eq!(
            smtp_code_for(ErrorCode::InternalErrorQueryDataBaseFailed),
            (451, "4.3.0")
        );
        let r = reply_for(ErrorCode::FailedOperationExceedSendLimit, "daily quota of 200 reached");
        assert_eq!(
            r.to_wire(),
            "452 4.7.1 daily quota of 200 reached (FailedOperation.ExceedSendLimit)\r\n"
        );
    }

    #[test]
    fn wire_text_stays_on_one_line() {
        let r = Reply::new(550, "5.7.1", "a\r\n250 injected");
        assert_eq!(r.to_wire(), "550 5.7.1 a  250 injected\r\n");
    }
}
