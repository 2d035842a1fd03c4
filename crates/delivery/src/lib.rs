//! Outbound delivery for mailpush: MIME building, MX resolution, the SMTP client with
//! per-recipient outcomes and connection reuse, and the retry schedule.
//!
//! The worker (in `mailpush-core`) builds the message once with [`build_mime`] (DKIM signing
//! comes next, once per message), then calls [`SmtpTransport::send`] per recipient domain and
//! records each recipient's [`Outcome`]; deferred recipients are retried after
//! [`RetryPolicy::delay_after`].
//!
//! Outgoing connections bind to a member of a source pool ([`SourcePools`]: the shared pool and named
//! "dedicated IP" pools, with hot standby between members and an optional [`SourceGate`] for the warm-up of
//! new source IPs) and are shaped per receiving domain ([`ShapingConfig`]: connections, messages per connection
//! and per minute, slowed down when the receiver says "too many connections / rate limited").
//!
//! With DNSSEC validation on ([`DnsSettings::dnssec`]), MX hosts publishing secure TLSA records are only sent to
//! over TLS with a certificate matching them (DANE, RFC 7672); failures defer with `4.7.5 DANE: …` and carry an
//! RFC 8460 result type ([`DaneFailureKind`]).
//!
//! The TLS outcome of every new session (the policy that applied: MTA-STS, DANE or none; success, or the failure's
//! RFC 8460 result type) goes to a [`TlsReportSink`] set with [`SmtpTransport::report_tls_to`], for TLS-RPT.
//!
//! Built on mail-builder (MIME), hickory-resolver (DNS) and mail-send's low-level
//! [`mail_send::SmtpClient`] (SMTP). mail-send's high-level `send()` is not used: it stops at the
//! first rejected recipient, and its builder cannot do opportunistic STARTTLS.

#![warn(missing_docs)]

mod dane;
mod mime;
mod mta_sts;
mod pool;
mod relay;
mod resolve;
mod retry;
mod session;
mod shaping;
mod sources;
mod tls_report;
mod transport;

pub use dane::{DaneFailure, DaneFailureKind, DanePolicy, TlsaRecord, USAGE_DANE_EE, USAGE_DANE_TA};
/// What a message demands of its connection (see [`Envelope::tls`]).
pub use mailpush_model::TlsRequirement;
pub use mime::{MimeError, RESERVED_HEADERS, build_mime, content_type_for};
pub use mta_sts::{
    MAX_POLICY_AGE, MtaSts, MtaStsError, MtaStsMode, MtaStsPolicy, PolicyFetcher, TlsFailure, mx_pattern_matches,
    parse_sts_record,
};
pub use relay::{Relay, RelayCredentials, RelayError, RelayTls};
pub use resolve::{DnsSettings, MxHost, MxResolver, ResolveError, TrustAnchor};
pub use retry::RetryPolicy;
pub use shaping::{
    DestinationAdmission, DestinationLimits, DestinationState, ShapingConfig, ShapingError, is_throttle_reply,
};
pub use sources::{GateFuture, SHARED_POOL, SourceGate, SourcePoolError, SourcePools};
pub use tls_report::{
    ReportUri, TlsPolicyType, TlsReportSink, TlsSessionFailure, TlsSessionOutcome, parse_tlsrpt_record,
};
pub use transport::{
    Envelope, MAX_RCPT_PER_TRANSACTION, Outcome, OutgoingMessage, RecipientOutcome, SendReport, SmtpTransport,
    TlsPolicy, TransportConfig,
};
