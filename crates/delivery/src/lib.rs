//! Outbound delivery for mailpush: MIME building, MX resolution, the SMTP client with
//! per-recipient outcomes and connection reuse, and the retry schedule.
//!
//! The worker (in `mailpush-core`) builds the message once with [`build_mime`] (DKIM signing
//! comes next, once per message), then calls [`SmtpTransport::send`] per recipient domain and
//! records each recipient's [`Outcome`]; deferred recipients are retried after
//! [`RetryPolicy::delay_after`].
//!
//! Built on mail-builder (MIME), hickory-resolver (DNS) and mail-send's low-level
//! [`mail_send::SmtpClient`] (SMTP). mail-send's high-level `send()` is not used: it stops at the
//! first rejected recipient, and its builder cannot do opportunistic STARTTLS.

#![warn(missing_docs)]

mod mime;
mod pool;
mod resolve;
mod retry;
mod session;
mod transport;

pub use mime::{MimeError, build_mime, content_type_for};
pub use resolve::{DnsSettings, MxHost, MxResolver, ResolveError};
pub use retry::RetryPolicy;
pub use transport::{
    Envelope, MAX_RCPT_PER_TRANSACTION, Outcome, RecipientOutcome, SendReport, SmtpTransport, TlsPolicy,
    TransportConfig,
};
