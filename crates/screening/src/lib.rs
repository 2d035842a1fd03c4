//! Content safety for mailpush, with no knowledge of accounts or storage:
//! - [`clamd`]: a ClamAV `clamd` client (unix or TCP socket, `INSTREAM`);
//! - [`rspamd`]: an rspamd client (`/checkv2`);
//! - [`content`]: what a MIME message is made of (parts, attachments, links, images, HTML problems);
//! - [`quality`]: the checks mailpush makes itself and the 0–10 score (mail-tester's sense: 10 is best).
//!
//! Core calls these at admission and for the `CheckEmailQuality` action; the policy (which account, refuse or
//! accept when a scanner is down) is core's.

#![warn(missing_docs)]

pub mod clamd;
pub mod content;
pub mod quality;
pub mod rspamd;

pub use clamd::{ClamdAddress, ClamdClient, ScanVerdict};
pub use content::{ContentFacts, MimeAttachment, analyze, attachments};
pub use quality::{Check, CheckStatus, ExplainedSymbol, QualityReport, content_checks, explain_symbol};
pub use rspamd::{FilterRequest, FilterSymbol, FilterVerdict, RspamdClient};

/// Why a scanner could not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ScreeningError {
    /// The scanner could not be reached or did not answer in time.
    #[error("{scanner} is unavailable: {reason}")]
    Unavailable {
        /// `clamd` or `rspamd`.
        scanner: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// clamd refused the stream as larger than its `StreamMaxLength`.
    #[error("clamd refused the data as larger than its StreamMaxLength")]
    TooLarge,
    /// The scanner answered something this client does not understand.
    #[error("{scanner} answered unexpectedly: {reply}")]
    Protocol {
        /// `clamd` or `rspamd`.
        scanner: &'static str,
        /// The answer.
        reply: String,
    },
    /// A configured address is not usable.
    #[error("invalid scanner address {0:?}: use unix:/path/to/socket, /path/to/socket or host:port")]
    InvalidAddress(String),
}
